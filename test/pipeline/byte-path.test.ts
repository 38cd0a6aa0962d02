// The byte path (issue 10): a CRI line's record written from its bytes must be, byte for byte,
// what the string path gives — TextEncoder.encode(encoder.encode(timestamp, stream, message)) of
// the decoded line — for any bytes; and a whole file read through the fast path (LineBatch, byte
// records) must give the same records, in the same order, with the same counters and offsets, as
// the reader's string path (fastPath: false) with the router's string encoder.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { PackedRecords } from "../../src/buffer/types.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { PodCache } from "../../src/metadata/cache.ts";
import type { PodMeta } from "../../src/metadata/types.ts";
import { compileEncoder, transform } from "../../src/pipeline/chain.ts";
import { INVALID_UTF8, writeJsonStringBody } from "../../src/pipeline/json-bytes.ts";
import { RecordBuffer } from "../../src/pipeline/packed.ts";
import { Router } from "../../src/pipeline/router.ts";
import { LineBatch } from "../../src/source/line-batch.ts";
import { LineReader, type LineReaderCounters } from "../../src/source/line-reader.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import type { MergedLine } from "../../src/source/types.ts";
import type { SourceFileInfo } from "../../src/source/types.ts";

const te = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const config = ConfigSchema.parse({});

