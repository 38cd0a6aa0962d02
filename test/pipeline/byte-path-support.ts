// Shared by the byte-path property tests (CRI and docker): the pod and its compiled encoder, byte
// arbitraries that matter to JSON and UTF-8, and run() — a whole file through the reader and the
// router, on the fast path or the string path.
import { expect } from "bun:test";
import fc from "fast-check";
import type { PackedRecords } from "../../src/buffer/types.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { PodCache } from "../../src/metadata/cache.ts";
import type { PodMeta } from "../../src/metadata/types.ts";
import { compileEncoder, transform } from "../../src/pipeline/chain.ts";
import { COMPACT_TAG, expandRecord } from "../../src/buffer/compact-record.ts";
import type { PrefixTable } from "../../src/buffer/prefix-table.ts";
import { Router } from "../../src/pipeline/router.ts";
import { LineBatch } from "../../src/source/line-batch.ts";
import { LineReader, type LineReaderCounters } from "../../src/source/line-reader.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import type { MergedLine } from "../../src/source/types.ts";
import type { SourceFileInfo } from "../../src/source/types.ts";

export const te = new TextEncoder();
export const latin1 = new TextDecoder("latin1");
export const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
export const config = ConfigSchema.parse({});

export const pod: PodMeta = {
  uid: "5f0c9a7e-uid",
  namespace: "argo",
  name: "ci-build-7xk2p-compile-3470861234",
  labels: {
    "workflows.argoproj.io/workflow": "ci-build-7xk2p",
    "workflows.pipekit.io/org_uuid": 'org "quoted" ✓',
    "workflows.pipekit.io/run_uuid": "run-1",
    "workflows.pipekit.io/pipe_uuid": "pipe-1",
  },
  annotations: { "workflows.argoproj.io/node-id": "node\\1" },
};
export const encoder = compileEncoder(transform(pod, "main", config.pipeline.fields));

export function isValidUtf8(b: Uint8Array): boolean {
  try {
    strict.decode(b);
    return true;
  } catch {
    return false;
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Content: pieces that matter to JSON and UTF-8 — escapes, controls, NUL, DEL, valid characters of
// every width (U+2028, BOM, astral), and every kind of invalid UTF-8 (stray continuation, overlong,
// surrogate, above U+10FFFF, truncated sequence, bytes that never occur).
export const piece = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }).map((s) => te.encode(s)) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 12 }).map((s) => te.encode(s)) },
  { weight: 2, arbitrary: fc.constantFrom(..."\"\\\u0000\u0001\b\t\n\f\r\u001b\u001f\u007f\u2028\u2029\ufeff\ufffd{}:,é✓😀".split("")).map((s) => te.encode(s)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      [0x80],
      [0xbf],
      [0xc0, 0x80],
      [0xc1, 0xbf],
      [0xc3],
      [0xe2, 0x82],
      [0xe0, 0x80, 0x80],
      [0xe0, 0x9f, 0xbf],
      [0xed, 0xa0, 0x80],
      [0xed, 0xbf, 0xbf],
      [0xef, 0xbf, 0xbf],
      [0xf0, 0x8f, 0xbf, 0xbf],
      [0xf0, 0x9f, 0x98],
      [0xf4, 0x8f, 0xbf, 0xbf],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf5, 0x80, 0x80, 0x80],
      [0xfe],
      [0xff],
    ).map((a) => new Uint8Array(a)),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) },
);
export const content = fc.array(piece, { maxLength: 12 }).map(concat);

export const plainTimestamp = fc
  .tuple(fc.integer({ min: 0, max: 2_000_000_000_000 }), fc.nat(999_999), fc.constantFrom("Z", "+01:00", "-05:30"))
  .map(([ms, ns, zone]) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_, f) => `.${f}${String(ns).padStart(6, "0")}${zone}`));
