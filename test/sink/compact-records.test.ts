// Compact records leave the ring as full records (docs/ring-format.md "Compact records"): the
// batch body is byte for byte what full records give, chunks are cut by the full records' size,
// dead letters hold full records, the tap reads their timestamps, a ring written by an older
// version (full records only) reads as it did, and a record whose prefix is unknown is
// dead-lettered and acknowledged while everything else is delivered.
import { afterEach, expect, test } from "bun:test";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { compactRecord } from "../../src/buffer/compact-record.ts";
import { PrefixTable } from "../../src/buffer/prefix-table.ts";
import { openRing, RING_FILE } from "../../src/buffer/ring.ts";
import { dataDirFiles } from "../../src/platform/atomic-file.ts";
import { BatchBuffer } from "../../src/sink/batch.ts";
import { RecordExpander, type UnresolvedRecord } from "../../src/sink/record-expander.ts";
import { recordTimestampMs } from "../../src/sink/ring-tap.ts";
import { acquireNow, cleanupDirs, payload as v1Payload, tempDir } from "../buffer/helpers.ts";
import { bench, type Bench, captureLogger, expectAcksCoverOnce } from "./harness.ts";
import { makeRecord, waitFor } from "./helpers.ts";
import { openTestRing } from "./ring.ts";

let b: Bench | null = null;
afterEach(async () => {
  await b?.close();
  b = null;
  cleanupDirs();
});

const te = new TextEncoder();
/** The prefix of makeRecord's records: everything up to and including `"timestamp":`. */
const prefixText = (full: Uint8Array) => {
  const s = new TextDecoder().decode(full);
  return s.slice(0, s.indexOf('"timestamp":') + '"timestamp":'.length);
};

function table(dir: string): PrefixTable {
  return new PrefixTable(dataDirFiles(dir), captureLogger([]), () => 1);
}

/** Records i in [0, n): even ones compact (two prefixes: i % 4), odd ones full. */
function mixed(t: PrefixTable, n: number, message?: (i: number) => string | undefined): { stored: Uint8Array[]; full: Uint8Array[] } {
  const stored: Uint8Array[] = [];
  const full: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const rec = { ...makeRecord(i, message?.(i)), containerName: i % 4 === 0 ? "main" : "wait" };
    const f = te.encode(JSON.stringify(rec));
    full.push(f);
    if (i % 2 === 1) stored.push(f);
    else {
      const prefix = prefixText(f);
      stored.push(compactRecord(f, te.encode(prefix), acquireNow(t, prefix) as number));
    }
  }
  return { stored, full };
}

test("full and compact records in the ring: batch bodies are byte for byte the full records, chunks cut by their full size", async () => {
  const dir = tempDir("compact-");
  const ring = await openTestRing(join(dir, "data"), 4 * 1024 * 1024);
  const t = table(dir);
  const { stored, full } = mixed(t, 500);
  await ring.append(stored);
  expect(ring.stats().appendedBytes).toBeLessThan(full.reduce((a, f) => a + f.length, 0) * 0.8);
  const unresolved: UnresolvedRecord[] = [];
  const records = new RecordExpander(ring, t, (u) => unresolved.push(u));
  const maxBytes = 20_000;
  const batch = new BatchBuffer(1 << 20, 1024).reset(1);
  let chunks = 0;
  for (let r = records.readRanges(1024, maxBytes); r; r = records.readRanges(1024, maxBytes)) {
    chunks++;
    expect(r.firstSeq).toBe(batch.firstSeq + batch.count);
    expect(r.bytes).toBeLessThanOrEqual(maxBytes);
    let fullBytes = 0;
    for (let i = 0; i < r.count; i++) fullBytes += full[r.firstSeq - 1 + i]!.length;
    expect(r.bytes).toBe(fullBytes);
    batch.addRanges(r);
  }
  batch.finish();
  expect(chunks).toBeGreaterThan(5);
  expect(unresolved).toEqual([]);
  const expected = `[${full.map((f) => new TextDecoder().decode(f)).join(",")}]`;
  expect(Buffer.from(batch.body).equals(Buffer.from(expected))).toBe(true);
  await ring.close();
});

