// A full ring is backpressure, not a failure: liveness stays 200, /status says why reading is
// paused, a log file deleted meanwhile stays readable through its descriptor (and its held bytes
// are reported), and once the messenger is back everything arrives.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { type Env, distinctMessages, expectAboveZero, setUp, startCollector, stopCollector, waitFor } from "./harness.ts";

let env: Env;
beforeAll(async () => {
  env = await setUp("fullring", 150);
});
afterAll(async () => {
  await env.cleanup();
});

test("ring full during an outage: live, reasons, deleted-but-held bytes, then everything delivered", async () => {
  env.messenger.setFaults({ forceStatus: 503 });
  // A tiny ring; lines short enough for it to hold the largest record (`run` refuses less).
  const c = await startCollector(env, { buffer: { maxBytes: "64KiB", syncIntervalMs: 50 }, source: { maxLineBytes: "4KiB" } }, { PIPEKIT_COLLECTOR_PER_FILE_METRICS: "1" });
  const api = c.api;
  const liveness: Array<number | null> = [];
  const probe = setInterval(async () => liveness.push(await api.code("/health")), 100);
  try {
    expect(await waitFor(async () => (await api.status()).ring.full === true, 10_000)).toBe(true);
    expect(await waitFor(async () => (await api.status()).pipeline.reasons.some((r: string) => r.startsWith("ring full for")), 10_000)).toBe(true);
    const s = await api.status();
    expect(s.loops.source.state).toBe("blocked");
    expect(Date.parse(s.ring.fullSince)).toBeGreaterThan(0);
    expect(s.live).toBe(true);
    expect(s.ready).toBe(true);
    expect(await waitFor(async () => (await api.status()).pipeline.reasons.some((r: string) => r.startsWith("messenger failing for")), 5000)).toBe(true);

    // A pod's log file is deleted while reading is paused: its data is still held open.
    const pod = env.node.pods.find((p) => p.expected === "delivered" && p.containers.includes("main"))!;
    const dir = join(env.node.root, `${pod.namespace}_${pod.name}_${pod.uid}`, "main");
    for (const f of readdirSync(dir)) unlinkSync(join(dir, f));
    expect(await waitFor(async () => (await api.status()).source.deletedHeldBytes > 0, 5000)).toBe(true);
    const m = await api.metrics();
    expectAboveZero(m, [
      "pipekit_collector_ring_full",
      "pipekit_collector_ring_blocked_seconds_total",
      "pipekit_collector_deleted_held_bytes",
      "pipekit_collector_ring_bytes",
      "pipekit_collector_ring_records",
      "pipekit_collector_ring_capacity_bytes",
      "pipekit_collector_files_watched",
      "pipekit_collector_file_lag_bytes", // lines read but not yet safe in the ring, or not read at all
    ]);
    expect(m.sum("pipekit_collector_live")).toBe(1);
    expect(m.sum("pipekit_collector_pipeline_healthy")).toBe(0);
    expect((await api.get("/health")).status).toBe(200);

    // Back: reading resumes, the deleted file is read to its end and let go.
    env.messenger.setFaults({});
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 30_000, 100)).toBe(true);
    expect(await waitFor(async () => (await api.status()).pipeline.healthy === true, 10_000)).toBe(true);
    expect(await waitFor(async () => (await api.status()).source.deletedHeldBytes === 0, 10_000)).toBe(true);
    expect((await api.status()).ring.full).toBe(false);
  } finally {
    clearInterval(probe);
    expect(await stopCollector(c)).toBe(0);
  }
  const running = liveness.slice(0, -5);
  expect(running.length).toBeGreaterThan(10);
  expect(running.every((code) => code === 200)).toBe(true);
  const counts = distinctMessages(env.messenger);
  expect([...env.node.expectedMessages].filter((m) => !counts.has(m))).toEqual([]);
  expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
}, 90_000);

test("SIGTERM while reading waits on a full ring and the messenger is down: exit 0 by the deadline, then nothing lost", async () => {
  env.messenger.reset();
  env.messenger.setFaults({ forceStatus: 503 });
  env.node.appendLines(100);
  const over = {
    dataDir: join(env.dir, "data-2"),
    buffer: { maxBytes: "64KiB", syncIntervalMs: 50 },
    source: { maxDeletedHeldBytes: 1, maxLineBytes: "4KiB" }, // a deleted file is given up at once
    shutdownTimeoutMs: 800,
  };
  const first = await startCollector(env, over);
  expect(await waitFor(async () => (await first.api.status()).loops.source.state === "blocked", 10_000)).toBe(true);

  // A file not read at all yet is deleted: beyond maxDeletedHeldBytes it is given up, its bytes
  // counted as lost — the one way this collector loses data, and it says so.
  const unread = (await first.api.status()).files.find((f: any) => f.readOffset === 0 && f.size > 0 && f.container !== "init");
  expect(unread).toBeDefined();
  unlinkSync(unread.path);
  expect(await waitFor(async () => (await first.api.metrics()).sum("pipekit_collector_bytes_lost_total") > 0, 5000)).toBe(true);
  const lostMetrics = expectAboveZero(await first.api.metrics(), ["pipekit_collector_bytes_lost_total", "pipekit_collector_files_given_up_total"]);
  expect(lostMetrics["pipekit_collector_bytes_lost_total"]).toBe(unread.size);
  expect(first.stderr()).toContain("giving up a deleted file");
  const inRingAtStop = (await first.api.status()).ring.records;
  expect(inRingAtStop).toBeGreaterThan(0);
  const t0 = Date.now();
  first.proc.kill("SIGTERM");
  expect(await first.exited).toBe(0);
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(first.stderr()).toContain("drain deadline reached");

  env.messenger.setFaults({});
  const second = await startCollector(env, over);
  // Everything the node holds now (this data dir has no checkpoints: every file from its start).
  // The file deleted in the previous test is gone from disk: its lines cannot be read again.
  const deleted = env.node.pods.find((p) => p.expected === "delivered" && p.containers.includes("main"))!;
  const lostFile = (name: string, container: string) => (m: string) => m.startsWith(`${name}/${container} line `) || m.includes(`"msg":"${name}/${container} line `);
  const gone = (m: string) => lostFile(deleted.name, "main")(m) || lostFile(unread.pod, unread.container)(m);
  const onDisk = [...env.node.expectedMessages].filter((m) => !gone(m));
  const arrived = () => {
    const got = new Set(env.messenger.received().map((r) => r.message));
    return onDisk.filter((m) => !got.has(m));
  };
  expect(await waitFor(() => arrived().length === 0, 30_000, 100)).toBe(true);
  await Bun.sleep(300);
  expect(await stopCollector(second)).toBe(0);
  expect(arrived()).toEqual([]);
  // Known limit (reported to the source/buffer owners): the lines of an append that was only
  // partly in the ring when the stop came get no checkpoint mark, so after the restart they are
  // read again while the ring replays the part that was in it. At least once holds; the
  // duplicates are bounded by what the ring held at the stop.
  const counts = distinctMessages(env.messenger);
  const duplicates = [...counts.values()].reduce((n, c) => n + c - 1, 0);
  expect(duplicates).toBeLessThanOrEqual(inRingAtStop);
}, 60_000);