export const timestampBytes = fc.oneof(
  { weight: 6, arbitrary: plainTimestamp.map((s) => te.encode(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom("", "2026-11-24T19:02:13\"Z", "2026-11-24 19:02:13Z", "2026-11-24T19:02:13Z\\").map((s) => te.encode(s)) },
);

export const file: SourceFileInfo = { id: "1:2", path: "/var/log/pods/argo_p_u/main/0.log", namespace: "argo", podName: pod.name, podUid: pod.uid, container: "main", restart: 0, firstSeenAt: 0 };

/** A router whose sink keeps copies of the records (the router reuses its buffer). */
export function capturingRouter(known: boolean, prefixes: PrefixTable | null = null): { router: Router; records: Uint8Array[] } {
  const cache = new PodCache({ deletionGraceSeconds: 60 });
  if (known) cache.upsert(pod);
  const records: Uint8Array[] = [];
  const sink = {
    appendPacked: async (r: PackedRecords) => {
      for (let i = 0; i < r.count; i++) records.push(r.bytes.slice(i === 0 ? 0 : r.ends[i - 1], r.ends[i]));
      return records.length;
    },
    lastSeq: () => records.length,
    maxRecordBytes: () => 1 << 30,
  };
  return { router: new Router(config, cache, { notifyUnknownPod() {} }, sink, undefined, prefixes), records };
}

export interface Run {
  records: Uint8Array[];
  counters: LineReaderCounters;
  router: Router["counters"];
  lineEnds: number[];
  pendingStarts: Array<number | null>;
  flushedTruncated: number;
  /** Lines that reached the router as byte ranges. */
  ranged: number;
}

/**
 * Feeds `bytes` in `chunks` the way the source does — each chunk copied into one reused read buffer,
 * its lines emitted before the next read — then finishes the file and flushes what is pending.
 * The string path (the reference) gets fresh memory per chunk instead, so that a range or carry left
 * pointing into the reused buffer shows as a difference rather than corrupting both runs alike.
 */
/**
 * `prefixes`: the router stores records compact through this table; the run's records are then
 * expanded (compact: how many were stored compact).
 */
export async function run(
  bytes: Uint8Array,
  chunks: number[],
  opts: { fast: boolean; format: "cri" | "docker" | "auto"; maxLineBytes: number; known: boolean; prefixes?: PrefixTable },
): Promise<Run & { compact: number }> {
  const { router, records } = capturingRouter(opts.known, opts.prefixes ?? null);
  // As the source does: decide before reading (a new prefix is written while the file is held).
  for (let turns = 0; opts.prefixes && router.decide(file, 0) === "hold"; turns++) {
    if (turns > 100) throw new Error("the file is held for good");
    await new Promise((resolve) => setImmediate(resolve));
  }
  const counters: LineReaderCounters = { linesRead: 0, linesMalformed: 0, linesTruncated: 0 };
  const merger = new PartialMerger(opts.maxLineBytes);
  const reader = new LineReader({ partialKey: "u/main/0", fileId: "f1", format: opts.format, maxLineBytes: opts.maxLineBytes, merger, counters, fastPath: opts.fast }, 0);
  const readBuf = new Uint8Array(Math.max(1, ...chunks));
  const lineEnds: number[] = [];
  const pendingStarts: Array<number | null> = [];
  let ranged = 0;
  const emit = async (lines: LineBatch | MergedLine[]) => {
    if (lines instanceof LineBatch) ranged += lines.rangeCount;
    await router.emit(file, lines instanceof LineBatch ? lines : LineBatch.of(...lines));
    lineEnds.push(reader.lineEnd);
    pendingStarts.push(merger.pendingStart("f1"));
  };
  const sink = () => (opts.fast ? new LineBatch() : ([] as MergedLine[]));
  let pos = 0;
  let i = 0;
  while (pos < bytes.length) {
    const n = Math.min(chunks[i++ % chunks.length] as number, bytes.length - pos, readBuf.length);
    const chunk = opts.fast ? readBuf.subarray(0, n) : bytes.slice(pos, pos + n);
    if (opts.fast) readBuf.set(bytes.subarray(pos, pos + n));
    pos += n;
    const out = sink();
    reader.feed(chunk, 0, out);
    await emit(out);
    readBuf.fill(0xee); // the read buffer is reused: nothing may still point into it
  }
  const last = sink();
  reader.finish(0, last);
  await emit(last);
  let flushedTruncated = 0;
  for (const line of merger.flush(1, 0)) {
    if (line.truncated) flushedTruncated++;
    await emit(opts.fast ? LineBatch.of(line) : [line]);
  }
  const table = opts.prefixes;
  const compact = records.filter((r) => r[0] === COMPACT_TAG).length;
  const full = table ? records.map((r) => expandRecord(r, (id) => table.prefix(id)) as Uint8Array) : records;
  return { records: full, counters, router: { ...router.counters }, lineEnds, pendingStarts, flushedTruncated, ranged, compact };
}

/** Garbage lines: random bytes, a NUL run, broken JSON. */
export const garbageLine = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(new Uint8Array(20)), fc.constant(te.encode("{not json")));

/** A file of such physical lines, each ended by "\n" (any "\n" inside dropped), the last one maybe not. */
export function fileOf(physicalLine: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.array(physicalLine, { maxLength: 40, size: "max" }), fc.boolean()).map(([lines, endsWithNl]) => {
    const parts: Uint8Array[] = [];
    for (const l of lines) parts.push(l.filter((b) => b !== 0x0a), new Uint8Array([0x0a]));
    if (!endsWithNl && parts.length) parts.pop();
    return concat(parts);
  });
}

/** The fast path's run gave what the string path's did: records in order, counters, offsets, pending starts. */
export function expectSameRuns(fast: Run, slow: Run): void {
  expect(fast.records.length).toBe(slow.records.length);
  for (let i = 0; i < slow.records.length; i++) expect(fast.records[i]).toEqual(slow.records[i]!);
  expect(fast.counters).toEqual(slow.counters);
  expect(fast.router).toEqual(slow.router);
  expect(fast.lineEnds).toEqual(slow.lineEnds);
  expect(fast.pendingStarts).toEqual(slow.pendingStarts);
  expect(fast.flushedTruncated).toBe(slow.flushedTruncated);
  expect(slow.ranged).toBe(0);
}
