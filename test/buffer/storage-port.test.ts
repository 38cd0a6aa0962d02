// The ring on its ports alone: a disk in memory (the RingStorage port with its crash semantics) and
// a clock that moves only when told. Nothing touches the real file system (the directory does not
// exist), and the sync timer runs on the given clock — what the deterministic simulation relies on.
import { expect, test } from "bun:test";
import { GcPacing } from "../../src/buffer/gc-pacer.ts";
import { openRing, RING_FILE } from "../../src/buffer/ring.ts";
import type { Ring } from "../../src/buffer/types.ts";
import { indexOf, payload } from "./helpers.ts";
import { ManualClock, MemoryDisk } from "../support/memory-disk.ts";
import { appendPayloads, readPayloads } from "../support/ring-payloads.ts";

const CAP = 64 * 1024;
const SYNC_MS = 1000;

function open(disk: MemoryDisk, clock: ManualClock, capacityBytes = CAP): Promise<Ring> {
  return openRing({ dir: disk.dir, capacityBytes, syncIntervalMs: SYNC_MS, storage: disk, clock });
}

function indexes(ring: Ring): number[] {
  const out: number[] = [];
  for (let b = readPayloads(ring, 1000, 1 << 30); b; b = readPayloads(ring, 1000, 1 << 30)) out.push(...b.payloads.map(indexOf));
  return out;
}

test("the sync timer runs on the given clock; the file lives only on the given storage", async () => {
  const disk = new MemoryDisk();
  const clock = new ManualClock();
  const ring = await open(disk, clock);
  expect(disk.list()).toEqual([RING_FILE]);
  const durable: number[] = [];
  ring.onDurable((seq) => durable.push(seq));
  await appendPayloads(ring, [1, 2, 3].map((i) => payload(i)));
  expect(ring.durableSeq()).toBe(0);
  await clock.advance(SYNC_MS - 1);
  expect(ring.durableSeq()).toBe(0); // not yet: the interval has not passed on this clock
  await clock.advance(1);
  expect(ring.durableSeq()).toBe(3);
  expect(durable).toEqual([3]);
  expect(clock.pending).toBe(0); // nothing more to sync, no timer left
  await ring.close();
});

test("a power loss keeps every record made durable and nothing corrupt, whichever unsynced pages reach the disk", async () => {
  for (const keepEvery of [0, 1, 2, 3]) {
    const disk = new MemoryDisk();
    const clock = new ManualClock();
    const ring = await open(disk, clock);
    await appendPayloads(ring, Array.from({ length: 40 }, (_, i) => payload(i + 1, 200)));
    await clock.advance(SYNC_MS);
    expect(ring.durableSeq()).toBe(40);
    await appendPayloads(ring, Array.from({ length: 40 }, (_, i) => payload(i + 41, 200))); // never synced
    // Pages written since the sync: none, all, or every second or third of them reach the disk.
    const after = disk.crash((_, page) => keepEvery !== 0 && page % keepEvery === 0);
    const reopened = await open(after, new ManualClock());
    const got = indexes(reopened);
    expect(got.slice(0, 40)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1)); // a prefix, in order
    expect(got.length).toBeLessThanOrEqual(80);
    await reopened.close();
    await ring.close();
  }
});

test("opening moves a file that is no ring aside (named by the clock) and resizes through the port", async () => {
  const disk = new MemoryDisk();
  const clock = new ManualClock(Date.UTC(2026, 4, 1, 12, 30, 0));
  const junk = disk.open(RING_FILE, true);
  junk.write(new TextEncoder().encode("not a ring file at all"), 0, 22, 0);
  disk.syncDir();
  let ring = await open(disk, clock);
  expect(disk.list()).toEqual([RING_FILE, `${RING_FILE}.invalid-2026-05-01T12-30-00-000Z`]);
  expect(ring.stats()).toMatchObject({ recoveryMovedAsideFiles: 1, records: 0 });
  await appendPayloads(ring, Array.from({ length: 10 }, (_, i) => payload(i + 1)));
  await ring.close();
  ring = await open(disk, clock, 2 * CAP); // buffer.maxBytes changed: every record kept
  expect(ring.stats().fileBytes).toBe(2 * CAP);
  expect(indexes(ring)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  await ring.close();
});

test("GC pacing observes the ring's traffic: one collection per budget of bytes appended and handed out", async () => {
  const collections: boolean[] = [];
  const pacing = new GcPacing({ everyBytes: 1000, collect: (full) => collections.push(full), anonBytes: () => -1 });
  const disk = new MemoryDisk();
  const ring = await openRing({ dir: disk.dir, capacityBytes: CAP, syncIntervalMs: SYNC_MS, storage: disk, clock: new ManualClock(), traffic: pacing });
  await appendPayloads(ring, Array.from({ length: 9 }, (_, i) => payload(i, 100))); // 900 bytes
  expect(collections).toEqual([]);
  await appendPayloads(ring, [payload(9, 100)]); // 1000
  expect(collections).toEqual([false]);
  expect(readPayloads(ring, 100, 1 << 20)!.payloads.length).toBe(10); // 1000 more, handed out
  expect(collections).toEqual([false, false]);
  await ring.close();
});
