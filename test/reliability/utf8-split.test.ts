// Found by the property test (fuzz.property.test.ts): runtimes split long lines on bytes (containerd:
// every 16 KiB), so a P fragment can end inside a UTF-8 character; each fragment was decoded on its
// own and the character arrived as two U+FFFD. Now the cut bytes wait for the next fragment.
import { expect, test } from "bun:test";
import { LineReader, type LineReaderCounters } from "../../src/source/line-reader.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import type { MergedLine } from "../../src/source/types.ts";

const TS = "2026-11-25T10:00:00.000000001Z";
const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p))));

function reader(merger: PartialMerger, fileId = "1:1") {
  const counters: LineReaderCounters = { linesRead: 0, linesMalformed: 0, linesTruncated: 0 };
  return new LineReader({ partialKey: "uid/main/0", fileId, format: "auto", maxLineBytes: 1 << 20, merger, counters }, 0);
}

test("a character cut between P and F comes back whole", () => {
  const merger = new PartialMerger(1 << 20);
  const out: MergedLine[] = [];
  // "€" is E2 82 AC: the runtime cut after its first byte, then after its second (three fragments).
  reader(merger).feed(bytes(`${TS} stdout P price: `, [0xe2], `\n${TS} stdout P `, [0x82], `\n${TS} stdout F `, [0xac], " 5\n"), 0, out);
  expect(out.map((l) => l.message)).toEqual(["price: € 5"]);
});

test("a character cut across a rotation (P at the end of the old file, F in the new one) comes back whole", () => {
  const merger = new PartialMerger(1 << 20);
  const out: MergedLine[] = [];
  reader(merger, "1:1").feed(bytes(`${TS} stderr P 日本`, [0xe8, 0xaa], "\n"), 0, out);
  reader(merger, "1:2").feed(bytes(`${TS} stderr F `, [0x9e], "です\n"), 0, out);
  expect(out.map((l) => l.message)).toEqual(["日本語です"]);
});

test("a P fragment cut inside a character and never continued: flushed with U+FFFD for the lost rest", () => {
  const merger = new PartialMerger(1 << 20);
  const out: MergedLine[] = [];
  reader(merger).feed(bytes(`${TS} stdout P abc`, [0xf0, 0x9f], "\n"), 0, out);
  expect(out).toEqual([]);
  const flushed = merger.flush(10_000, 1000);
  expect(flushed.map((l) => l.message)).toEqual(["abc\uFFFD"]);
  // Nothing of it leaks into the next line.
  reader(merger).feed(bytes(`${TS} stdout F next\n`), 0, out);
  expect(out.map((l) => l.message)).toEqual(["next"]);
});

test("a stream's cut character does not mix with the other stream", () => {
  const merger = new PartialMerger(1 << 20);
  const out: MergedLine[] = [];
  reader(merger).feed(bytes(`${TS} stdout P a`, [0xc3], `\n${TS} stderr F x\n${TS} stdout F `, [0xa9], "\n"), 0, out);
  expect(out.map((l) => `${l.stream}:${l.message}`)).toEqual(["stderr:x", "stdout:aé"]);
});
