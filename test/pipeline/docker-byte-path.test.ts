// The byte path for docker json-file lines (issue 20): a complete line in the json-file driver's form
// is kept as byte ranges (scanDockerLine), its already-escaped content re-escaped into the record
// (rewriteJsonStringBody) — byte for byte what the string path gives (JSON.parse the line, merge,
// JSON.stringify the message), for any bytes; and a whole docker file read through the fast path
// gives the same records, counters and offsets as the string path.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { INVALID_UTF8, rewriteJsonStringBody } from "../../src/pipeline/json-bytes.ts";
import { RecordBuffer } from "../../src/pipeline/packed.ts";
import { LineBatch } from "../../src/source/line-batch.ts";
import { type DockerFields, decodeJsonString, parseDockerLine, scanDockerLine } from "../../src/source/line-format.ts";
import { LineReader, type LineReaderCounters } from "../../src/source/line-reader.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import type { LineVisitor, MergedLine } from "../../src/source/types.ts";
import { concat, encoder, expectSameRuns, fileOf, garbageLine, isValidUtf8, latin1, piece, plainTimestamp, run, te, utf8 } from "./byte-path-support.ts";

/** JSON.stringify's escaping, then Go's encoding/json extras: <, >, & and U+2028/9 as \u escapes. */
function goEscape(s: string): string {
  return JSON.stringify(s)
    .slice(1, -1)
    .replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Any character written as a \uXXXX escape, in upper or lower case hex. */
function unicodeEscaped(s: string, upper: boolean): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const h = s.charCodeAt(i).toString(16).padStart(4, "0");
    out += `\\u${upper ? h.toUpperCase() : h}`;
  }
  return out;
}

// Escaped content: what docker writes (Go's escaping), other valid spellings of the same characters
// (\u escapes in either case, \/), surrogate pairs and lone surrogates as escapes, raw bytes that
// are not valid UTF-8, and what is not a well-formed JSON string body at all.
const escapedPiece = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 30 }).map((s) => te.encode(goEscape(s))) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 8 }).map((s) => te.encode(goEscape(s))) },
  { weight: 2, arbitrary: fc.tuple(fc.string({ unit: "binary", maxLength: 4 }), fc.boolean()).map(([s, u]) => te.encode(unicodeEscaped(s, u))) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("\\/", "\\\"", "\\\\", "\\b\\f\\n\\r\\t", "\\u0000", "\\u001F", "\\u007f", "\\u00e9", "\\uD83D\\uDE00", "\\ud83d\\ude00", "\\ud800", "\\udc00", "\\ud800x", "\\ud800\\u0041", "\\uDBFF\\uDFFF", "\\u2028", "\\ufffd", "é✓😀")
      .map((s) => te.encode(s)),
  },
  // Raw bytes: the invalid UTF-8 sequences and the rest of the shared pieces, without quotes or backslashes.
  { weight: 2, arbitrary: piece.map((b) => b.filter((c) => c !== 0x22 && c !== 0x5c && c >= 0x20)) },
  { weight: 1, arbitrary: fc.constantFrom("\t", "\u0001", "\\x", "\\u12", "\\u12G4", "\\", "\"").map((s) => te.encode(s)) },
);
const escapedBody = fc.array(escapedPiece, { maxLength: 10 }).map(concat);

