// Acknowledged ranges beyond the read position (issue 17, "crash duplicates bounded by one sync
// interval"): each header lists them, so a restart hands out again only what was acknowledged
// since the last sync. Whatever a crash leaves of a header write, no record that was not
// acknowledged is ever skipped.
import { expect, test } from "bun:test";
import { DATA_OFFSET, HEADER_SLOT_BYTES, MAX_ACKED_RANGES, crc32Range, readHeaderSlot, setU64, writeHeaderSlot, type RingHeader } from "../../src/buffer/format.ts";
import { openRing } from "../../src/buffer/ring.ts";
import type { Ring } from "../../src/buffer/types.ts";
import { captureLog, drainCopies, payload } from "./helpers.ts";
import { ManualClock, MemoryDisk } from "../support/memory-disk.ts";
import { appendPayloads, readPayloads } from "../support/ring-payloads.ts";

const SYNC_MS = 1000;
const open = (disk: MemoryDisk, log = captureLog(), capacityBytes = 256 * 1024): Promise<Ring> =>
  openRing({ dir: disk.dir, capacityBytes, syncIntervalMs: SYNC_MS, storage: disk, clock: new ManualClock(), log });

/** Ten batches of ten records, all handed out. */
async function handedOut(ring: Ring): Promise<Array<[number, number]>> {
  await appendPayloads(ring, Array.from({ length: 100 }, (_, i) => payload(i + 1, 80)));
  const batches: Array<[number, number]> = [];
  for (let b = readPayloads(ring, 10, 1 << 20); b; b = readPayloads(ring, 10, 1 << 20)) batches.push([b.firstSeq, b.payloads.length]);
  expect(batches.length).toBe(10);
  return batches;
}

