// A ring that holds the longest line but not its JSON-escaped record (issue 17, defect 5): the line
// of control characters arrives with its message cut to fit the ring, counted in /metrics, and the
// lines after it in the same file still arrive — never a turn that fails forever.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { argoPod, podListJson, prng, type SamplePod } from "../../src/dev/sample-node.ts";
import { waitFor } from "../support/collector-process.ts";
import { type Env, makeEnv, stop } from "./support.ts";

let env: Env;
let pod: SamplePod;
let logFile = "";

beforeAll(async () => {
  env = await makeEnv("record-cut", (dir) => {
    const root = join(dir, "pods");
    const podsFile = join(dir, "pods.json");
    pod = argoPod(prng(5), "cut-wf", "cut", ["main"]);
    writeFileSync(podsFile, podListJson([pod]));
    const d = join(root, `${pod.namespace}_${pod.name}_${pod.uid}`, "main");
    mkdirSync(d, { recursive: true });
    logFile = join(d, "0.log");
    return { root, podsFile };
  });
});
afterAll(() => env.cleanup());

test("a line whose escaped record is larger than the ring arrives cut to fit, counted; the lines after it arrive", async () => {
  const TS = "2026-12-06T10:00:00.000000001Z";
  const controls = "\u0001".repeat(100 * 1024); // 100 KiB of line, 600 KiB once JSON-escaped
  writeFileSync(logFile, `${TS} stdout F before\n${TS} stdout F ${controls}\n${TS} stdout F after\n`);
  // The ring holds a 128 KiB line's record (256 KiB file), not the 600 KiB one.
  const c = env.start(env.config({ buffer: { maxBytes: "256KiB" }, source: { maxLineBytes: "128KiB" } }));
  try {
    expect(await env.ready()).toBe(true);
    expect(await waitFor(() => env.messenger.received().length === 3, 15_000)).toBe(true);
    const messages = env.messenger.received().map((r) => r.message);
    expect(messages[0]).toBe("before");
    expect(messages[2]).toBe("after");
    const cut = messages[1]!;
    expect(cut.length).toBeGreaterThan(20_000); // cut to what fits, not dropped
    expect(cut.length).toBeLessThan(controls.length);
    expect(controls.startsWith(cut)).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${env.port}/metrics`)).text();
    const name = "pipekit_collector_records_cut_total";
    expect(metrics).toMatch(new RegExp(`^${name} 1$`, "m"));
    const s = await env.status();
    expect(s.events.cutToFitRing).toBe(1);
    expect(s.events.accountingImbalance).toBe(0);
    expect(s.recentErrors.filter((e: { msg: string }) => /source turn failed/.test(e.msg))).toEqual([]);
  } finally {
    expect(await stop(c)).toBe(0);
  }
}, 30_000);
