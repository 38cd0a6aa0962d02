// The liveness and health-reason rules, driven through every transition with a fake clock.
import { expect, test } from "bun:test";
import { HealthMonitor, type HealthSample } from "../../src/api/health.ts";

const T = { sinkFailingSeconds: 2, bufferFullSeconds: 3, stuckAfterMs: 10_000, syncIntervalMs: 1000, flushIntervalMs: 1000 };

function sample(now: number, over: Partial<HealthSample> = {}): HealthSample {
  return {
    now,
    stopping: false,
    ring: { full: false, lastSeq: 10, durableSeq: 10 },
    sourceEmitSince: null,
    sender: { unread: false, atCapacity: false, lastReadAt: now, failingSince: null, reasons: [] },
    metadata: { provider: "static", failing: false, synced: true, lastError: null },
    checkpoints: { failingSince: null, lastError: null },
    prefixTable: { failingSince: null, lastError: null },
    ...over,
  };
}

test("an idle collector is live and healthy", () => {
  const v = new HealthMonitor(T).evaluate(sample(1000));
  expect(v).toMatchObject({ live: true, liveReasons: [], healthy: true, reasons: [] });
  expect(v.loops.source.state).toBe("idle");
  expect(v.loops.sender.state).toBe("idle");
  expect(v.loops.ringSync.state).toBe("idle");
});

test("shutting down fails liveness only", () => {
  const v = new HealthMonitor(T).evaluate(sample(1000, { stopping: true }));
  expect(v.live).toBe(false);
  expect(v.liveReasons).toEqual(["shutting down"]);
  expect(v.healthy).toBe(true);
});

test("a full ring: the source is blocked (live), a reason only after bufferFullSeconds, cleared when room returns", () => {
  const m = new HealthMonitor(T);
  const full = (now: number) => sample(now, { ring: { full: true, lastSeq: 10, durableSeq: 10 }, sourceEmitSince: 0 });
  let v = m.evaluate(full(0));
  expect(v.loops.source.state).toBe("blocked");
  expect(v.reasons).toEqual([]);
  v = m.evaluate(full(3000));
  expect(v.reasons).toEqual([]);
  v = m.evaluate(full(3500));
  expect(v.reasons).toEqual(["ring full for 3.5 s (reading paused)"]);
  // Far beyond stuckAfterMs: still live, because it is backpressure.
  v = m.evaluate(full(600_000));
  expect(v.live).toBe(true);
  expect(v.healthy).toBe(false);
  // Room again; the same emit is judged from now, not from when it started.
  v = m.evaluate(sample(600_100, { sourceEmitSince: 0 }));
  expect(v.reasons).toEqual([]);
  expect(v.loops.source.state).toBe("working");
  expect(v.live).toBe(true);
  v = m.evaluate(sample(610_200, { sourceEmitSince: 0 }));
  expect(v.loops.source.state).toBe("stuck");
  expect(v.live).toBe(false);
});

test("the source pump: an emit pending with room in the ring becomes stuck after stuckAfterMs", () => {
  const m = new HealthMonitor(T);
  expect(m.evaluate(sample(5000, { sourceEmitSince: 5000 })).loops.source.state).toBe("working");
  expect(m.evaluate(sample(15_000, { sourceEmitSince: 5000 })).live).toBe(true);
  const v = m.evaluate(sample(15_001, { sourceEmitSince: 5000 }));
  expect(v.live).toBe(false);
  expect(v.reasons[0]).toStartWith("source loop stuck");
  // What /health says: the stuck loop and for how long, nothing about the pipeline's other reasons.
  expect(v.liveReasons).toEqual(["source loop stuck: handing lines to the ring for 10 s with room in the ring"]);
  // A new emit: alive again.
  expect(m.evaluate(sample(15_002, { sourceEmitSince: 15_002 })).live).toBe(true);
});

test("the sender loop: waiting on the messenger is backpressure; records untaken with free slots is stuck", () => {
  const m = new HealthMonitor(T);
  const s = (now: number, atCapacity: boolean) =>
    sample(now, { sender: { unread: true, atCapacity, lastReadAt: 0, failingSince: 0, reasons: [] } });
  expect(m.evaluate(s(600_000, true)).loops.sender.state).toBe("blocked");
  expect(m.evaluate(s(600_000, true)).live).toBe(true);
  expect(m.evaluate(s(5000, false)).loops.sender.state).toBe("working");
  const v = m.evaluate(s(11_001, false));
  expect(v.loops.sender.state).toBe("stuck");
  expect(v.live).toBe(false);
});