test("a ring written by the version 1 code (full records only) reads through the expander as it did", async () => {
  const dir = tempDir("compact-v1-");
  copyFileSync(join(import.meta.dir, "../fixtures/ring-v1.dat"), join(dir, RING_FILE));
  const ring = await openRing({ dir, capacityBytes: 12288, syncIntervalMs: 60_000 });
  const t = table(dir);
  t.noteRecords((visit) => ring.forEachUnread(visit));
  expect(t.stats().unknownAtOpen).toBe(0);
  const records = new RecordExpander(ring, t, () => {
    throw new Error("no record is compact");
  });
  const got: Array<{ seq: number; bytes: Uint8Array }> = [];
  for (let r = records.readRanges(100, 1 << 20); r; r = records.readRanges(100, 1 << 20)) {
    expect(r.prefixes).toBeNull();
    for (let i = 0; i < r.count; i++) got.push({ seq: r.firstSeq + i, bytes: r.data.subarray(r.offsets[2 * i], r.offsets[2 * i + 1]) });
  }
  expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 12 }, (_, i) => 49 + i));
  for (const g of got) expect(Array.from(g.bytes)).toEqual(Array.from(v1Payload(g.seq, 100 + (g.seq % 5) * 20)));
  await ring.close();
});

test("the tap reads a compact record's timestamp as it reads the full record's", () => {
  const t = table(tempDir("compact-tap-"));
  const { stored, full } = mixed(t, 4);
  expect(stored[0]![0]).toBe(1);
  expect(recordTimestampMs(stored[0]!)).not.toBeNull();
  expect(recordTimestampMs(stored[0]!)).toBe(recordTimestampMs(full[0]!));
  expect(recordTimestampMs(stored[2]!)).toBe(recordTimestampMs(full[2]!));
});

const deadLetters = (dir: string) => {
  const p = join(dir, "data", "dead-letter.jsonl");
  return existsSync(p) ? readFileSync(p, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
};

test("the sender: a refused compact record is dead-lettered as its full record; one whose prefix is unknown is dead-lettered as stored; the rest arrive once", async () => {
  const dir = tempDir("compact-sender-");
  const t = table(dir);
  b = await bench({ faults: { poisonMarker: "POISON" }, messenger: { batchMaxEvents: 256, flushIntervalMs: 200 }, start: false, deps: { prefixes: t } });
  const n = 600;
  const { stored, full } = mixed(t, n, (i) => (i === 300 ? "line 300 POISON pill" : undefined));
  // Record 401 refers to a prefix the table never held (a damaged table).
  const lostPrefix = prefixText(full[401]!);
  stored[401] = compactRecord(full[401]!, te.encode(lostPrefix), 9999);
  await b.ring.append(stored);
  b.sender.start();
  await b.waitAcked(n);
  b.expectExactlyOnce(n, [300, 401]);
  // Byte for byte: each received record re-serialises to the full record that was encoded.
  const byIndex = new Map(b.messenger.received().map((r) => [Number(/^line (\d+)/.exec(r.message)![1]), JSON.stringify(r)]));
  for (let i = 0; i < n; i++) if (i !== 300 && i !== 401) expect(byIndex.get(i)).toBe(new TextDecoder().decode(full[i]));
  const dl = deadLetters(b.dir);
  expect(dl).toHaveLength(2);
  const refused = dl.find((d) => d.status === 400);
  expect(refused.record).toEqual({ ...makeRecord(300, "line 300 POISON pill"), containerName: "main" });
  const corrupt = dl.find((d) => d.status === 0);
  expect(corrupt.seq).toBe(402);
  expect(corrupt.answer).toContain("prefix 9999 is not in the prefix table");
  expect(corrupt.recordText).toContain('"line 401');
  const s = b.sender.stats();
  expect(s.deadLetteredEvents).toBe(2);
  expect(s.eventsSent).toBe(n - 2);
  expectAcksCoverOnce(b.acks, n);
  expect(b.logs.some((l) => l.level === "error" && l.msg.includes("cannot be expanded"))).toBe(true);
});

test("without a prefix table (an older caller), compact records are dead-lettered, full ones delivered", async () => {
  b = await bench({ messenger: { batchMaxEvents: 64, flushIntervalMs: 100 }, start: false });
  const t = table(tempDir("compact-none-"));
  const { stored } = mixed(t, 10);
  await b.ring.append(stored);
  b.sender.start();
  await b.waitAcked(10);
  b.expectExactlyOnce(10, [0, 2, 4, 6, 8]);
  await waitFor(() => deadLetters(b!.dir).length === 5, 5000, "dead letters");
  expect(deadLetters(b.dir).map((d) => d.seq)).toEqual([1, 3, 5, 7, 9]);
});
