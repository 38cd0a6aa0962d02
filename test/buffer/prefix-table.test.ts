// Compact records and the prefix table (docs/ring-format.md "Compact records"): expansion gives
// back the full record byte for byte, the table makes a prefix durable before handing out its id,
// never reuses an id, drops only prefixes no record a restart could read uses, and a damaged or
// lost table reports the records it cannot resolve instead of splicing them onto another prefix.
import { afterEach, expect, test } from "bun:test";
import fc from "fast-check";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { COMPACT_TAG, compactHead, compactRecord, expandRecord, MAX_PREFIX_ID, readCompactHead } from "../../src/buffer/compact-record.ts";
import { decodePrefixTable, PREFIX_TABLE_FILE, PrefixTable } from "../../src/buffer/prefix-table.ts";
import { dataDirFiles } from "../../src/platform/atomic-file.ts";
import { captureLogger, type LogLine } from "../sink/harness.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { acquireNow, cleanupDirs, tempDir } from "./helpers.ts";

afterEach(cleanupDirs);

const te = new TextEncoder();
const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

test("expand(compact(record)) is the record, for any prefix, suffix and id", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 1, max: MAX_PREFIX_ID }), (prefix, suffix, id) => {
      const full = concat(prefix, suffix);
      const stored = compactRecord(full, prefix, id);
      expect(stored[0]).toBe(COMPACT_TAG);
      const got = expandRecord(stored, (i) => (i === id ? prefix : undefined));
      expect(got).not.toBeNull();
      expect(Buffer.from(got as Uint8Array).equals(Buffer.from(full))).toBe(true);
    }),
    { numRuns: 2000 },
  );
});

test("the compact head: ids round-trip in one to five bytes; malformed heads and unknown ids are refused", () => {
  const head = { id: 0, length: 0 };
  for (const id of [1, 127, 128, 16383, 16384, 2 ** 21, 2 ** 28 + 5, MAX_PREFIX_ID]) {
    const h = compactHead(id);
    const withSuffix = concat(h, te.encode('"2026"}'));
    expect(readCompactHead(withSuffix, 0, withSuffix.length, head)).toBe(true);
    expect(head).toEqual({ id, length: h.length });
  }
  expect(compactHead(127).length).toBe(2);
  expect(compactHead(128).length).toBe(3);
  expect(compactHead(MAX_PREFIX_ID).length).toBe(6);
  expect(() => compactHead(0)).toThrow();
  expect(() => compactHead(MAX_PREFIX_ID + 1)).toThrow();
  // A full record (first byte `{`) is not compact and expands to itself.
  const full = te.encode('{"orgUUID":"o","timestamp":"t"}');
  expect(readCompactHead(full, 0, full.length, head)).toBe(false);
  expect(expandRecord(full, () => undefined)).toBe(full);
  // Unknown id, a varint running off the end, an id 0: no full record.
  expect(expandRecord(concat(compactHead(9), te.encode('"x"}')), () => undefined)).toBeNull();
  expect(expandRecord(Uint8Array.of(COMPACT_TAG, 0x80, 0x80), () => te.encode("{"))).toBeNull();
  expect(expandRecord(Uint8Array.of(COMPACT_TAG, 0x00, 0x22), () => te.encode("{"))).toBeNull();
  expect(expandRecord(Uint8Array.of(COMPACT_TAG, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), () => te.encode("{"))).toBeNull();
});

const prefixOf = (n: number) => `{"orgUUID":"org","runUUID":"run","pipeUUID":"pipe","nodeID":"n","podName":"pod-${n}","containerName":"main","timestamp":`;

function open(dir: string, durableReadSeq = () => 1, logs: LogLine[] = []): PrefixTable {
  return new PrefixTable(dataDirFiles(dir), captureLogger(logs), durableReadSeq, new ManualClock(1234));
}

test("a new prefix is in the file before its id is handed out; the same prefix gets the same id, after a restart too", () => {
  const dir = tempDir("prefixes-");
  const t = open(dir);
  const a = acquireNow(t, prefixOf(1)) as number;
  expect(a).toBe(1);
  // Durable before acquire returned: the file on disk already holds it.
  expect(decodePrefixTable(readFileSync(join(dir, PREFIX_TABLE_FILE), "utf8")).prefixes).toEqual([[1, prefixOf(1)]]);
  expect(acquireNow(t, prefixOf(1))).toBe(1);
  const b = acquireNow(t, prefixOf(2)) as number;
  expect(b).toBe(2);
  expect(new TextDecoder().decode(t.prefix(b))).toBe(prefixOf(2));
  expect(t.stats()).toMatchObject({ prefixes: 2, writes: 2, writeFailures: 0 });
  const again = open(dir);
  expect(acquireNow(again, prefixOf(2))).toBe(2);
  expect(acquireNow(again, prefixOf(3))).toBe(3);
  expect(again.stats().writes).toBe(1);
});

