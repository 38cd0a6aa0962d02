// The lines of one read, in file order: the Lines contract of types.ts, filled by the line reader
// and reused per slice. A line that needs no merging (a CRI `F` line, or a complete docker line,
// with nothing pending on its stream) is kept as byte ranges into the chunk it was read from — no
// string is made for it; the others as MergedLine. Consumers read the lines through visit() (bytes
// where kept) or line(i).
//
// The ranges point into the memory handed to LineReader.feed: consume the batch before that memory
// is read into again (the router encodes it before it first awaits).
import { decodeContent, decodeJsonString, decodeTimestamp } from "./line-format.ts";
import type { Lines, LineVisitor, MergedLine } from "./types.ts";

/**
 * A LineVisitor that also takes docker lines as bytes: content chunk[contentStart, contentEnd) is
 * the log string as escaped in the file, its final "\n" left out. A visitor without escapedRange
 * gets such lines decoded, through merged().
 */
export interface EscapedRangeVisitor extends LineVisitor {
  escapedRange(chunk: Uint8Array, tsStart: number, tsEnd: number, stderr: boolean, contentStart: number, contentEnd: number, index: number): void;
}

/**
 * FIELDS int32 per line. A range line: tsStart, tsEnd, contentStart, contentEnd, chunk * 4 +
 * escaped * 2 + stderr (chunk: an index into `chunks`; escaped: docker content, JSON-escaped).
 * A merged line: 0, 0, 0, 0, -1 - (its index into `merged`).
 */
const FIELDS = 5;
const EMPTY_FIELDS = new Int32Array(0);

export class LineBatch implements Lines, Iterable<MergedLine> {
  private count = 0;
  private fields: Int32Array = EMPTY_FIELDS;
  /** The memory the ranges point into; usually one chunk per batch. */
  private readonly chunks: Uint8Array[] = [];
  private readonly merged: MergedLine[] = [];

  /** A batch of merged lines. */
  static of(...lines: MergedLine[]): LineBatch {
    const b = new LineBatch();
    for (const l of lines) b.push(l);
    return b;
  }

  get length(): number {
    return this.count;
  }

  /** Lines kept as byte ranges (the rest are merged lines). */
  get rangeCount(): number {
    return this.count - this.merged.length;
  }

  /**
   * A complete line as ranges: timestamp bytes[tsStart, tsEnd), content bytes[contentStart,
   * contentEnd) — raw (CRI), or `escaped` as in a JSON string (docker: the log without its final "\n").
   */
  pushRange(chunk: Uint8Array, tsStart: number, tsEnd: number, stderr: boolean, contentStart: number, contentEnd: number, escaped = false): void {
    let ci = this.chunks.length - 1;
    if (ci < 0 || this.chunks[ci] !== chunk) {
      this.chunks.push(chunk);
      ci++;
    }
    const f = this.slot();
    const i = this.count++ * FIELDS;
    f[i] = tsStart;
    f[i + 1] = tsEnd;
    f[i + 2] = contentStart;
    f[i + 3] = contentEnd;
    f[i + 4] = ci * 4 + (escaped ? 2 : 0) + (stderr ? 1 : 0);
  }

  push(line: MergedLine): void {
    const f = this.slot();
    const i = this.count++ * FIELDS;
    f[i] = f[i + 1] = f[i + 2] = f[i + 3] = 0;
    f[i + 4] = -1 - this.merged.length;
    this.merged.push(line);
  }

  /** Line `i` as a MergedLine (a range line decoded as the string path would). */
  line(i: number): MergedLine {
    const f = this.fields;
    const at = i * FIELDS;
    const tag = f[at + 4] as number;
    if (tag < 0) return this.merged[-1 - tag] as MergedLine;
    const chunk = this.chunks[tag >> 2] as Uint8Array;
    const decode = (tag & 2) === 2 ? decodeJsonString : decodeContent;
    return {
      timestamp: decodeTimestamp(chunk, f[at] as number, f[at + 1] as number),
      stream: (tag & 1) === 1 ? "stderr" : "stdout",
      message: decode(chunk, f[at + 2] as number, f[at + 3] as number),
      truncated: false,
    };
  }

  visit(v: LineVisitor | EscapedRangeVisitor): void {
    const f = this.fields;
    const chunks = this.chunks;
    const escapedVisitor = "escapedRange" in v ? v : null;
    for (let i = 0, at = 0; i < this.count; i++, at += FIELDS) {
      const tag = f[at + 4] as number;
      if (tag < 0) v.merged(this.merged[-1 - tag] as MergedLine, i);
      else if ((tag & 2) === 0) v.range(chunks[tag >> 2] as Uint8Array, f[at] as number, f[at + 1] as number, (tag & 1) === 1, f[at + 2] as number, f[at + 3] as number, i);
      else if (escapedVisitor) escapedVisitor.escapedRange(chunks[tag >> 2] as Uint8Array, f[at] as number, f[at + 1] as number, (tag & 1) === 1, f[at + 2] as number, f[at + 3] as number, i);
      else v.merged(this.line(i), i);
    }
  }

  *[Symbol.iterator](): Iterator<MergedLine> {
    for (let i = 0; i < this.count; i++) yield this.line(i);
  }

  /** Empties the batch for reuse (drops its references to chunks and lines). */
  clear(): void {
    this.count = 0;
    this.chunks.length = 0;
    this.merged.length = 0;
  }

  private slot(): Int32Array {
    const need = (this.count + 1) * FIELDS;
    if (need <= this.fields.length) return this.fields;
    const grown = new Int32Array(Math.max(1024 * FIELDS, this.fields.length * 2)); // a 256 KiB slice: ~1000 lines
    grown.set(this.fields);
    this.fields = grown;
    return grown;
  }
}
