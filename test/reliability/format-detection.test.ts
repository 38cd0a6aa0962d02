// Found by the corpus (test/reliability/corpus.test.ts, "brace-first"): with format "auto", the first
// line of a file decided its format for good — a CRI file whose first line was garbage starting with
// "{" was read as docker json-file and every later line dropped as malformed (silent loss of a file).
import { expect, test } from "bun:test";
import { LineReader, type LineReaderCounters } from "../../src/source/line-reader.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import type { MergedLine } from "../../src/source/types.ts";

const enc = new TextEncoder();

function read(text: string, format: "auto" | "cri" | "docker" = "auto") {
  const counters: LineReaderCounters = { linesRead: 0, linesMalformed: 0, linesTruncated: 0 };
  const r = new LineReader({ partialKey: "uid/main/0", fileId: "1:1", format, maxLineBytes: 1 << 20, merger: new PartialMerger(1 << 20), counters }, 0);
  const out: MergedLine[] = [];
  r.feed(enc.encode(text), 0, out);
  return { messages: out.map((l) => l.message), counters };
}

const CRI = "2026-11-25T10:00:00.000000001Z stdout F ";
const DOCKER = (m: string) => JSON.stringify({ log: `${m}\n`, stream: "stdout", time: "2026-11-25T10:00:00Z" });

test("auto: a CRI file starting with a garbage '{' line keeps its CRI lines", () => {
  const { messages, counters } = read(`{"not": "cri"\n${CRI}a\n${CRI}b\n`);
  expect(messages).toEqual(["a", "b"]);
  expect(counters.linesMalformed).toBe(1);
});

test("auto: a docker file starting with a garbage line keeps its docker lines", () => {
  const { messages, counters } = read(`\u0000\u0000garbage\n${DOCKER("a")}\n${DOCKER("b")}\n`);
  expect(messages).toEqual(["a", "b"]);
  expect(counters.linesMalformed).toBe(1);
});

test("an explicit format is not second-guessed", () => {
  const { messages, counters } = read(`${DOCKER("a")}\n${CRI}b\n`, "cri");
  expect(messages).toEqual(["b"]);
  expect(counters.linesMalformed).toBe(1);
});

// Found by the corpus ("nul"): a line written right after a run of NULs (what a node crash leaves in a
// log file) had the NULs glued to its front and was dropped as malformed.
test("a line glued to a run of NULs is read; a NUL-only line is malformed", () => {
  const { messages, counters } = read(`${CRI}a\n\u0000\u0000\u0000\n\u0000\u0000${CRI}b\n`);
  expect(messages).toEqual(["a", "b"]);
  expect(counters.linesMalformed).toBe(1);
});
