// Both header copies lost (issue 17, defect 4: 8 KiB of zeros at the start of ring.dat): the open
// rebuilds a header from the records — checksummed, numbered, in order round the data region —
// and delivers every record that was waiting; only the unreadable headers are set aside.
import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readdirSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { DATA_OFFSET, RECORD_HEADER_BYTES, dataBytesOf, recordSpan } from "../../src/buffer/format.ts";
import { findNewestRun } from "../../src/buffer/header-rebuild.ts";
import { openRing, RING_FILE } from "../../src/buffer/ring.ts";
import type { Ring } from "../../src/buffer/types.ts";
import { flipBit, header, records, writeAt } from "./filetools.ts";
import { captureLog, cleanupDirs, drainCopies, tempDir } from "./helpers.ts";
import { ManualClock, MemoryDisk } from "../support/memory-disk.ts";
import { appendPayloads, readPayloads } from "../support/ring-payloads.ts";

afterEach(cleanupDirs);

const enc = new TextEncoder();
/** Record `seq`'s payload: its size (0–1200 bytes of padding) and content depend on the number only. */
function recordFor(seq: number): Uint8Array {
  const pad = (Math.imul(seq, 2654435761) >>> 0) % 1200;
  return enc.encode(`{"seq":${seq},"pad":"${String.fromCharCode(97 + (seq % 26)).repeat(pad)}"}`);
}
/** The largest span recordFor makes. */
const RECORD_MAX = recordSpan(1200 + 40);
function expectGenuine(got: { seq: number; bytes: Uint8Array }[]): void {
  for (let i = 0; i < got.length; i++) {
    if (i > 0) expect(got[i]!.seq).toBeGreaterThan(got[i - 1]!.seq);
    if (Buffer.compare(got[i]!.bytes, recordFor(got[i]!.seq)) !== 0) throw new Error(`record ${got[i]!.seq} is not what was appended`);
  }
}
const zeroHeaders = (path: string) => writeAt(path, 0, new Uint8Array(DATA_OFFSET));

/**
 * Drives a ring through laps: appends, hands out, acknowledges batches out of order (up to four
 * held back), syncs now and then. Returns what a checker needs.
 */
async function drive(ring: Ring, steps: number, rnd: (n: number) => number): Promise<{ acked: Set<number>; pending: Array<[number, number]> }> {
  const acked = new Set<number>();
  const pending: Array<[number, number]> = [];
  const ack = ([first, count]: [number, number]) => {
    for (let q = first; q < first + count; q++) acked.add(q);
    ring.ack(first, count);
  };
  for (let i = 0; i < steps; i++) {
    // Never wait on a full ring with nothing to acknowledge: below room for the end of a lap and
    // three more records (RECORD_MAX bytes each at most), take and acknowledge everything first.
    if (ring.stats().usedBytes + 4 * RECORD_MAX > ring.stats().capacityBytes) {
      for (let b = readPayloads(ring, 1000, 1 << 30); b; b = readPayloads(ring, 1000, 1 << 30)) pending.push([b.firstSeq, b.payloads.length]);
      while (pending.length) ack(pending.pop()!);
    }
    const first = ring.lastSeq() + 1;
    await appendPayloads(ring, Array.from({ length: 1 + rnd(3) }, (_, k) => recordFor(first + k)));
    const b = readPayloads(ring, 1 + rnd(6), 1 << 20);
    if (b) pending.push([b.firstSeq, b.payloads.length]);
    while (pending.length > 4) ack(pending.splice(rnd(pending.length), 1)[0]!);
    if (rnd(4) === 0) await ring.sync();
  }
  return { acked, pending };
}

function lcg(seed: number): (n: number) => number {
  let x = seed >>> 0;
  return (n) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
}

/** A closed ring of 64 KiB holding records 1..n, none acknowledged. */
async function closedRingWith(n: number): Promise<{ dir: string; path: string }> {
  const dir = tempDir();
  const ring = await openRing({ dir, capacityBytes: 64 * 1024, syncIntervalMs: 60_000 });
  await appendPayloads(ring, Array.from({ length: n }, (_, i) => recordFor(i + 1)));
  await ring.close();
  return { dir, path: join(dir, RING_FILE) };
}

