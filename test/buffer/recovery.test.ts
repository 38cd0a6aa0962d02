// Corruption and recovery (issue 3, "Corruption"): whatever the file holds, the ring opens, and it
// never hands out a corrupt or stale record.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DATA_OFFSET, HEADER_SLOT_BYTES, KIND_DATA, RECORD_HEADER_BYTES, dataBytesOf, recordSpan, writeRecordHeader } from "../../src/buffer/format.ts";
import { openRing } from "../../src/buffer/ring.ts";
import { flipBit, header, readAt, records, writeAt } from "./filetools.ts";
import { captureLog, cleanupDirs, drainCopies, indexOf, payload, tempDir } from "./helpers.ts";
import { appendPayloads, readPayloads } from "../support/ring-payloads.ts";

afterEach(cleanupDirs);
const CAP = 128 * 1024;

async function ringWith(n: number, size = 200, cap = CAP): Promise<{ dir: string; path: string; sent: Uint8Array[] }> {
  const dir = tempDir();
  const ring = await openRing({ dir, capacityBytes: cap, syncIntervalMs: 60_000 });
  const sent = Array.from({ length: n }, (_, i) => payload(i + 1, size));
  await appendPayloads(ring, sent);
  await ring.close();
  return { dir, path: join(dir, "ring.dat"), sent };
}

/** Every record handed out is byte-identical to what was appended with that sequence number. */
function expectIntact(got: { seq: number; bytes: Uint8Array }[], sent: Uint8Array[]): void {
  for (const g of got) expect(Array.from(g.bytes)).toEqual(Array.from(sent[g.seq - 1]!));
}

