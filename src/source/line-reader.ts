// Turns a file's bytes into merged log lines, tracking byte offsets for checkpoints.
// Pure: the caller reads bytes from the file descriptor and feeds them here.
//
// Fast path: a CRI `F` line, or a docker line ending in a newline, with nothing pending on its
// stream is complete by itself; it goes to the output as byte ranges into the chunk (LineBatch),
// without a string or the merger, and the router writes its record from those bytes. Every other
// line (P fragments and the F that ends them, partial docker lines, very long lines, docker lines
// not in the json-file driver's exact form) takes the string path: parse, decode, merge
// (docs/source.md).
import {
  type CriFields,
  decodeContent,
  decodeTimestamp,
  detectFormat,
  type DockerFields,
  type LineFormat,
  type LineFragment,
  parseDockerLine,
  scanCriLine,
  scanDockerLine,
} from "./line-format.ts";
import { LineBatch } from "./line-batch.ts";
import { type PartialMerger, streamKey } from "./partial.ts";
import type { MergedLine, ResumeStreams } from "./types.ts";


export interface LineReaderCounters {
  linesRead: number;
  linesMalformed: number;
  linesTruncated: number;
}

export interface LineReaderOptions {
  /** Identifies the container instance for partial merging: uid/container/restart. */
  partialKey: string;
  fileId: string;
  format: "cri" | "docker" | "auto";
  maxLineBytes: number;
  merger: PartialMerger;
  counters: LineReaderCounters;
  /**
   * false: every line takes the string path (parse, decode, merge), as before the fast path existed.
   * The reference the fast path is tested against; default true.
   */
  fastPath?: boolean;
}

/** Where the reader puts complete lines: a LineBatch (ranges where possible) or a plain array. */
export type LineSink = LineBatch | MergedLine[];