describe("rebuilt from the records", () => {
  test("a wrapped ring whose first 8 KiB were zeroed: every record not acknowledged arrives, in order, intact; then it runs on", async () => {
    const dir = tempDir();
    const path = join(dir, RING_FILE);
    const cap = 48 * 1024;
    const ring = await openRing({ dir, capacityBytes: cap, syncIntervalMs: 60_000 });
    const { acked } = await drive(ring, 300, lcg(7));
    const last = ring.lastSeq();
    const stillThere = Array.from({ length: last - ring.stats().readSeq + 1 }, (_, i) => ring.stats().readSeq + i).filter((q) => !acked.has(q));
    await ring.close();
    expect(header(path).writePos).toBeGreaterThan(3 * dataBytesOf(cap)); // several laps
    zeroHeaders(path);

    const log = captureLog();
    const again = await openRing({ dir, capacityBytes: cap, syncIntervalMs: 60_000, log });
    expect(again.lastSeq()).toBe(last);
    const got = drainCopies(again);
    expectGenuine(got);
    const seqs = new Set(got.map((g) => g.seq));
    expect(stillThere.filter((q) => !seqs.has(q))).toEqual([]); // none missing
    // What comes besides: records acknowledged before the headers were lost (at least once).
    for (const g of got) if (!stillThere.includes(g.seq)) expect(acked.has(g.seq)).toBe(true);
    expect(again.stats().recoverySkippedRecords).toBe(0);
    expect(again.stats().recoveryMovedAsideBytes).toBe(DATA_OFFSET);
    expect(readdirSync(dir).filter((n) => n.startsWith("ring.dat.invalid-"))).toEqual([expect.stringMatching(/\.headers$/)]);
    expect(log.lines.find((l) => l.level === "error")?.msg).toContain("rebuilt the header");

    // It runs on: new records follow, and a reopen finds a clean ring with only them.
    again.ack(got[0]!.seq, last - got[0]!.seq + 1);
    expect(await appendPayloads(again, [recordFor(last + 1)])).toBe(last + 1);
    await again.close();
    const third = await openRing({ dir, capacityBytes: cap, syncIntervalMs: 60_000 });
    expect(drainCopies(third).map((g) => g.seq)).toEqual([last + 1]);
    expect([third.stats().recoverySkippedRecords, third.stats().recoveryCutBytes, third.stats().recoveryMovedAsideFiles]).toEqual([0, 0, 0]);
    await third.close();
  });

  test("damage in the records as well: the hole is skipped and counted, the rest arrives", async () => {
    const { dir, path } = await closedRingWith(30);
    const recs = records(path);
    flipBit(path, recs[11]!.fileOffset + RECORD_HEADER_BYTES + 3);
    zeroHeaders(path);
    const again = await openRing({ dir, capacityBytes: 64 * 1024, syncIntervalMs: 60_000 });
    const got = drainCopies(again);
    expectGenuine(got);
    expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1).filter((q) => q !== 12));
    expect(again.stats().recoverySkippedRecords).toBe(1);
    await again.close();
  });

  test("a zeroed first record too, a file cut short at no multiple of 4 KiB: the rest arrives, the file gets its size back", async () => {
    const { dir, path } = await closedRingWith(10);
    const recs = records(path);
    writeAt(path, 0, new Uint8Array(recs[1]!.fileOffset)); // headers and record 1
    const cutAt = recs[9]!.fileOffset + recordSpan(recs[9]!.length) + 5;
    expect(cutAt % 4096).not.toBe(0);
    truncateSync(path, cutAt);
    const again = await openRing({ dir, capacityBytes: 64 * 1024, syncIntervalMs: 60_000 });
    const got = drainCopies(again);
    expectGenuine(got);
    expect(got.map((g) => g.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(statSync(path).size).toBe(64 * 1024);
    await again.close();
  });

  test("the unused end of a lap holds an older lap's records and the newest record's predecessor is damaged: the newest still arrives", async () => {
    // Data region of 4096 bytes. Lap 1: eight records of 504 bytes (1..8, the last at 3528, then a
    // wrap marker at 4032). Lap 2: records 9 and 10 of 1448 bytes, then a wrap marker at 2896:
    // records 7 and 8 of lap 1 stay in the unused end, intact. Lap 3: record 11 at 0. Record 10 is damaged.
    const dir = tempDir();
    const path = join(dir, RING_FILE);
    const sized = (seq: number, span: number) => enc.encode(`{"seq":${seq},"pad":"${"p".repeat(span - RECORD_HEADER_BYTES - 17 - String(seq).length)}"}`);
    const sent = new Map<number, Uint8Array>();
    const ring = await openRing({ dir, capacityBytes: 12288, syncIntervalMs: 60_000 });
    const put = async (seq: number, span: number) => {
      const p = sized(seq, span);
      expect(recordSpan(p.length)).toBe(span);
      sent.set(seq, p);
      expect(await appendPayloads(ring, [p])).toBe(seq);
    };
    for (let s = 1; s <= 8; s++) await put(s, 504);
    ring.ack(1, 8);
    await ring.sync();
    await put(9, 1448);
    await put(10, 1448);
    ring.ack(9, 1);
    await ring.sync();
    await put(11, 1448);
    await ring.close();
    expect(records(path).map((r) => [r.seq, r.fileOffset - DATA_OFFSET])).toEqual([
      [10, 1448],
      [11, 0],
    ]);
    flipBit(path, DATA_OFFSET + 1448 + RECORD_HEADER_BYTES + 10);
    zeroHeaders(path);
    const again = await openRing({ dir, capacityBytes: 12288, syncIntervalMs: 60_000 });
    const got = drainCopies(again);
    for (const g of got) expect(Array.from(g.bytes)).toEqual(Array.from(sent.get(g.seq)!));
    expect(got.map((g) => g.seq)).toContain(11);
    expect(again.lastSeq()).toBe(11);
    await again.close();
  });

  test("a zero-filled file or one of random bytes holds no record: nothing to rebuild (the open moves it aside whole, as before)", () => {
    const zeros = new Uint8Array(64 * 1024);
    expect(findNewestRun(zeros.subarray(DATA_OFFSET), dataBytesOf(zeros.length))).toBeNull();
    const junk = crypto.getRandomValues(new Uint8Array(64 * 1024));
    expect(findNewestRun(junk.subarray(DATA_OFFSET), dataBytesOf(junk.length))).toBeNull();
  });
});