/** The value JSON.parse gives for an escaped body, or null when it is not a JSON string body. */
function valueOf(body: Uint8Array): string | null {
  try {
    return JSON.parse(`"${utf8.decode(body)}"`) as string;
  } catch {
    return null;
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe("a docker line's record from its escaped bytes", () => {
  test("equals TextEncoder.encode of the string path's record, or refuses and writes nothing", () => {
    let viaBytes = 0;
    fc.assert(
      fc.property(plainTimestamp, escapedBody, fc.boolean(), fc.uint8Array({ maxLength: 8 }), fc.integer({ min: 1, max: 400 }), (tsText, body, stderr, before, initial) => {
        const ts = te.encode(tsText);
        const src = concat([before, ts, body, te.encode('\\n"}')]);
        const tsStart = before.length;
        const cs = tsStart + ts.length;
        const out = new RecordBuffer(initial);
        const ok = encoder.writeBytes(src, tsStart, cs, stderr, cs, cs + body.length, out, true);
        const value = valueOf(body);
        // Refused exactly when only the string path can say: no JSON value, invalid UTF-8, a lone surrogate.
        expect(ok).toBe(value !== null && isValidUtf8(body) && !LONE_SURROGATE.test(value));
        if (ok) {
          viaBytes++;
          expect(out.record(0)).toEqual(te.encode(encoder.encode(tsText, stderr ? "stderr" : "stdout", value!) ?? ""));
        } else {
          expect(out.count).toBe(0);
          expect(out.at).toBe(0);
        }
      }),
      { numRuns: 3000 },
    );
    expect(viaBytes).toBeGreaterThan(1000);
  });

  test("never longer than its input, never writes past what it returns", () => {
    fc.assert(
      fc.property(escapedBody, (body) => {
        const dst = new Uint8Array(body.length + 8).fill(0xaa);
        const r = rewriteJsonStringBody(body, 0, body.length, dst, 0);
        if (r === INVALID_UTF8) return;
        expect(r).toBeLessThanOrEqual(body.length);
        for (let i = r; i < dst.length; i++) expect(dst[i]).toBe(0xaa);
      }),
      { numRuns: 2000 },
    );
  });
});

// Lines: the driver's exact form, and everything around it the scanner must leave to the string path.
const lineEnd = fc.constantFrom("\\n", "\\n", "\\n", "\\u000a", "\\u000A", "", "\\\\n", "\\n\\n", "\\r\\n");
const timeValue = fc.oneof({ weight: 8, arbitrary: plainTimestamp }, { weight: 1, arbitrary: fc.constantFrom("", "2026-11-24 19:02:13Z", "2026-11-24T19:02:13Z\\u00e9", "2026-11-24T19:02:13\\\"Z", "t\u00e9") });
const shape = fc.constantFrom("driver", "driver", "driver", "driver", "spaces", "attrs", "order", "no-time", "trailing", "stream-odd");
const dockerLine = fc.tuple(escapedBody, lineEnd, fc.constantFrom("stdout", "stderr"), timeValue, shape).map(([body, nl, stream, time, how]) => {
  const b = (s: string) => te.encode(s); // raw bytes of the body stay as they are
  const logBytes = concat([body, b(nl)]);
  switch (how) {
    case "spaces":
      return concat([b('{"log": "'), logBytes, b(`", "stream": "${stream}", "time": "${time}"}`)]);
    case "attrs":
      return concat([b('{"log":"'), logBytes, b(`","stream":"${stream}","attrs":{"tag":"x"},"time":"${time}"}`)]);
    case "order":
      return concat([b(`{"stream":"${stream}","log":"`), logBytes, b(`","time":"${time}"}`)]);
    case "no-time":
      return concat([b('{"log":"'), logBytes, b(`","stream":"${stream}"}`)]);
    case "trailing":
      return concat([b('{"log":"'), logBytes, b(`","stream":"${stream}","time":"${time}"} `)]);
    case "stream-odd":
      return concat([b('{"log":"'), logBytes, b(`","stream":"stdin","time":"${time}"}`)]);
    default:
      return concat([b('{"log":"'), logBytes, b(`","stream":"${stream}","time":"${time}"}`)]);
  }
});

describe("scanning a docker line", () => {
  test("what the scanner takes, the parser takes the same way: stream, time, complete, content", () => {
    let scanned = 0;
    const f: DockerFields = { logStart: 0, logEnd: 0, stderr: false, tsStart: 0, tsEnd: 0 };
    fc.assert(
      fc.property(dockerLine, fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 6 }), (line, before, after) => {
        const src = concat([before, line, after]);
        const start = before.length;
        const end = start + line.length;
        if (!scanDockerLine(src, start, end, f)) return;
        scanned++;
        const parsed = parseDockerLine(src, start, end);
        expect(parsed).not.toBeNull();
        expect(parsed!.partial).toBe(false);
        expect(parsed!.stream).toBe(f.stderr ? "stderr" : "stdout");
        expect(parsed!.timestamp).toBe(latin1.decode(src.subarray(f.tsStart, f.tsEnd)));
        expect(parsed!.content).toBe(decodeJsonString(src, f.logStart, f.logEnd));
      }),
      { numRuns: 4000 },
    );
    expect(scanned).toBeGreaterThan(800);
  });

  test("a line as the json-file driver writes it is taken", () => {
    const f: DockerFields = { logStart: 0, logEnd: 0, stderr: false, tsStart: 0, tsEnd: 0 };
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 80 }), fc.constantFrom("stdout", "stderr"), plainTimestamp, (log, stream, time) => {
        const line = te.encode(`{"log":"${goEscape(log + "\n")}","stream":"${stream}","time":"${time}"}`);
        expect(scanDockerLine(line, 0, line.length, f)).toBe(true);
        expect(decodeJsonString(line, f.logStart, f.logEnd)).toBe(log);
      }),
      { numRuns: 1000 },
    );
  });
});

