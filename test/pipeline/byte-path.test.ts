// The byte path (issue 10): a CRI line's record written from its bytes must be, byte for byte,
// what the string path gives — TextEncoder.encode(encoder.encode(timestamp, stream, message)) of
// the decoded line — for any bytes; and a whole file read through the fast path (LineBatch, byte
// records) must give the same records, in the same order, with the same counters and offsets, as
// the reader's string path (fastPath: false) with the router's string encoder.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrefixTable } from "../../src/buffer/prefix-table.ts";
import { dataDirFiles } from "../../src/platform/atomic-file.ts";
import { INVALID_UTF8, writeJsonStringBody } from "../../src/pipeline/json-bytes.ts";
import { RecordBuffer } from "../../src/pipeline/packed.ts";
import { LineBatch } from "../../src/source/line-batch.ts";
import { LineReader, type LineReaderCounters } from "../../src/source/line-reader.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import { concat, content, encoder, expectSameRuns, fileOf, garbageLine, isValidUtf8, latin1, plainTimestamp, run, te, timestampBytes, utf8 } from "./byte-path-support.ts";

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

  test("any bytes at any offsets: JSON.stringify's escaping of the decoded text, or a refusal (the four-bytes-at-a-time copy at every alignment)", () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.array(fc.oneof({ weight: 4, arbitrary: fc.constant(te.encode("abcdefg")) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 3 }) }), { maxLength: 10 }).map(concat),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5 }), bytes, fc.uint8Array({ maxLength: 5 }), fc.nat(7), (before, body, after, at) => {
        const src = concat([before, body, after]);
        const dst = new Uint8Array(at + 6 * body.length + 1);
        const end = writeJsonStringBody(src, before.length, before.length + body.length, dst, at);
        if (!isValidUtf8(body)) return expect(end).toBe(INVALID_UTF8);
        expect(new TextDecoder().decode(dst.subarray(at, end))).toBe(JSON.stringify(utf8.decode(body)).slice(1, -1));
      }),
      { numRuns: 5000 },
    );
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
const physicalLine = fc.oneof({ weight: 10, arbitrary: criLine }, { weight: 2, arbitrary: dockerLine }, { weight: 1, arbitrary: garbageLine }, { weight: 1, arbitrary: criLine.map((l) => concat([new Uint8Array(3), l])) });
const logFile = fileOf(physicalLine);

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
          expectSameRuns(fast, slow);
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

  test("stored compact through the prefix table, the records expand to exactly those stored whole", async () => {
    const dir = mkdtempSync(join(tmpdir(), "compact-router-"));
    try {
      let compact = 0;
      await fc.assert(
        fc.asyncProperty(logFile, fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 6 }), fc.boolean(), async (bytes, chunks, fastPath) => {
          const prefixes = new PrefixTable(dataDirFiles(dir), { debug() {}, info() {}, warn() {}, error() {}, child: () => undefined as never }, () => 1);
          const stored = await run(bytes, chunks, { fast: fastPath, format: "auto", maxLineBytes: 4096, known: true, prefixes });
          const whole = await run(bytes, chunks, { fast: false, format: "auto", maxLineBytes: 4096, known: true });
          expect(stored.compact).toBe(stored.records.length); // every record compact, expanded back here
          compact += stored.compact;
          if (stored.records.length) expect(stored.router.bytesAppended).toBeLessThan(whole.router.bytesAppended);
          expectSameRuns({ ...stored, router: { ...stored.router, bytesAppended: whole.router.bytesAppended } }, whole);
        }),
        { numRuns: 150 },
      );
      expect(compact).toBeGreaterThan(500);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
