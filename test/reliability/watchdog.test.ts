// The source's watchdog end to end (issue 9, part 3): in a running collector process every reader
// stalls (it believes it is at its end while the files keep growing); the watchdog must notice,
// count it (GET /status source.watchdogReopens) and recover without a restart — every line arrives,
// once, from the same process.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { type SampleNode, writeSampleNode } from "../../src/dev/sample-node.ts";
import { waitFor } from "../support/collector-process.ts";
import { type Env, KEY, makeEnv } from "./support.ts";

let env: Env;
let node: SampleNode;

beforeAll(async () => {
  env = await makeEnv("watchdog", (dir) => (node = writeSampleNode(dir, { seed: 11, linesPerContainer: 30 })));
});
afterAll(() => env.cleanup());

test("a stalled reader is detected, counted and recovered without a restart", async () => {
  const config = env.config({ source: { watchdogSeconds: 1, scanIntervalMs: 300 } });
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "stall-child.ts"), config], {
    env: { ...process.env, PIPEKIT_API_KEY: KEY },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  let err = "";
  (async () => {
    for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
  })();
  (async () => {
    for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk);
  })();
  try {
    expect(await env.ready()).toBe(true);
    const received = () => new Set(env.messenger.received().map((r) => r.message));
    expect(await waitFor(() => received().size === node.expectedMessages.size, 20_000, 100)).toBe(true);
    const before = await env.status();
    expect(before.source.watchdogReopens).toBe(0);
    const firstBatch = node.expectedMessages.size;

    proc.kill("SIGUSR2");
    expect(await waitFor(() => /stalled \d+/.test(out), 5000)).toBe(true);
    const stalled = Number(/stalled (\d+)/.exec(out)![1]);
    expect(stalled).toBeGreaterThan(0);
    node.appendLines(20);
    // Stuck: the watchdog waits watchdogSeconds (1 s) of no progress before it acts.
    await Bun.sleep(400);
    expect(received().size).toBe(firstBatch);

    expect(await waitFor(() => received().size === node.expectedMessages.size, 15_000, 100)).toBe(true);
    // The Argo pod missing a Pipekit label is held, then filtered: its file stalled too, and its lines
    // must still be read (and counted as filtered).
    expect(await waitFor(async () => (await env.status()).events.filteredTotal === node.expectedFiltered, 10_000, 200)).toBe(true);
    expect(await waitFor(async () => (await env.status()).source.watchdogReopens >= stalled, 10_000, 200)).toBe(true);
    const after = await env.status();
    expect(after.source.watchdogReopens).toBe(stalled); // each stalled file that grew, reopened once
    // The same count on /metrics, where operators alert on it.
    const metrics = await (await fetch(`http://127.0.0.1:${env.port}/metrics`)).text();
    const name = "pipekit_collector_watchdog_reopens_total";
    expect(metrics).toMatch(new RegExp(`^${name} ${stalled}$`, "m"));
    expect(err).toContain("reopening it at its checkpoint");
    expect(proc.exitCode).toBeNull(); // the same process: no restart
    expect(after.uptimeSeconds).toBeGreaterThanOrEqual(before.uptimeSeconds);
    expect((await fetch(`http://127.0.0.1:${env.port}/health`)).status).toBe(200);
    const all = env.messenger.received().map((r) => r.message);
    expect(all.length).toBe(new Set(all).size); // nothing twice
    expect(after.events.accountingImbalance).toBe(0);
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}, 60_000);