describe("recovery from damage", () => {
  test("a bit flip in a record body: that record is skipped, the rest delivered in order, counted and logged", async () => {
    const { dir, path, sent } = await ringWith(20);
    const recs = records(path);
    flipBit(path, recs[7]!.fileOffset + RECORD_HEADER_BYTES + 50, 3);
    const log = captureLog();
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000, log });
    const got = drainCopies(ring);
    expect(got.map((g) => g.seq)).toEqual([...Array.from({ length: 7 }, (_, i) => i + 1), ...Array.from({ length: 12 }, (_, i) => i + 9)]);
    expectIntact(got, sent);
    const st = ring.stats();
    expect(st.recoverySkippedRecords).toBe(1);
    expect(st.recoverySkippedBytes).toBe(recordSpan(recs[7]!.length));
    expect(st.records).toBe(19);
    const warn = log.lines.find((l) => l.msg.includes("skipped damaged"));
    expect(warn?.fields).toMatchObject({ records: 1, bytes: recordSpan(recs[7]!.length) });
    // Acknowledging everything passes over the hole; a later open finds no damage.
    ring.ack(1, 20);
    expect(ring.stats().readSeq).toBe(21);
    expect(await appendPayloads(ring, [payload(21)])).toBe(21);
    await ring.close();
    const again = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    expect(again.stats().recoverySkippedRecords).toBe(0);
    expect(drainCopies(again).map((g) => indexOf(g.bytes))).toEqual([21]);
    await again.close();
  });

  test("batches never span a hole", async () => {
    const { dir, path } = await ringWith(10);
    flipBit(path, records(path)[4]!.fileOffset + RECORD_HEADER_BYTES + 1);
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    const a = readPayloads(ring, 100, 1 << 20)!;
    expect([a.firstSeq, a.payloads.length]).toEqual([1, 4]);
    const b = readPayloads(ring, 100, 1 << 20)!;
    expect([b.firstSeq, b.payloads.length]).toEqual([6, 5]);
    ring.ack(6, 5); // out of order, across the hole: the read position waits for 1..4
    expect(ring.stats().readSeq).toBe(1);
    ring.ack(1, 4);
    expect(ring.stats().readSeq).toBe(11);
    await ring.close();
  });

  test("a bit flip in a length field: resynchronises on the next record", async () => {
    const { dir, path, sent } = await ringWith(12);
    const recs = records(path);
    flipBit(path, recs[3]!.fileOffset + 4 + 1, 6); // length += 16384
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    const got = drainCopies(ring);
    expect(got.map((g) => g.seq)).toEqual([1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]);
    expectIntact(got, sent);
    expect(ring.stats().recoverySkippedRecords).toBe(1);
    await ring.close();
  });

  test("damage in several places, including the first record", async () => {
    const { dir, path, sent } = await ringWith(30);
    const recs = records(path);
    for (const k of [0, 1, 10, 20]) flipBit(path, recs[k]!.fileOffset + RECORD_HEADER_BYTES + 5);
    flipBit(path, recs[15]!.fileOffset + 9); // the sequence number field
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    const got = drainCopies(ring);
    const expected = Array.from({ length: 30 }, (_, i) => i + 1).filter((s) => ![1, 2, 11, 16, 21].includes(s));
    expect(got.map((g) => g.seq)).toEqual(expected);
    expectIntact(got, sent);
    expect(ring.stats().recoverySkippedRecords).toBe(5);
    await ring.close();
  });

  test("a torn last record is cut, counted and logged; appends continue after it", async () => {
    const { dir, path, sent } = await ringWith(10);
    const recs = records(path);
    flipBit(path, recs[9]!.fileOffset + RECORD_HEADER_BYTES + 100);
    const log = captureLog();
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000, log });
    const got = drainCopies(ring);
    expect(got.map((g) => g.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expectIntact(got, sent);
    expect(ring.stats().recoveryCutBytes).toBeGreaterThan(0);
    expect(ring.stats().recoverySkippedRecords).toBe(0);
    expect(log.lines.some((l) => l.level === "warn" && l.msg.includes("cut"))).toBe(true);
    expect(await appendPayloads(ring, [payload(100)])).toBe(10);
    await ring.close();
    const again = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    const all = drainCopies(again);
    expect(all.map((g) => g.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(indexOf(all[9]!.bytes)).toBe(100);
    expect(again.stats().recoveryCutBytes).toBe(0);
    await again.close();
  });

  test("a stale previous-lap record right after the write position is not returned", async () => {
    const dir = tempDir();
    const path = join(dir, "ring.dat");
    const ring = await openRing({ dir, capacityBytes: 64 * 1024, syncIntervalMs: 60_000 });
    // Several laps, acking as we go, so that the file is full of earlier laps' valid records.
    let seq = 0;
    for (let i = 1; i <= 600; i++) {
      seq = await appendPayloads(ring, [payload(i, 500)]);
      if (i % 10 === 0) {
        ring.ack(seq - 9, 10);
        await ring.sync();
      }
    }
    await appendPayloads(ring, [payload(601, 500), payload(602, 500)]);
    await ring.close();
    const h = header(path);
    expect(h.writePos).toBeGreaterThan(dataBytesOf(h.fileBytes) * 3); // it wrapped several times
    // Plant a perfectly valid record of an earlier lap (good CRC, old sequence number) at the
    // write position, where the next record would go.
    const D = dataBytesOf(h.fileBytes);
    const stale = payload(7, 500);
    const rec = new Uint8Array(recordSpan(stale.length));
    rec.set(stale, RECORD_HEADER_BYTES);
    writeRecordHeader(new DataView(rec.buffer), 0, KIND_DATA, h.nextSeq - 200, stale.length, stale, h.epoch);
    const at = DATA_OFFSET + (h.writePos % D);
    expect(at + rec.length).toBeLessThanOrEqual(DATA_OFFSET + D);
    writeAt(path, at, rec);
    const again = await openRing({ dir, capacityBytes: 64 * 1024, syncIntervalMs: 60_000 });
    const got = drainCopies(again);
    expect(got.map((g) => indexOf(g.bytes))).toEqual([601, 602]);
    expect(got.map((g) => g.seq)).toEqual([601, 602]);
    expect(again.lastSeq()).toBe(602);
    const st = again.stats();
    expect([st.recoverySkippedRecords, st.recoveryCutBytes]).toEqual([0, 0]);
    await again.close();
  });

  test("a bit flip in the newest header copy: the other copy is used and nothing unacked is lost", async () => {
    const dir = tempDir();
    const path = join(dir, "ring.dat");
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    const sent = Array.from({ length: 30 }, (_, i) => payload(i + 1, 200));
    await appendPayloads(ring, sent.slice(0, 20));
    ring.ack(1, 5);
    await ring.sync();
    await appendPayloads(ring, sent.slice(20));
    ring.ack(6, 5);
    await ring.close();
    const h = header(path);
    const newest = h.generation % 2;
    flipBit(path, newest * HEADER_SLOT_BYTES + 33); // inside the read position
    const log = captureLog();
    const again = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000, log });
    const got = drainCopies(again);
    // The older copy's read position: records acked later come again (at least once), none lost.
    expect(got[0]!.seq).toBeLessThanOrEqual(11);
    expect(got.at(-1)!.seq).toBe(30);
    expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 31 - got[0]!.seq }, (_, i) => got[0]!.seq + i));
    expectIntact(got, sent);
    expect(log.lines.some((l) => l.msg.includes("header copy is damaged"))).toBe(true);
    await again.close();
  });

  test("both header copies damaged: the header is rebuilt from the records, the damaged headers are kept, every record arrives", async () => {
    const { dir, path, sent } = await ringWith(5);
    flipBit(path, 40);
    flipBit(path, HEADER_SLOT_BYTES + 40);
    const before = readAt(path, 0, 8192);
    const log = captureLog();
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000, log });
    expect(ring.lastSeq()).toBe(5);
    const got = drainCopies(ring);
    expect(got.map((g) => g.seq)).toEqual([1, 2, 3, 4, 5]);
    expectIntact(got, sent);
    // Only the unreadable headers are set aside, byte for byte; the file itself stays.
    const aside = readdirSync(dir).filter((f) => f.startsWith("ring.dat.invalid-"));
    expect(aside).toEqual([expect.stringMatching(/\.headers$/)]);
    expect(Array.from(readAt(join(dir, aside[0]!), 0, 8192))).toEqual(Array.from(before));
    const err = log.lines.find((l) => l.level === "error");
    expect(err?.msg).toContain("rebuilt the header");
    expect(err?.fields.reason).toContain("both header copies damaged");
    expect(err?.fields.records).toBe(5);
    expect(ring.stats().recoveryMovedAsideFiles).toBe(1);
    expect(ring.stats().recoveryMovedAsideBytes).toBe(8192);
    expect(await appendPayloads(ring, [payload(6)])).toBe(6);
    await ring.close();
  });

  test("a file cut inside the second header copy: the first copy is used, the records are cut", async () => {
    const { dir, path } = await ringWith(5);
    truncateSync(path, 100);
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    expect(readPayloads(ring, 10, 1 << 20)).toBeNull();
    expect(ring.stats().recoveryCutBytes).toBeGreaterThan(0);
    expect(await appendPayloads(ring, [payload(1)])).toBe(1);
    await ring.close();
  });

  test("a truncated file: kept records are delivered, the lost part is cut, the file regains its size", async () => {
    const { dir, path, sent } = await ringWith(100, 500);
    const recs = records(path);
    truncateSync(path, recs[60]!.fileOffset + 100);
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    const got = drainCopies(ring);
    expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expectIntact(got, sent);
    expect(ring.stats().recoveryCutBytes).toBeGreaterThan(0);
    expect(statSync(path).size).toBe(CAP);
    await ring.close();
  });

  test("a file truncated inside its header, a zero-filled file, a file of random bytes, an empty file: moved aside", async () => {
    for (const make of [
      (p: string) => truncateSync(p, 40),
      (p: string) => writeFileSync(p, new Uint8Array(CAP)),
      (p: string) => writeFileSync(p, crypto.getRandomValues(new Uint8Array(65536))),
      (p: string) => writeFileSync(p, new Uint8Array(0)),
    ]) {
      const { dir, path } = await ringWith(3);
      make(path);
      const log = captureLog();
      const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000, log });
      expect(ring.lastSeq()).toBe(0);
      expect(readPayloads(ring, 10, 1 << 20)).toBeNull();
      expect(readdirSync(dir).filter((f) => f.startsWith("ring.dat.invalid-")).length).toBe(1);
      expect(log.lines.some((l) => l.level === "error" && l.msg.includes("moved it aside"))).toBe(true);
      expect(await appendPayloads(ring, [payload(1)])).toBe(1);
      await ring.close();
    }
  });

  test("random bytes over the data region: opens, and every record it returns is genuine", async () => {
    const { dir, path, sent } = await ringWith(200, 300);
    const D = dataBytesOf(CAP);
    for (let k = 0; k < 20; k++) {
      const at = DATA_OFFSET + Math.floor(Math.random() * (D - 64));
      writeAt(path, at, crypto.getRandomValues(new Uint8Array(1 + Math.floor(Math.random() * 40))));
    }
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    const got = drainCopies(ring);
    expectIntact(got, sent);
    for (let i = 1; i < got.length; i++) expect(got[i]!.seq).toBeGreaterThan(got[i - 1]!.seq);
    await ring.close();
  });

  test("a leftover temporary file from an interrupted create is removed", async () => {
    const { dir, path } = await ringWith(3);
    writeFileSync(`${path}.tmp`, "partial");
    const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
    expect(existsSync(`${path}.tmp`)).toBe(false);
    expect(ring.lastSeq()).toBe(3);
    await ring.close();
  });
});