test("the ring sync: behind under steady load is fine while syncs complete; no progress beyond the limit is stuck", () => {
  const m = new HealthMonitor(T);
  let durable = 0;
  for (let t = 0; t <= 60_000; t += 500) {
    if (t % 1000 === 0) durable += 100; // a sync completes every second
    const v = m.evaluate(sample(t, { ring: { full: false, lastSeq: durable + 50, durableSeq: durable } }));
    expect(v.loops.ringSync.state).toBe("working");
    expect(v.live).toBe(true);
  }
  // Syncs stop completing.
  expect(m.evaluate(sample(70_000, { ring: { full: false, lastSeq: durable + 500, durableSeq: durable } })).live).toBe(true);
  const v = m.evaluate(sample(71_001, { ring: { full: false, lastSeq: durable + 500, durableSeq: durable } }));
  expect(v.loops.ringSync.state).toBe("stuck");
  expect(v.live).toBe(false);
  // Caught up.
  expect(m.evaluate(sample(72_000, { ring: { full: false, lastSeq: durable + 500, durableSeq: durable + 500 } })).live).toBe(true);
});

test("messenger failing: a reason after sinkFailingSeconds, never a liveness failure; sender reasons pass through", () => {
  const m = new HealthMonitor(T);
  const s = (now: number, failingSince: number | null, reasons: string[] = []) =>
    sample(now, { sender: { unread: false, atCapacity: false, lastReadAt: now, failingSince, reasons } });
  expect(m.evaluate(s(2000, 0)).reasons).toEqual([]);
  let v = m.evaluate(s(2100, 0));
  expect(v.reasons).toEqual(["messenger failing for 2.1 s"]);
  expect(v.live).toBe(true);
  v = m.evaluate(s(3_600_000, 0, ["messenger rejected the API key"]));
  expect(v.reasons).toEqual(["messenger failing for 3600 s", "messenger rejected the API key"]);
  expect(v.live).toBe(true);
  expect(v.liveReasons).toEqual([]);
  expect(m.evaluate(s(3_600_001, null)).healthy).toBe(true);
});

test("metadata unavailable is a reason with the provider's error, not a liveness failure", () => {
  const v = new HealthMonitor(T).evaluate(
    sample(0, { metadata: { provider: "apiserver", failing: true, synced: false, lastError: "listing pods: HTTP 403" } }),
  );
  expect(v.reasons).toEqual(["metadata unavailable: apiserver provider failing (listing pods: HTTP 403)"]);
  expect(v.live).toBe(true);
});

test("checkpoints that cannot be written (a full disk) are a reason, not a liveness failure; the reason goes once they are", () => {
  const m = new HealthMonitor(T);
  const full = m.evaluate(sample(5000, { checkpoints: { failingSince: 2000, lastError: "ENOSPC" } }));
  expect(full.live).toBe(true);
  expect(full.reasons).toEqual(["checkpoints not written for 3 s (the data dir's disk is full): positions are kept, lines are read again after a restart"]);
  expect(m.evaluate(sample(6000, { checkpoints: { failingSince: 2000, lastError: "EIO" } })).reasons[0]).toContain("(EIO)");
  expect(m.evaluate(sample(7000)).healthy).toBe(true);
});

test("a prefix table that cannot be written is a reason too (records stored whole), with the checkpoints' when both fail; it goes once written", () => {
  const m = new HealthMonitor(T);
  const full = m.evaluate(sample(5000, { prefixTable: { failingSince: 1000, lastError: "ENOSPC" } }));
  expect(full.live).toBe(true);
  expect(full.reasons).toEqual(["prefix table not written for 4 s (the data dir's disk is full): new containers' records are stored whole, nothing is lost"]);
  const both = m.evaluate(sample(6000, { prefixTable: { failingSince: 1000, lastError: "ENOSPC" }, checkpoints: { failingSince: 2000, lastError: "ENOSPC" } }));
  expect(both.reasons).toHaveLength(2);
  expect(both.reasons[1]).toStartWith("prefix table not written for 5 s");
  expect(m.evaluate(sample(7000, { prefixTable: { failingSince: 1000, lastError: "EIO" } })).reasons[0]).toContain("(EIO)");
  expect(m.evaluate(sample(8000)).healthy).toBe(true);
});
