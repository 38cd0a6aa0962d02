// Liveness fails only for a loop that is stuck without backpressure. A hung disk or a lost
// wake-up cannot be produced on demand, so this test runs the real collector in-process and hangs
// one call of the real ring (the fault a stuck fdatasync or a lost wake-up would cause); the
// heartbeats, the health monitor and the API are the real ones.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { startCollector as startInProcess } from "../../src/collector.ts";
import { parseConfig } from "../../src/config/load.ts";
import { setLogWriter } from "../../src/log.ts";
import { Api, type Env, KEY, setUp, testConfig, waitFor } from "./harness.ts";

let env: Env;
const logLines: string[] = [];
beforeAll(async () => {
  env = await setUp("stuck", 30);
  setLogWriter((l) => logLines.push(l));
});
afterAll(async () => {
  setLogWriter((l) => process.stderr.write(l));
  await env.cleanup();
});

async function collector(name: string) {
  const raw = testConfig(env, 0, { dataDir: join(env.dir, name), messenger: { apiKey: KEY }, shutdownTimeoutMs: 500 });
  const c = await startInProcess(parseConfig(raw), undefined, { stuckAfterMs: 300, monitorIntervalMs: 50 });
  return { c, api: new Api(c.apiPort) };
}

test("a source hand-over that never returns while the ring has room: /health 503 and a reason", async () => {
  env.messenger.reset();
  const { c, api } = await collector("data-source");
  try {
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 10_000)).toBe(true);
    expect((await api.get("/health")).status).toBe(200);
    // The router hands records over with appendPacked; stall it, as if the write into the ring
    // file never completed.
    const ring = c.ring as { appendPacked: unknown };
    ring.appendPacked = () => new Promise(() => {});
    env.node.appendLines(2);
    expect(await waitFor(async () => (await api.code("/health")) === 503, 5000)).toBe(true);
    const s = await api.status();
    expect(s.live).toBe(false);
    expect(s.loops.source.state).toBe("stuck");
    expect(s.pipeline.reasons[0]).toStartWith("source loop stuck: handing lines to the ring for");
    // The probe's body names the stuck loop and for how long, as /status does.
    const health = await api.get("/health");
    expect(health.status).toBe(503);
    expect(Object.keys(health.body)).toEqual(["ok", "reasons"]);
    expect(health.body.ok).toBe(false);
    expect(health.body.reasons).toHaveLength(1);
    expect(health.body.reasons[0]).toMatch(/^source loop stuck: handing lines to the ring for \d+(\.\d)? s with room in the ring$/);
    expect(await api.get("/ready")).toMatchObject({ status: 200, body: { ready: true } }); // stuck is not "not ready"
    expect((await api.metrics()).sum("pipekit_collector_live")).toBe(0);
  } finally {
    const stopped = await Promise.race([c.stop().then(() => "stopped"), Bun.sleep(10_000).then(() => "hung")]);
    expect(stopped).toBe("stopped");
  }
}, 30_000);

test("a sender that stops taking records with request slots free: /health 503; waiting on the messenger is not", async () => {
  env.messenger.reset();
  const { c, api } = await collector("data-sender");
  try {
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 10_000)).toBe(true);
    // An outage first: records wait, batches back off — backpressure, live all along.
    env.messenger.setFaults({ forceStatus: 503 });
    env.node.appendLines(2);
    await Bun.sleep(1500);
    expect((await api.status()).events.inRing).toBeGreaterThan(0);
    expect(await api.code("/health")).toBe(200);
    env.messenger.setFaults({});
    expect(await waitFor(async () => (await api.status()).events.inRing === 0, 10_000)).toBe(true);

    // Now the ring's wake-up is lost: new records are never taken.
    const ring = c.ring as { waitForData: unknown };
    ring.waitForData = () => new Promise(() => {});
    env.node.appendLines(2); // wakes the sender's last good wait; it sends them, then waits (forever)
    await Bun.sleep(500);
    env.node.appendLines(2); // never taken
    expect(await waitFor(async () => (await api.code("/health")) === 503, 5000)).toBe(true);
    const s = await api.status();
    expect(s.loops.sender.state).toBe("stuck");
    expect(s.pipeline.reasons.some((r: string) => r.startsWith("sender loop stuck: records waiting in the ring"))).toBe(true);
    const untimed = (reasons: string[]) => reasons.map((r) => r.replace(/\d+(\.\d+)? s\b/, "N s"));
    expect(untimed((await api.get("/health")).body.reasons)).toEqual(untimed(s.pipeline.reasons.filter((r: string) => r.includes("loop stuck"))));
  } finally {
    const stopped = await Promise.race([c.stop().then(() => "stopped"), Bun.sleep(10_000).then(() => "hung")]);
    expect(stopped).toBe("stopped");
  }
  // The drain at shutdown took what the stuck loop had left.
  expect(env.messenger.stats().distinctEvents).toBe(env.node.expectedMessages.size);
}, 30_000);

test("a ring sync that never completes (a hung disk): /health 503 after the sync interval plus the limit; live again once syncs complete", async () => {
  env.messenger.reset();
  const { c, api } = await collector("data-sync");
  // The ring's file on its storage port (buffer/types.ts RingFileHandle): its datasync hangs until
  // the disk answers again, then completes for real.
  const file = (c.ring as unknown as { file: { datasync(): Promise<void> } }).file;
  const datasync = file.datasync.bind(file);
  const hung: Array<() => void> = [];
  const answerAgain = () => {
    file.datasync = datasync;
    for (const go of hung.splice(0)) go();
  };
  try {
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 10_000)).toBe(true);
    file.datasync = () => new Promise<void>((resolve, reject) => hung.push(() => datasync().then(resolve, reject))); // as if fdatasync never returned
    env.node.appendLines(2);
    expect(await waitFor(async () => (await api.code("/health")) === 503, 5000)).toBe(true);
    const s = await api.status();
    expect(s.loops.ringSync.state).toBe("stuck");
    expect(s.pipeline.reasons.some((r: string) => r.startsWith("ringSync loop stuck: appended records not durable"))).toBe(true);
    expect((await api.get("/health")).body.reasons.some((r: string) => r.startsWith("ringSync loop stuck: appended records not durable"))).toBe(true);
    answerAgain(); // the disk answers again
    env.node.appendLines(2);
    expect(await waitFor(async () => (await api.code("/health")) === 200, 5000)).toBe(true);
    expect((await api.status()).loops.ringSync.state).not.toBe("stuck");
  } finally {
    answerAgain();
    const stopped = await Promise.race([c.stop().then(() => "stopped"), Bun.sleep(10_000).then(() => "hung")]);
    expect(stopped).toBe("stopped");
  }
}, 30_000);