describe("capacity change", () => {
  test("growing and shrinking keeps every unsent record, in order, byte-identical", async () => {
    const { dir, path, sent } = await ringWith(120, 500);
    const r1 = await openRing({ dir, capacityBytes: 256 * 1024, syncIntervalMs: 60_000 });
    expect(statSync(path).size).toBe(256 * 1024);
    r1.ack(1, 10);
    await r1.close();
    // Shrink below what the 110 unsent records need (58 KB > 56 KiB): the ring keeps them all.
    const log = captureLog();
    const r2 = await openRing({ dir, capacityBytes: 64 * 1024, syncIntervalMs: 60_000, log });
    expect(log.lines.some((l) => l.msg.includes("need more room"))).toBe(true);
    const got = drainCopies(r2);
    expect(statSync(path).size).toBeGreaterThan(64 * 1024);
    expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 110 }, (_, i) => i + 11));
    expectIntact(got, sent);
    r2.ack(11, 110);
    await r2.close();
    // Drained: the next start shrinks it to the configured size.
    const r3 = await openRing({ dir, capacityBytes: 64 * 1024, syncIntervalMs: 60_000 });
    expect(statSync(path).size).toBe(64 * 1024);
    expect(r3.lastSeq()).toBe(120);
    expect(await appendPayloads(r3, [payload(121)])).toBe(121);
    await r3.close();
  });
});