test("after a crash only what was acknowledged since the last sync comes again, with what was never acknowledged", async () => {
  const disk = new MemoryDisk();
  const ring = await open(disk);
  const batches = await handedOut(ring);
  for (const b of batches.slice(2)) ring.ack(...b); // 21..100, behind 1..20 (a hanging request, say)
  await ring.sync();
  expect(ring.stats().readSeq).toBe(1);
  expect(ring.stats().records).toBe(20);
  ring.ack(...batches[1]!); // 11..20: acknowledged after the last sync
  // A SIGKILL: the page cache survives, the process state does not.
  const again = await open(disk.crash(() => true));
  expect(drainCopies(again).map((g) => g.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  expect(again.stats().records).toBe(20);
  again.ack(1, 20); // the read position passes 21..100 with them
  expect(again.stats().readSeq).toBe(101);
  await again.close();
  await ring.close();
});

test("an acknowledgement alone (the read position does not move) makes a sync due", async () => {
  const disk = new MemoryDisk();
  const clock = new ManualClock();
  const ring = await openRing({ dir: disk.dir, capacityBytes: 256 * 1024, syncIntervalMs: SYNC_MS, storage: disk, clock });
  const batches = await handedOut(ring);
  await clock.advance(SYNC_MS);
  const syncs = ring.stats().syncs;
  ring.ack(...batches[5]!);
  await clock.advance(SYNC_MS);
  expect(ring.stats().syncs).toBe(syncs + 1);
  // Even a power loss right after keeps it: that sync completed.
  const again = await open(disk.crash(() => false));
  expect(drainCopies(again).map((g) => g.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1).filter((q) => q < 51 || q > 60));
  await again.close();
  await ring.close();
});

test("more ranges than a header holds: the lowest are kept, the rest come again, none not acknowledged is skipped", async () => {
  const disk = new MemoryDisk();
  const log = captureLog();
  const ring = await open(disk, log, 1 << 20);
  const n = 2 * MAX_ACKED_RANGES + 100;
  await appendPayloads(ring, Array.from({ length: n }, (_, i) => payload(i + 1, 20)));
  expect(readPayloads(ring, n, 1 << 30)!.payloads.length).toBe(n);
  for (let q = 2; q <= n; q += 2) ring.ack(q, 1); // every even record: n / 2 ranges
  await ring.close();
  expect(log.lines.some((l) => l.level === "warn" && l.msg.includes("more acknowledged ranges than a ring header holds"))).toBe(true);
  const again = await open(disk, captureLog(), 1 << 20);
  const got = drainCopies(again).map((g) => g.seq);
  const lastKept = 2 * MAX_ACKED_RANGES; // the range of record 512 is the 256th
  expect(got).toEqual(Array.from({ length: n }, (_, i) => i + 1).filter((q) => q % 2 === 1 || q > lastKept));
  await again.close();
});

const base: RingHeader = { fileBytes: 1 << 20, generation: 7, readPos: 4096, readSeq: 1000, writePos: 90_000, nextSeq: 5000, epoch: 3, flags: 0, acked: [] };

test("a header write torn at any 512-byte sector is read as the old header, the new one, or damaged — never a mix", () => {
  const slotOf = (h: RingHeader) => {
    const buf = new Uint8Array(DATA_OFFSET);
    writeHeaderSlot(new DataView(buf.buffer), 1, h);
    return buf;
  };
  const ranges = (from: number, count: number, step: number) => Array.from({ length: count }, (_, i) => [from + i * step, from + i * step + 2]).flat();
  const oldHeader = { ...base, acked: ranges(1010, 150, 20) }; // 1284 bytes: three sectors
  const newHeader = { ...base, generation: 8, readPos: 8192, readSeq: 1005, acked: ranges(1012, 200, 19) }; // 1684 bytes: four
  const old = slotOf(oldHeader);
  const next = slotOf(newHeader);
  let damaged = 0;
  for (let mask = 0; mask < 16; mask++) {
    const img = old.slice();
    for (let s = 0; s < 4; s++) if (mask & (1 << s)) img.set(next.subarray(HEADER_SLOT_BYTES + 512 * s, HEADER_SLOT_BYTES + 512 * (s + 1)), HEADER_SLOT_BYTES + 512 * s);
    const got = readHeaderSlot(new DataView(img.buffer), 1);
    if (got.kind === "valid") expect([JSON.stringify(oldHeader), JSON.stringify(newHeader)]).toContain(JSON.stringify(got.header));
    else damaged++;
    if (mask === 0) expect(got).toEqual({ kind: "valid", header: oldHeader });
    if (mask === 15) expect(got).toEqual({ kind: "valid", header: newHeader });
  }
  expect(damaged).toBeGreaterThan(10);
});

test("the writer keeps ranges within its read position and next sequence number; a header with others is damaged", () => {
  const buf = new Uint8Array(DATA_OFFSET);
  const v = new DataView(buf.buffer);
  expect(writeHeaderSlot(v, 0, { ...base, acked: [1001, 1003, 1005, 1006] })).toBe(2);
  expect(readHeaderSlot(v, 0)).toMatchObject({ kind: "valid", header: { acked: [1001, 1003, 1005, 1006] } });
  expect(writeHeaderSlot(v, 0, { ...base, acked: [990, 1003, 4990, 6000] })).toBe(2);
  expect(readHeaderSlot(v, 0)).toMatchObject({ kind: "valid", header: { acked: [1001, 1003, 4990, 5000] } });
  // A checksum that holds over a range past the next sequence number (no writer makes one): damaged.
  writeHeaderSlot(v, 0, { ...base, acked: [4000, 4999] });
  setU64(v, 56, 2000); // nextSeq
  v.setUint32(88, crc32Range(v, 0, 88), true);
  expect(readHeaderSlot(v, 0)).toEqual({ kind: "damaged", reason: "acknowledged ranges out of range" });
});

test("unsyncedMs: how old the oldest change not yet durable may be — 0 once a sync took every change, growing from that sync's header while one waits", async () => {
  const disk = new MemoryDisk();
  const clock = new ManualClock(); // drives the sync timer; unsyncedMs is real time, as lastSyncMs
  const ring = await openRing({ dir: disk.dir, capacityBytes: 256 * 1024, syncIntervalMs: SYNC_MS, storage: disk, clock });
  const batches = await handedOut(ring);
  await clock.advance(SYNC_MS);
  expect(ring.stats().unsyncedMs).toBe(0);
  await Bun.sleep(50); // nothing changed: nothing to lose, however long ago the sync was
  expect(ring.stats().unsyncedMs).toBe(0);
  ring.ack(...batches[0]!);
  const first = ring.stats().unsyncedMs!;
  expect(first).toBeGreaterThanOrEqual(49); // the change is younger than the last header: at most this old
  await Bun.sleep(50);
  expect(ring.stats().unsyncedMs!).toBeGreaterThanOrEqual(first + 49);
  await clock.advance(SYNC_MS); // the sync the acknowledgement armed
  expect(ring.stats().unsyncedMs).toBe(0);
  ring.ack(...batches[1]!);
  expect(ring.stats().unsyncedMs!).toBeLessThan(first);
  await ring.close();
});
