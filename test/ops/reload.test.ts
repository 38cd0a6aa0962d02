// SIGHUP: the config and the key file are re-read; log level, pods file and messenger settings
// apply at once (records held by the old sender go to the new one), the rest is reported as
// needing a restart, and a broken config is refused while the collector keeps running.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { argoPod, podListJson, prng } from "../../src/dev/sample-node.ts";
import { type Env, KEY, eventuallyAboveZero, setUp, startCollector, testConfig, waitFor, writeJson } from "./harness.ts";

let env: Env;
let other: MockMessenger;
beforeAll(async () => {
  env = await setUp("reload", 40);
  other = await startMockMessenger({ apiKey: KEY });
});
afterAll(async () => {
  await other.stop();
  await env.cleanup();
});

test("SIGHUP applies log level, key file, pods file and messenger settings; reports restarts; refuses a broken config", async () => {
  const keyFile = join(env.dir, "api-key");
  writeFileSync(keyFile, KEY + "\n");
  const over = (o: Record<string, any> = {}) => ({ ...o, messenger: { apiKeyFile: keyFile, ...(o.messenger ?? {}) } });
  const c = await startCollector(env, over(), { PIPEKIT_API_KEY: "" });
  const api = c.api;
  const rewrite = (o: Record<string, any>) => writeJson(c.configPath, testConfig(env, c.port, over(o)));
  const linesFrom = (n: number) => c.stderr().split("\n").slice(n).filter(Boolean).map((l) => JSON.parse(l));
  const hup = async (o: Record<string, any> | string, expectLine = true) => {
    const before = c.stderr().split("\n").length - 1;
    if (typeof o === "string") writeFileSync(c.configPath, o);
    else rewrite(o);
    c.proc.kill("SIGHUP");
    const logged = await waitFor(() => linesFrom(before).some((l) => l.msg === "config reloaded" || l.msg.startsWith("config reload refused")), expectLine ? 10_000 : 300);
    expect(logged).toBe(expectLine);
    return linesFrom(before);
  };
  try {
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 20_000)).toBe(true);

    // ---- log level ----
    let lines = await hup({ log: { level: "debug" } });
    expect(lines.find((l) => l.msg === "config reloaded").applied).toContain("log.level: info → debug");
    expect(await waitFor(() => linesFrom(0).some((l) => l.level === "debug" && l.msg === "effective config after the reload"), 5000)).toBe(true);
    lines = await hup({ log: { level: "info" } });
    expect(lines.find((l) => l.msg === "config reloaded").applied).toContain("log.level: debug → info");
    await Bun.sleep(100);
    expect(linesFrom(0).filter((l) => l.level === "debug" && l.msg === "effective config after the reload")).toHaveLength(1);

    // ---- the key is rotated: new key file, SIGHUP ----
    const newKey = "rotated-key-9876543210";
    writeFileSync(keyFile, newKey);
    env.messenger.setApiKey(newKey);
    other.setApiKey(newKey);
    lines = await hup({});
    expect(lines.find((l) => l.msg === "config reloaded").applied).toContain("messenger.apiKeyFile re-read");
    env.node.appendLines(3);
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 10_000)).toBe(true);
    expect((await api.status()).pipeline.reasons).not.toContain("messenger rejected the API key");

    // ---- a new messenger: what the old sender held unacknowledged goes to the new one ----
    env.messenger.setFaults({ forceStatus: 503 });
    env.node.appendLines(5);
    expect(await waitFor(async () => (await api.status()).events.inRing > 0, 10_000)).toBe(true);
    lines = await hup({ messenger: { baseUri: other.url } });
    expect(lines.find((l) => l.msg === "config reloaded").applied).toContain("messenger: baseUri");
    expect(await waitFor(async () => (await api.status()).events.inRing === 0, 10_000)).toBe(true);
    const seen = new Map<string, number>();
    for (const r of [...env.messenger.received(), ...other.received()]) seen.set(r.message, (seen.get(r.message) ?? 0) + 1);
    expect([...env.node.expectedMessages].filter((m) => !seen.has(m))).toEqual([]);
    expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
    expect(other.stats().distinctEvents).toBeGreaterThan(0);
    expect((await api.status()).sink.url).toStartWith(other.url);

    // ---- a new pods file: a pod only it knows is collected ----
    const pod = argoPod(prng(99), "late-wf", "step", ["main"]);
    const podsFile2 = join(env.dir, "pods-2.json");
    writeFileSync(podsFile2, podListJson([...env.node.pods, pod]));
    lines = await hup({ messenger: { baseUri: other.url }, metadata: { podsFile: podsFile2 } });
    expect(lines.find((l) => l.msg === "config reloaded").applied).toContain(`metadata.podsFile: ${podsFile2}`);
    expect((await api.status()).metadata.podsKnown).toBe(env.node.pods.length + 1);
    const dir = join(env.node.root, `${pod.namespace}_${pod.name}_${pod.uid}`, "main");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "0.log"), "2026-11-25T00:00:00.000000001Z stdout F hello from the new pods file\n");
    expect(await waitFor(() => other.received().some((r) => r.message === "hello from the new pods file" && r.podName === pod.name), 10_000)).toBe(true);

    // ---- what needs a restart is said, not silently ignored ----
    lines = await hup({ messenger: { baseUri: other.url }, metadata: { podsFile: podsFile2 }, source: { scanIntervalMs: 700 }, buffer: { maxBytes: "16MiB" } });
    const reloaded = lines.find((l) => l.msg === "config reloaded");
    expect(reloaded.needsRestart).toEqual(["source", "buffer"]);
    expect(lines.find((l) => l.msg === "config changes that need a restart to take effect").keys).toEqual(["source", "buffer"]);
    expect((await api.status()).lastReload.needsRestart).toEqual(["source", "buffer"]);

    // ---- a broken config is refused (repeatedly: the repeats are rate-limited); still running ----
    for (let i = 0; i < 7; i++) {
      // The first five are logged; then the same error is suppressed (and counted) for a minute.
      lines = await hup("{ this is not json", i < 5);
      if (i < 5) expect(lines.some((l) => l.level === "error" && l.msg === "config reload refused; the running config stays in effect")).toBe(true);
    }
    expect(await eventuallyAboveZero(api, "pipekit_collector_log_lines_suppressed_total")).toBe(true);
    expect((await api.get("/health")).status).toBe(200);
    writeFileSync(join(dir, "0.log"), "2026-11-25T00:00:01.000000001Z stdout F still collecting\n", { flag: "a" });
    expect(await waitFor(() => other.received().some((r) => r.message === "still collecting"), 10_000)).toBe(true);
  } finally {
    c.proc.kill("SIGTERM");
    expect(await c.exited).toBe(0);
  }
  expect(c.stderr()).not.toContain(KEY);
  expect(c.stderr()).not.toContain("rotated-key-9876543210");
}, 90_000);