const NL = 0x0a;
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** How many bytes at the end of `b` begin a UTF-8 character that is not complete (0 to 3). */
function incompleteUtf8Suffix(b: Uint8Array): number {
  const n = b.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const x = b[n - k] as number;
    if ((x & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = x >= 0xf0 && x <= 0xf7 ? 4 : x >= 0xe0 ? 3 : x >= 0xc0 ? 2 : 1;
    return need > k ? k : 0;
  }
  return 0;
}
// Room for the CRI/docker envelope around a maximal content.
const ENVELOPE_SLACK = 4096;

export class LineReader {
  /** File offset of the first byte not yet consumed into a line (the start of `carry`). */
  lineEnd: number;
  /**
   * Resumed at a checkpoint that says where each stream stood: handed to the merger at the first line,
   * once the files before this one have been read (PartialMerger.resumed).
   */
  private resume: ResumeStreams | null;
  private carry: Uint8Array = new Uint8Array(0);
  private format: LineFormat | null;
  /** True while dropping the rest of an over-long physical line. */
  private discarding = false;
  private readonly keyOut: string;
  private readonly keyErr: string;
  private readonly fast: boolean;
  /** The last CRI line scanned (reused: no object per line). */
  private readonly cri: CriFields = { tsEnd: 0, stderr: false, partial: false, contentStart: 0 };
  /** The last docker line parsed. */
  private docker: LineFragment | null = null;
  /** The last docker line scanned (reused). */
  private readonly dockerFields: DockerFields = { logStart: 0, logEnd: 0, stderr: false, tsStart: 0, tsEnd: 0 };

  constructor(
    private readonly opts: LineReaderOptions,
    startOffset: number,
    resume: ResumeStreams | null = null,
  ) {
    this.lineEnd = startOffset;
    this.resume = resume;
    this.format = opts.format === "auto" ? null : opts.format;
    this.keyOut = streamKey(opts.partialKey, "stdout");
    this.keyErr = streamKey(opts.partialKey, "stderr");
    this.fast = opts.fastPath !== false;
  }

  /** Bytes received but not yet ending in "\n". */
  get carryBytes(): number {
    return this.carry.length;
  }

  /** Where each stream stood at the checkpoint this file was resumed at, until its first line is read. */
  get resumeNotApplied(): ResumeStreams | null {
    return this.resume;
  }

  /**
   * Copies the unfinished line to the front of `buf`, for a read that follows it there and a
   * feed(..., true): joining them in fresh memory at every slice cost a slice-sized allocation each
   * time, which lived on until a full collection. Its length, or -1 when it takes more than half of
   * `buf` (a very long line; feed joins it then).
   */
  carryInto(buf: Uint8Array): number {
    const c = this.carry.length;
    if (c > buf.length >> 1) return -1;
    if (c > 0) buf.set(this.carry, 0);
    return c;
  }

  /**
   * Consumes a chunk that continues the file at `lineEnd + carryBytes` (`carried`: the chunk starts
   * with the unfinished line already, see carryInto); appends complete lines to `out`.
   */
  feed(chunk: Uint8Array, now: number, out: LineSink, carried = false): void {
    let buf: Uint8Array;
    if (carried || this.carry.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.carry.length + chunk.length);
      buf.set(this.carry, 0);
      buf.set(chunk, this.carry.length);
    }
    let pos = 0;
    const base = this.lineEnd;
    for (;;) {
      const nl = buf.indexOf(NL, pos);
      if (nl < 0) break;
      if (this.discarding) this.discarding = false;
      else this.line(buf, pos, nl, base + pos, now, out);
      pos = nl + 1;
    }
    this.lineEnd = base + pos;
    let rest = buf.length - pos;
    const limit = this.opts.maxLineBytes + ENVELOPE_SLACK;
    if (this.discarding) {
      this.lineEnd += rest; // dropped bytes of an over-long line
      rest = 0;
    } else if (rest > limit) {
      // A physical line longer than any runtime writes: keep its head, drop the rest until "\n".
      // The merger truncates the content to maxLineBytes and the line is counted as truncated.
      this.line(buf, pos, pos + limit, base + pos, now, out);
      this.discarding = true;
      this.lineEnd += rest;
      rest = 0;
    }
    this.carry = rest === 0 ? new Uint8Array(0) : buf.slice(buf.length - rest);
  }

  /** Starts over at `offset` (after a truncation), dropping any unfinished line. */
  reset(offset: number): void {
    this.lineEnd = offset;
    this.resume = null;
    this.carry = new Uint8Array(0);
    this.discarding = false;
  }

  /** The file will not grow again (rotated away and drained): its last line ends here. */
  finish(now: number, out: LineSink): void {
    if (this.carry.length > 0 && !this.discarding) this.line(this.carry, 0, this.carry.length, this.lineEnd, now, out);
    this.lineEnd += this.carry.length;
    this.carry = new Uint8Array(0);
    this.discarding = false;
  }

  /** Whether bytes[start, end) is a line of `format`; leaves its fields in this.cri / this.docker. */
  private parses(format: LineFormat, buf: Uint8Array, start: number, end: number): boolean {
    if (format === "cri") return scanCriLine(buf, start, end, this.cri);
    this.docker = parseDockerLine(buf, start, end);
    return this.docker !== null;
  }

  /**
   * A docker line complete by itself, short enough that no decoding can take it over maxLineBytes,
   * with nothing pending on its stream: kept as ranges, as the string path would keep it whole.
   * False: the string path decides (parse, merge, count).
   */
  private dockerRange(buf: Uint8Array, start: number, end: number, out: LineBatch): boolean {
    const f = this.dockerFields;
    if (!scanDockerLine(buf, start, end, f)) return false;
    if ((f.logEnd - f.logStart) * 3 > this.opts.maxLineBytes || this.opts.merger.isPending(f.stderr ? this.keyErr : this.keyOut)) return false;
    this.format = "docker";
    this.opts.counters.linesRead++;
    out.pushRange(buf, f.tsStart, f.tsEnd, f.stderr, f.logStart, f.logEnd, true);
    return true;
  }

  private line(buf: Uint8Array, start: number, end: number, offset: number, now: number, out: LineSink): void {
    const c = this.opts.counters;
    if (this.resume !== null) {
      this.opts.merger.resumed(this.opts.partialKey, this.opts.fileId, this.lineEnd, this.resume, now);
      this.resume = null;
    }
    if (end > start && buf[end - 1] === 0x0d) end--; // tolerate CRLF
    // A node that crashed can leave a run of NULs (allocated, never written) in a log file; the runtime's
    // next line then starts right after it, with no newline between: skip the NULs, keep the line.
    while (start < end && buf[start] === 0) start++;
    // "auto" settles on the format of the first line that parses in either; a malformed first line
    // (garbage starting with "{", NULs) must not lock a CRI file into docker and drop all of it.
    const guess = this.format ?? detectFormat(buf, start, end);
    if (guess === "docker" && this.fast && out instanceof LineBatch && this.dockerRange(buf, start, end, out)) return;
    let format: LineFormat;
    if (this.parses(guess, buf, start, end)) format = guess;
    else {
      const other: LineFormat = guess === "cri" ? "docker" : "cri";
      if (this.opts.format !== "auto" || !this.parses(other, buf, start, end)) {
        c.linesMalformed++;
        return;
      }
      format = other;
    }
    this.format = format;
    c.linesRead++;
    const merger = this.opts.merger;
    let merged: MergedLine | null;
    if (format === "cri") {
      const f = this.cri;
      const cs = f.contentStart;
      const k = f.stderr ? this.keyErr : this.keyOut;
      // Complete by itself, and short enough that no decoding (U+FFFD is 3 bytes for 1) can take it
      // over maxLineBytes: the line is its own record, no merger, no truncation.
      if (this.fast && !f.partial && (end - cs) * 3 <= this.opts.maxLineBytes && !merger.isPending(k)) {
        if (out instanceof LineBatch) out.pushRange(buf, start, f.tsEnd, f.stderr, cs, end);
        else out.push({ timestamp: decodeTimestamp(buf, start, f.tsEnd), stream: f.stderr ? "stderr" : "stdout", message: decodeContent(buf, cs, end), truncated: false });
        return;
      }
      const timestamp = decodeTimestamp(buf, start, f.tsEnd);
      const partial = f.partial;
      let body = buf.subarray(cs, end);
      // A character cut between two fragments is decoded whole (see PartialMerger.setTail).
      const tail = partial || merger.hasTails ? merger.takeTail(k) : undefined;
      if (tail) {
        const joined = new Uint8Array(tail.length + body.length);
        joined.set(tail, 0);
        joined.set(body, tail.length);
        body = joined;
      }
      const cut = partial ? incompleteUtf8Suffix(body) : 0;
      if (cut > 0) {
        merger.setTail(k, body.subarray(body.length - cut));
        body = body.subarray(0, body.length - cut);
      }
      const content = body.length > 0 ? utf8.decode(body) : "";
      // Nothing replaced: the string's UTF-8 length is the bytes' (else the merger measures it).
      const bytes = content.indexOf("\uFFFD") < 0 ? body.length : -1;
      merged = merger.addKeyed(k, f.stderr ? "stderr" : "stdout", timestamp, content, bytes, partial, this.opts.fileId, offset, now);
    } else {
      const d = this.docker as LineFragment;
      const k = d.stream === "stderr" ? this.keyErr : this.keyOut;
      merged = merger.addKeyed(k, d.stream, d.timestamp, d.content, -1, d.partial, this.opts.fileId, offset, now);
    }
    if (merged) {
      if (merged.truncated) c.linesTruncated++;
      out.push(merged);
    }
  }
}
