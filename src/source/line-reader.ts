// Turns a file's bytes into merged log lines, tracking byte offsets for checkpoints.
// Pure: the caller reads bytes from the file descriptor and feeds them here.
import { criContentStart, detectFormat, type LineFormat, parseCriLine, parseDockerLine } from "./line-format.ts";
import type { MergedLine, PartialMerger } from "./partial.ts";

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
}

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
  private carry: Uint8Array = new Uint8Array(0);
  private format: LineFormat | null;
  /** True while dropping the rest of an over-long physical line. */
  private discarding = false;

  constructor(
    private readonly opts: LineReaderOptions,
    startOffset: number,
  ) {
    this.lineEnd = startOffset;
    this.format = opts.format === "auto" ? null : opts.format;
  }

  /** Bytes received but not yet ending in "\n". */
  get carryBytes(): number {
    return this.carry.length;
  }

  /** Consumes a chunk that continues the file at `lineEnd + carryBytes`; appends complete lines to `out`. */
  feed(chunk: Uint8Array, now: number, out: MergedLine[]): void {
    let buf: Uint8Array;
    if (this.carry.length === 0) buf = chunk;
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
    this.carry = new Uint8Array(0);
    this.discarding = false;
  }

  /** The file will not grow again (rotated away and drained): its last line ends here. */
  finish(now: number, out: MergedLine[]): void {
    if (this.carry.length > 0 && !this.discarding) this.line(this.carry, 0, this.carry.length, this.lineEnd, now, out);
    this.lineEnd += this.carry.length;
    this.carry = new Uint8Array(0);
    this.discarding = false;
  }

  private line(buf: Uint8Array, start: number, end: number, offset: number, now: number, out: MergedLine[]): void {
    const c = this.opts.counters;
    if (end > start && buf[end - 1] === 0x0d) end--; // tolerate CRLF
    // A node that crashed can leave a run of NULs (allocated, never written) in a log file; the runtime's
    // next line then starts right after it, with no newline between: skip the NULs, keep the line.
    while (start < end && buf[start] === 0) start++;
    // "auto" settles on the format of the first line that parses in either; a malformed first line
    // (garbage starting with "{", NULs) must not lock a CRI file into docker and drop all of it.
    const guess = this.format ?? detectFormat(buf, start, end);
    let frag = guess === "cri" ? parseCriLine(buf, start, end) : parseDockerLine(buf, start, end);
    if (!frag && this.opts.format === "auto") {
      const other: LineFormat = guess === "cri" ? "docker" : "cri";
      frag = other === "cri" ? parseCriLine(buf, start, end) : parseDockerLine(buf, start, end);
      if (frag) this.format = other;
    } else if (frag) this.format = guess;
    if (!frag) {
      c.linesMalformed++;
      return;
    }
    c.linesRead++;
    const merger = this.opts.merger;
    if (this.format === "cri" && (frag.partial || merger.hasTails)) {
      // A character cut between two fragments is decoded whole (see PartialMerger.setTail).
      const tail = merger.takeTail(this.opts.partialKey, frag.stream);
      if (frag.partial || tail) {
        let raw = buf.subarray(criContentStart(buf, start, end), end);
        if (tail) {
          const joined = new Uint8Array(tail.length + raw.length);
          joined.set(tail, 0);
          joined.set(raw, tail.length);
          raw = joined;
        }
        const cut = frag.partial ? incompleteUtf8Suffix(raw) : 0;
        if (cut > 0) merger.setTail(this.opts.partialKey, frag.stream, raw.subarray(raw.length - cut));
        frag.content = utf8.decode(raw.subarray(0, raw.length - cut));
      }
    }
    const merged = merger.add(
      this.opts.partialKey,
      frag.stream,
      frag.timestamp,
      frag.content,
      frag.partial,
      this.opts.fileId,
      offset,
      now,
    );
    if (merged) {
      if (merged.truncated) c.linesTruncated++;
      out.push(merged);
    }
  }
}