const pod: PodMeta = {
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
const encoder = compileEncoder(transform(pod, "main", config.pipeline.fields));

function isValidUtf8(b: Uint8Array): boolean {
  try {
    strict.decode(b);
    return true;
  } catch {
    return false;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
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
const piece = fc.oneof(
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
const content = fc.array(piece, { maxLength: 12 }).map(concat);

const plainTimestamp = fc
  .tuple(fc.integer({ min: 0, max: 2_000_000_000_000 }), fc.nat(999_999), fc.constantFrom("Z", "+01:00", "-05:30"))
  .map(([ms, ns, zone]) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_, f) => `.${f}${String(ns).padStart(6, "0")}${zone}`));
const timestampBytes = fc.oneof(
  { weight: 6, arbitrary: plainTimestamp.map((s) => te.encode(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom("", "2026-11-24T19:02:13\"Z", "2026-11-24 19:02:13Z", "2026-11-24T19:02:13Z\\").map((s) => te.encode(s)) },
);

describe("the byte path of one record", () => {
  test("equals TextEncoder.encode of the string path's record, or refuses and writes nothing", () => {
    let viaBytes = 0;
    fc.assert(
      fc.property(timestampBytes, content, fc.boolean(), fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), fc.integer({ min: 1, max: 600 }), (ts, body, stderr, before, after, initial) => {
        // The line sits inside a larger buffer: the path must not read outside its ranges.
        const src = concat([before, ts, body, after, new Uint8Array([0x80, 0x80, 0x80])]);
        const tsStart = before.length;
        const cs = tsStart + ts.length;
        const out = new RecordBuffer(initial); // small: growth and NEEDS_SPACE retries happen
        out.writeString("{}");
        out.end();
        const at = out.at;
        const ok = encoder.writeBytes(src, tsStart, cs, stderr, cs, cs + body.length, out);
        const tsString = latin1.decode(ts);
        const expected = te.encode(encoder.encode(tsString, stderr ? "stderr" : "stdout", body.length ? utf8.decode(body) : "") ?? "");
        const plainTs = ts.length > 0 && /^[0-9A-Za-z:.+-]*$/.test(tsString);
        // It refuses only what it must: invalid UTF-8 content or a timestamp needing the string path.
        expect(ok).toBe(plainTs && isValidUtf8(body));
        if (ok) {
          viaBytes++;
          expect(out.count).toBe(2);
          expect(out.record(1)).toEqual(expected);
          expect(out.record(0)).toEqual(te.encode("{}"));
        } else {
          expect(out.count).toBe(1);
          expect(out.at).toBe(at);
        }
      }),
      { numRuns: 3000 },
    );
    expect(viaBytes).toBeGreaterThan(500); // the property exercised the byte path, not only refusals
  });

  test("every control character, quote and backslash is escaped as JSON.stringify escapes it", () => {
    const all = new Uint8Array(128).map((_, i) => i);
    const dst = new Uint8Array(6 * all.length);
    const end = writeJsonStringBody(all, 0, all.length, dst, 0);
    expect(new TextDecoder().decode(dst.subarray(0, end))).toBe(JSON.stringify(String.fromCharCode(...all)).slice(1, -1));
  });

  test("UTF-8 validity is decided exactly as the decoder decides it, for every 1–4 byte sequence start", () => {
    // Each lead byte followed by boundary continuation values; valid iff the strict decoder accepts.
    const tails = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff];
    const dst = new Uint8Array(64);
    for (let lead = 0x80; lead < 0x100; lead++) {
      for (const a of tails) {
        for (const b of [0x80, 0xbf, 0x41]) {
          for (const c of [0x80, 0xbf, 0x41]) {
            for (const len of [1, 2, 3, 4]) {
              const bytes = new Uint8Array([lead, a, b, c].slice(0, len));
              const r = writeJsonStringBody(bytes, 0, bytes.length, dst, 0);
              const valid = isValidUtf8(bytes);
              if (valid) expect(new TextDecoder().decode(dst.subarray(0, r))).toBe(JSON.stringify(utf8.decode(bytes)).slice(1, -1));
              else expect(r).toBe(INVALID_UTF8);
            }
          }
        }
      }
    }
  });
});

// ---- whole files: the fast path against the string path ----

const file: SourceFileInfo = { id: "1:2", path: "/var/log/pods/argo_p_u/main/0.log", namespace: "argo", podName: pod.name, podUid: pod.uid, container: "main", restart: 0, firstSeenAt: 0 };

/** A router whose sink keeps copies of the records (the router reuses its buffer). */
function capturingRouter(known: boolean): { router: Router; records: Uint8Array[] } {
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
  return { router: new Router(config, cache, { notifyUnknownPod() {} }, sink), records };
}

interface Run {
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
async function run(bytes: Uint8Array, chunks: number[], opts: { fast: boolean; format: "cri" | "docker" | "auto"; maxLineBytes: number; known: boolean }): Promise<Run> {
  const { router, records } = capturingRouter(opts.known);
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
  return { records, counters, router: router.counters, lineEnds, pendingStarts, flushedTruncated, ranged };
}

const criLine = fc
  .tuple(
    fc.oneof({ weight: 8, arbitrary: plainTimestamp.map((s) => te.encode(s)) }, { weight: 1, arbitrary: fc.constantFrom("2026-11-24T19:02:13\"Z", "2026-11-24T19:02:13Z\u00e9").map((s) => te.encode(s)) }),
    fc.constantFrom("stdout", "stderr"),
    fc.constantFrom("F", "F", "F", "P", "F:x", "P:y"),
    fc.oneof({ weight: 12, arbitrary: content }, { weight: 1, arbitrary: fc.integer({ min: 50, max: 3000 }).map((n) => te.encode("w".repeat(n))) }),
    fc.constantFrom(" ", " ", " ", ""),
    fc.constantFrom("", "", "", "\r"),
  )
  .map(([ts, stream, tag, body, sep, cr]) => concat([ts, te.encode(` ${stream} ${tag}${sep}`), sep ? body : new Uint8Array(0), te.encode(cr)]));
const dockerLine = fc
  .tuple(fc.string({ maxLength: 60 }), fc.constantFrom("stdout", "stderr"), fc.boolean(), fc.option(plainTimestamp, { nil: undefined }))
  .map(([log, stream, nl, time]) => te.encode(JSON.stringify({ log: nl ? log + "\n" : log, stream, time })));
const garbage = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(new Uint8Array(20)), fc.constant(te.encode("{not json")));
const physicalLine = fc.oneof({ weight: 10, arbitrary: criLine }, { weight: 2, arbitrary: dockerLine }, { weight: 1, arbitrary: garbage }, { weight: 1, arbitrary: criLine.map((l) => concat([new Uint8Array(3), l])) });
const logFile = fc.tuple(fc.array(physicalLine, { maxLength: 40, size: "max" }), fc.boolean()).map(([lines, endsWithNl]) => {
  const parts: Uint8Array[] = [];
  for (const l of lines) parts.push(l.filter((b) => b !== 0x0a), new Uint8Array([0x0a]));
  if (!endsWithNl && parts.length) parts.pop();
  return concat(parts);
});

describe("a whole file: fast path and string path give the same records", () => {
  test("any lines, any chunking, any maxLineBytes, either format setting", async () => {
    let ranged = 0;
    let merged = 0;
    await fc.assert(
      fc.asyncProperty(
        logFile,
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(1 << 20, 1 << 20, 4096, 600, 64),
        fc.constantFrom("auto", "auto", "cri", "docker"),
        fc.constantFrom(true, true, true, false),
        async (bytes, chunks, maxLineBytes, format, known) => {
          const fast = await run(bytes, chunks, { fast: true, format, maxLineBytes, known });
          const slow = await run(bytes, chunks, { fast: false, format, maxLineBytes, known });
          expect(fast.records.length).toBe(slow.records.length);
          for (let i = 0; i < slow.records.length; i++) expect(fast.records[i]).toEqual(slow.records[i]!);
          expect(fast.counters).toEqual(slow.counters);
          expect(fast.router).toEqual(slow.router);
          expect(fast.lineEnds).toEqual(slow.lineEnds);
          expect(fast.pendingStarts).toEqual(slow.pendingStarts);
          expect(fast.flushedTruncated).toBe(slow.flushedTruncated);
          expect(slow.ranged).toBe(0);
          ranged += fast.ranged;
          merged += fast.counters.linesRead - fast.ranged;
        },
      ),
      { numRuns: 400 },
    );
    // Both paths were exercised, side by side in the same files.
    expect(ranged).toBeGreaterThan(1000);
    expect(merged).toBeGreaterThan(1000);
  });

  test("a pod without metadata: every line counted as no-metadata on both paths", async () => {
    const bytes = te.encode("2026-11-24T19:02:13.1Z stdout F a\n2026-11-24T19:02:13.1Z stdout P b\n2026-11-24T19:02:13.1Z stdout F c\n");
    const fast = await run(bytes, [7], { fast: true, format: "auto", maxLineBytes: 1 << 20, known: false });
    const slow = await run(bytes, [7], { fast: false, format: "auto", maxLineBytes: 1 << 20, known: false });
    expect(fast.router.eventsFiltered["no-metadata"]).toBe(2);
    expect(fast.router).toEqual(slow.router);
    expect(fast.records).toEqual([]);
  });

  test("lines that take the fast path are kept as byte ranges; the rest as merged lines, in file order", () => {
    const counters: LineReaderCounters = { linesRead: 0, linesMalformed: 0, linesTruncated: 0 };
    const merger = new PartialMerger(1 << 20);
    const reader = new LineReader({ partialKey: "u/main/0", fileId: "f1", format: "auto", maxLineBytes: 1 << 20, merger, counters }, 0);
    const batch = new LineBatch();
    const text = [
      "2026-11-24T19:02:13.1Z stdout F one",
      "2026-11-24T19:02:13.2Z stderr P two-",
      "2026-11-24T19:02:13.3Z stdout F three", // other stream: nothing pending there
      "2026-11-24T19:02:13.4Z stderr F two", // ends the pending stderr line: the string path
      "2026-11-24T19:02:13.5Z stdout F ✓ four",
    ].join("\n");
    reader.feed(te.encode(text + "\n"), 0, batch);
    expect(batch.length).toBe(4);
    expect(batch.length - batch.rangeCount).toBe(1); // only the merged stderr line
    expect([...batch].map((l) => `${l.stream}:${l.message}`)).toEqual(["stdout:one", "stdout:three", "stderr:two-two", "stdout:✓ four"]);
    expect(counters.linesRead).toBe(5);
  });
});