describe("random damage (property)", () => {
  test("whatever bytes are damaged, the ring opens and returns only genuine records, in order", async () => {
    const fc = (await import("fast-check")).default;
    // One wrapped ring file as the starting point for every case.
    const base = tempDir();
    const cap = 64 * 1024;
    const ring = await openRing({ dir: base, capacityBytes: cap, syncIntervalMs: 60_000 });
    const sent: Uint8Array[] = [];
    for (let i = 1; i <= 400; i++) {
      sent.push(payload(i, 100 + ((i * 37) % 400)));
      await appendPayloads(ring, [sent[i - 1]!]);
      if (i % 20 === 0) ring.ack(1, i - 5); // all but the last five (the part below readSeq is ignored)
      if (i % 40 === 0) await ring.sync();
    }
    await ring.close();
    expect(header(join(base, "ring.dat")).writePos).toBeGreaterThan(cap); // it wrapped
    const original = new Uint8Array(await Bun.file(join(base, "ring.dat")).arrayBuffer());
    let opened = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: cap - 1 }), len: fc.integer({ min: 1, max: 64 }), mode: fc.constantFrom("flip", "zero", "random") }), { minLength: 1, maxLength: 8 }),
        async (damage) => {
          const dir = tempDir();
          const img = original.slice();
          for (const d of damage) {
            for (let i = d.at; i < Math.min(cap, d.at + (d.mode === "flip" ? 1 : d.len)); i++) {
              img[i] = d.mode === "flip" ? img[i]! ^ (1 << d.len % 8) : d.mode === "zero" ? 0 : (Math.random() * 256) | 0;
            }
          }
          writeFileSync(join(dir, "ring.dat"), img);
          const r = await openRing({ dir, capacityBytes: cap, syncIntervalMs: 60_000 });
          const got = drainCopies(r);
          expectIntact(got, sent);
          for (let i = 1; i < got.length; i++) expect(got[i]!.seq).toBeGreaterThan(got[i - 1]!.seq);
          expect(await appendPayloads(r, [payload(999)])).toBe(r.lastSeq());
          await r.close();
          opened++;
        },
      ),
      { numRuns: 150 },
    );
    expect(opened).toBe(150);
  }, 60_000);
});