const criLine = plainTimestamp.map((ts) => te.encode(`${ts} stdout F a cri line`));
const physicalLine = fc.oneof({ weight: 12, arbitrary: dockerLine }, { weight: 1, arbitrary: garbageLine }, { weight: 1, arbitrary: criLine });
const dockerFile = fileOf(physicalLine);

describe("a whole docker file: fast path and string path give the same records", () => {
  test("any lines (partial ones, Go escapes, invalid UTF-8, other shapes), any chunking, any maxLineBytes", async () => {
    let ranged = 0;
    let merged = 0;
    await fc.assert(
      fc.asyncProperty(
        dockerFile,
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(1 << 20, 1 << 20, 600, 64),
        fc.constantFrom("auto", "auto", "docker"),
        async (bytes, chunks, maxLineBytes, format) => {
          const fast = await run(bytes, chunks, { fast: true, format, maxLineBytes, known: true });
          const slow = await run(bytes, chunks, { fast: false, format, maxLineBytes, known: true });
          expectSameRuns(fast, slow);
          ranged += fast.ranged;
          merged += fast.counters.linesRead - fast.ranged;
        },
      ),
      { numRuns: 400 },
    );
    expect(ranged).toBeGreaterThan(800);
    expect(merged).toBeGreaterThan(500);
  });

  test("a visitor that does not take escaped ranges gets docker lines decoded, in file order", () => {
    const counters: LineReaderCounters = { linesRead: 0, linesMalformed: 0, linesTruncated: 0 };
    const reader = new LineReader({ partialKey: "u/main/0", fileId: "f1", format: "auto", maxLineBytes: 1 << 20, merger: new PartialMerger(1 << 20), counters }, 0);
    const batch = new LineBatch();
    const text = [
      '{"log":"one \\u003cb\\u003e\\n","stream":"stdout","time":"2026-11-24T19:02:13.1Z"}',
      '{"log":"two-","stream":"stderr","time":"2026-11-24T19:02:13.2Z"}', // partial: the string path
      '{"log":"three \\"q\\"\\n","stream":"stdout","time":"2026-11-24T19:02:13.3Z"}',
      '{"log":"two\\n","stream":"stderr","time":"2026-11-24T19:02:13.4Z"}', // ends the pending line
    ].join("\n");
    reader.feed(te.encode(text + "\n"), 0, batch);
    expect(batch.length).toBe(3);
    expect(batch.rangeCount).toBe(2);
    const seen: string[] = [];
    const plain: LineVisitor = {
      range: () => seen.push("raw range?!"),
      merged: (l: MergedLine, i: number) => seen.push(`${i}:${l.stream}:${l.message}`),
    };
    batch.visit(plain);
    expect(seen).toEqual(["0:stdout:one <b>", "1:stdout:three \"q\"", "2:stderr:two-two"]);
    expect(counters.linesRead).toBe(4);
  });
});