test("when the table cannot be written the id is refused (records are stored whole) and nothing changes", () => {
  const dir = tempDir("prefixes-");
  const logs: LogLine[] = [];
  const t = new PrefixTable(dataDirFiles(join(dir, "missing-dir")), captureLogger(logs), () => 1, new ManualClock());
  expect(acquireNow(t, prefixOf(1))).toBeNull();
  expect(acquireNow(t, prefixOf(1))).toBeNull();
  expect(t.stats()).toMatchObject({ prefixes: 0, writes: 0, writeFailures: 2 });
  expect(logs.filter((l) => l.level === "warn" && l.msg.includes("cannot write the prefix table"))).toHaveLength(1);
  expect(t.prefix(1)).toBeUndefined();
});

test("compaction drops only prefixes no record from the durable read position on uses, and never reuses an id", () => {
  const dir = tempDir("prefixes-");
  let durableReadSeq = 1;
  const t = open(dir, () => durableReadSeq);
  // 40 files come and go; each appended records up to seq 10 × n.
  for (let n = 1; n <= 40; n++) {
    const id = acquireNow(t, prefixOf(n)) as number;
    expect(id).toBe(n);
    t.appending(id);
    t.appended(id, 10 * n);
    if (n !== 5) t.release(id); // file 5 is still open
  }
  t.appending(7); // an append with prefix 7 still waits for room
  expect(t.stats().prefixes).toBe(40);
  durableReadSeq = 301; // records up to 300 are acknowledged and a header on disk says so
  const id = acquireNow(t, prefixOf(41)) as number;
  expect(id).toBe(41);
  const kept = decodePrefixTable(readFileSync(join(dir, PREFIX_TABLE_FILE), "utf8"));
  const ids = kept.prefixes.map(([i]) => i).sort((a, b) => a - b);
  // 5: pinned; 7: appending; 31..40: records at or after seq 301; 41: new.
  expect(ids).toEqual([5, 7, ...Array.from({ length: 10 }, (_, i) => 31 + i), 41]);
  expect(kept.nextId).toBe(42);
  expect(t.prefix(1)).toBeUndefined();
  expect(t.prefix(30)).toBeUndefined();
  expect(t.prefix(31)).toBeDefined();
  // A dropped prefix that comes back gets a new id.
  expect(acquireNow(t, prefixOf(1))).toBe(42);
});

test("at open, the ring's records say which prefixes are still used; a lost table never hands out an id the ring still holds", () => {
  const dir = tempDir("prefixes-");
  const t = open(dir);
  for (let n = 1; n <= 3; n++) acquireNow(t, prefixOf(n));
  const records = [
    { seq: 10, bytes: compactRecord(te.encode(prefixOf(2) + '"t"}'), te.encode(prefixOf(2)), 2) },
    { seq: 11, bytes: te.encode('{"a full record":1}') },
    { seq: 12, bytes: concat(compactHead(7), te.encode('"t"}')) }, // written by a table that is gone
  ];
  const visit = (fn: (seq: number, data: Uint8Array, start: number, end: number) => void) => {
    for (const r of records) fn(r.seq, r.bytes, 0, r.bytes.length);
  };
  // The table file is lost: a new table starts above every id the ring holds.
  writeFileSync(join(dir, PREFIX_TABLE_FILE), '{"format":1,"nextId":4,"prefixes":{"1":"{\\"orgUUID\\":tor');
  const logs: LogLine[] = [];
  const lost = open(dir, () => 1, logs);
  expect(logs.some((l) => l.level === "error" && l.msg.includes("prefix table is damaged"))).toBe(true);
  const aside = readdirSync(dir).filter((n) => n.startsWith(`${PREFIX_TABLE_FILE}.invalid-`));
  expect(aside).toEqual([`${PREFIX_TABLE_FILE}.invalid-1234`]);
  expect(lost.stats().prefixes).toBe(0);
  lost.noteRecords(visit);
  expect(lost.stats().unknownAtOpen).toBe(2);
  expect(logs.some((l) => l.level === "error" && l.msg.includes("do not hold"))).toBe(false);
  expect(logs.some((l) => l.level === "error" && l.msg.includes("does not hold"))).toBe(true);
  expect(acquireNow(lost, prefixOf(9))).toBe(8);
  // An intact table: the ids in use keep their prefix; nothing unknown.
  const dir2 = tempDir("prefixes-");
  const t2 = open(dir2);
  for (let n = 1; n <= 7; n++) acquireNow(t2, prefixOf(n));
  const reopened = open(dir2);
  reopened.noteRecords(visit);
  expect(reopened.stats().unknownAtOpen).toBe(0);
  expect(existsSync(join(dir2, `${PREFIX_TABLE_FILE}.invalid-1234`))).toBe(false);
});
