// The collector's own logs: JSON lines, levels, rate limiting of repeats, secrets never written.
import { afterAll, afterEach, expect, test } from "bun:test";
import { createLogger, recentProblems, registerSecret, setLogLevel, setLogRateLimit, setLogWriter } from "../../src/log.ts";

let lines: string[] = [];
setLogWriter((l) => lines.push(l));
afterAll(() => setLogWriter((l) => process.stderr.write(l)));
afterEach(() => {
  lines = [];
  setLogLevel("info");
  setLogRateLimit({ burst: 5, windowMs: 60_000 });
});
const parsed = () => lines.map((l) => JSON.parse(l));

test("one JSON object per line with time, level, message and fields; below the level nothing", () => {
  const log = createLogger().child({ stage: "sink" });
  log.debug("hidden");
  log.info("batch sent", { events: 3, error: new TypeError("boom") });
  expect(lines).toHaveLength(1);
  expect(lines[0]!.endsWith("\n")).toBe(true);
  const [rec] = parsed();
  expect(rec).toMatchObject({ level: "info", msg: "batch sent", stage: "sink", events: 3, error: { name: "TypeError", message: "boom" } });
  expect(Number.isNaN(Date.parse(rec.time))).toBe(false);
  setLogLevel("debug");
  log.debug("shown");
  expect(parsed()[1]).toMatchObject({ level: "debug", msg: "shown" });
  setLogLevel("error");
  log.warn("hidden too");
  expect(lines).toHaveLength(2);
});

test("repeated warnings are rate-limited per message and the count of suppressed ones reported", () => {
  let now = 0;
  setLogRateLimit({ burst: 3, windowMs: 1000 }, () => now);
  const log = createLogger();
  for (let i = 0; i < 10; i++) log.warn("read failed", { i });
  log.warn("another message");
  for (let i = 0; i < 10; i++) log.info("info is not limited");
  const warns = parsed().filter((r) => r.msg === "read failed");
  expect(warns.map((r) => r.i)).toEqual([0, 1, 2]);
  // The last line let through says so, and until when.
  expect(warns[1].repeatsSuppressedUntil).toBeUndefined();
  expect(warns[2].repeatsSuppressedUntil).toBe(new Date(1000).toISOString());
  expect(parsed().filter((r) => r.msg === "another message")).toHaveLength(1);
  expect(parsed().filter((r) => r.level === "info")).toHaveLength(10);
  now = 1000; // next window: the first line says how many were dropped
  log.warn("read failed", { i: 10 });
  expect(parsed().at(-1)).toMatchObject({ msg: "read failed", i: 10, suppressedRepeats: 7 });
});

test("secrets never reach a line: registered values are redacted anywhere, secret-named fields masked", () => {
  const key = 'sk-"live"-0123456789';
  registerSecret(key);
  const log = createLogger();
  log.error(`request failed with key ${key}`, { url: `https://x/?k=${key}`, apiKey: "another-value", nested: { note: key } });
  log.info("token rotated", { token: "tok-abcdef" });
  const all = lines.join("");
  expect(all).not.toContain("0123456789");
  expect(all).not.toContain("another-value");
  expect(all).not.toContain("tok-abcdef");
  expect(all).toContain("[redacted]");
  expect(parsed()[0].apiKey).toBe("***");
  // Recent problems for /status carry the redacted text too.
  expect(JSON.stringify(recentProblems())).not.toContain("0123456789");
  expect(recentProblems().at(-1)).toMatchObject({ level: "error" });
});
