// The reduced chaos run for CI (issue 9): the real collector process, SIGKILLed 3 times at random
// moments while requests are in flight and files lag, against continuous kubelet-style rotation and a
// messenger failing 20 % of requests; then a messenger outage that fills a small ring while files
// rotate underneath. Fails on any loss. The full run is `npm run chaos` (same code: bench/lib/chaos-run.ts).
// The seed is printed; replay a failure with CHAOS_SEED=<seed>.
import { expect, test } from "bun:test";
import { type ChaosResult, describe, runChaos } from "../../bench/lib/chaos-run.ts";

const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

function check(r: ChaosResult): void {
  console.log(describe(r));
  expect(r.failures).toEqual([]);
  expect(r.missing).toBe(0);
  expect(r.corrupt).toBe(0);
  expect(r.distinct).toBe(r.events);
  expect(r.duplicatesWithoutCrash).toBe(0);
  expect(r.finalExit).toBe(0);
}

test(`SIGKILL ×3 under rotation, gzip, deletion and 20 % 503s: nothing lost (seed ${seed})`, async () => {
  const r = await runChaos({
    seed,
    events: 300_000,
    rate: 12_000,
    pods: 4,
    rotateBytes: 384 * 1024,
    maxFiles: 4,
    kills: 3,
    killAfterMs: { min: 2500, max: 7000 },
    ringBytes: "16MiB",
    syncIntervalMs: 500,
  });
  check(r);
  expect(r.crashes.length).toBe(3);
  expect(r.writer.gzipped).toBeGreaterThan(0); // the scenario really rotated, compressed and deleted
  expect(r.writer.deleted).toBeGreaterThan(0);
  expect(r.byStatus["503"] ?? 0).toBeGreaterThan(0);
  // A crash replays at most about one sync interval's worth (reads and acks) plus what was on the wire.
  for (const c of r.crashes) expect(c.duplicates).toBeLessThanOrEqual(c.bound);
}, 180_000);

test(`a 12 s messenger outage fills a 1 MiB ring while files rotate and are deleted underneath; then everything arrives (seed ${seed + 1})`, async () => {
  const r = await runChaos({
    seed: seed + 1,
    events: 150_000,
    rate: 8_000,
    pods: 3,
    rotateBytes: 256 * 1024,
    maxFiles: 3,
    kills: 0,
    ringBytes: "1MiB",
    syncIntervalMs: 500,
    failRate: 0,
    hangRate: 0,
    outage: { startAfterMs: 2000, durationMs: 12_000 },
  });
  check(r);
  expect(r.outage?.ringFullObserved).toBe(true);
  expect(r.outage!.rotationsDuringOutage).toBeGreaterThan(0);
  expect(r.outage!.maxDeletedHeldBytes).toBeGreaterThan(0); // rotated files were deleted while unread, held open
  expect(r.duplicates).toBe(0);
}, 150_000);