describe("rebuilt after a crash (property)", () => {
  test("a kill or a power loss, then both headers zeroed: every durable record not acknowledged arrives, nothing corrupt, in order", async () => {
    let runs = 0;
    let powerLosses = 0;
    let againDelivered = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer(), fc.integer({ min: 20, max: 400 }), fc.boolean(), fc.integer({ min: 1, max: 5 }), async (seed, steps, powerLoss, keepOneIn) => {
        const disk = new MemoryDisk();
        const clock = new ManualClock();
        const cap = [16 * 1024, 24 * 1024, 40 * 1024][Math.abs(seed) % 3]!;
        const ring = await openRing({ dir: disk.dir, capacityBytes: cap, syncIntervalMs: 60_000, storage: disk, clock });
        const rnd = lcg(seed);
        const { acked } = await drive(ring, steps, rnd);
        const durable = ring.durableSeq();
        const last = ring.lastSeq();
        // What must come back: every record not acknowledged that the disk surely holds.
        const must = powerLoss ? durable : last;
        const readSeq = ring.stats().readSeq;
        const wanted = Array.from({ length: Math.max(0, must - readSeq + 1) }, (_, i) => readSeq + i).filter((q) => !acked.has(q));
        const after = disk.crash(powerLoss ? (_, page) => rnd(keepOneIn) === 0 : () => true);
        after.bytesOf(RING_FILE).fill(0, 0, DATA_OFFSET);
        const again = await openRing({ dir: after.dir, capacityBytes: cap, syncIntervalMs: 60_000, storage: after, clock: new ManualClock() });
        const got = drainCopies(again);
        expectGenuine(got);
        const seqs = new Set(got.map((g) => g.seq));
        expect(wanted.filter((q) => !seqs.has(q))).toEqual([]);
        expect(again.lastSeq()).toBeLessThanOrEqual(last);
        againDelivered += got.filter((g) => acked.has(g.seq)).length;
        // It runs on after that: acknowledge all, append, reopen cleanly.
        const top = again.lastSeq();
        if (top >= again.stats().readSeq) again.ack(again.stats().readSeq, top - again.stats().readSeq + 1);
        expect(await appendPayloads(again, [recordFor(top + 1)])).toBe(top + 1);
        await again.close();
        const third = await openRing({ dir: after.dir, capacityBytes: cap, syncIntervalMs: 60_000, storage: after, clock: new ManualClock() });
        expect(drainCopies(third).map((g) => g.seq)).toEqual([top + 1]);
        await third.close();
        await ring.close();
        runs++;
        if (powerLoss) powerLosses++;
      }),
      // The example: a hole of bytes but no records (the reader once read it as record 522).
      { numRuns: 120, examples: [[-1692277482, 274, true, 4]] },
    );
    expect(runs).toBe(120); // the example included
    expect(powerLosses).toBeGreaterThan(20);
    console.log(`header rebuilds: ${runs} (${powerLosses} after a power loss); ${againDelivered} acknowledged records delivered again`);
  }, 60_000);
});
