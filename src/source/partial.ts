// Merging of partial lines (docs/source.md, "Lines"). Runtimes split long lines into `P` fragments ended by an
// `F` fragment of the same stream. Pending fragments are keyed by (pod UID, container, restart,
// stream) — not by file — so a line split across a rotation is still merged.
//
// Crash safety: a pending line pins, in every file it has taken fragments from, the offset of its
// first fragment there. The source keeps each such file's checkpoint at or before its pin, so after
// a crash the whole line is read again: the head from the rotated file (found again by inode, or in
// its .gz), the rest from its successor. Where the two streams overlap, a checkpoint also says where
// each stream stood (resumeAt): resumed there, the rest of a line delivered already is skipped (resumed).
import type { Stream } from "./line-format.ts";
import type { MergedLine, ResumeStreams, StreamResume } from "./types.ts";
import { truncateUtf8, utf8ByteLength } from "./utf8.ts";

/** A file region a pending line still needs: the checkpoint of `fileId` may not pass `offset`. */
export interface Pin {
  fileId: string;
  offset: number;
}

/** A pin of a pending line, with what a checkpoint at it must know. */
interface LinePin extends Pin {
  /** The offset of the line's last fragment in this file so far. */
  last: number;
  /** The other stream's line pending when this line's first fragment here was read (null: none, or settled since). */
  other: Pending | null;
}

/** Past any offset: the delivered line a stream is inside goes on after this file. */
const WHOLE_FILE = Number.MAX_SAFE_INTEGER;

interface Pending {
  timestamp: string;
  stream: Stream;
  parts: string[];
  bytes: number;
  truncated: boolean;
  /** One pin per file the line has fragments in, the first (the head's file) first. */
  pins: LinePin[];
  since: number;
  /** Emitted (completed, flushed or handed over as ended): its pins no longer hold a checkpoint. */
  settled: boolean;
  /**
   * The rest of a line delivered before the checkpoint its file was resumed at (resumed): its
   * fragments are taken and dropped, it pins nothing and is never emitted. It ends at its F, or at
   * a fragment of its stream at or past `until` in the resumed file (its end was a flush there).
   */
  delivered: { fileId: string; until: number } | null;
}

/** The merger's key of one stream of a container instance (uid/container/restart). */
export function streamKey(key: string, stream: Stream): string {
  // Two characters after the container key (flush() takes them off again).
  return stream === "stdout" ? key + "\u0000o" : key + "\u0000e";
}

export class PartialMerger {
  private readonly pending = new Map<string, Pending>();
  /** Lines ended by a gap in their bytes (see endLines), by stream key: no fragment joins them; handed over next, whatever their age. */
  private ended: Array<{ k: string; p: Pending }> = [];
  /** Files whose pins were dropped (line completed or flushed) since the last takeReleased(). */
  private released = new Set<string>();
  /**
   * Runtimes split long lines on bytes, not characters (containerd: every 16 KiB), so a P fragment
   * can end inside a UTF-8 character. Its first bytes wait here, by the pending line's key, for the
   * rest of the character at the start of the next fragment (the reader decodes them together).
   */
  private readonly tails = new Map<string, Uint8Array>();

  constructor(private readonly maxLineBytes: number) {}

  /**
   * Adds one fragment. Returns the completed line when `partial` is false, else null.
   * `key` identifies the container instance (uid/container/restart); the stream is added here.
   */
  add(
    key: string,
    stream: Stream,
    timestamp: string,
    content: string,
    partial: boolean,
    fileId: string,
    offset: number,
    now: number,
  ): MergedLine | null {
    return this.addKeyed(streamKey(key, stream), stream, timestamp, content, -1, partial, fileId, offset, now);
  }

  /**
   * As add, with the key of the line's stream already built (streamKey: a reader builds its two once)
   * and the content's UTF-8 byte length when the caller knows it (-1: measure it here).
   */
  addKeyed(
    k: string,
    stream: Stream,
    timestamp: string,
    content: string,
    contentBytes: number,
    partial: boolean,
    fileId: string,
    offset: number,
    now: number,
  ): MergedLine | null {
    let p = this.pending.size === 0 ? undefined : this.pending.get(k);
    if (p?.delivered && this.restOfDelivered(k, p, fileId, offset, partial)) return null;
    if (p?.delivered) p = undefined; // it ended before this fragment: a line begins here
    if (!p) {
      // A whole line of at most maxLineBytes / 3 UTF-16 units cannot need truncating: not measured.
      if (!partial && contentBytes < 0 && content.length * 3 <= this.maxLineBytes) return { timestamp, stream, message: content, truncated: false };
      const bytes = contentBytes >= 0 ? contentBytes : utf8ByteLength(content);
      if (!partial) return this.finish(timestamp, stream, [content], bytes, false);
      this.pending.set(k, {
        timestamp,
        stream,
        parts: [content],
        bytes,
        truncated: false,
        pins: [{ fileId, offset, last: offset, other: this.otherLine(k) }],
        since: now,
        settled: false,
        delivered: null,
      });
      return null;
    }
    const pin = p.pins[p.pins.length - 1] as LinePin;
    if (pin.fileId === fileId) pin.last = offset;
    else if (!p.pins.some((x) => x.fileId === fileId)) p.pins.push({ fileId, offset, last: offset, other: this.otherLine(k) });
    p.since = now; // the flush timeout counts from the last fragment: a slow writer is not cut
    if (!p.truncated) {
      p.parts.push(content);
      p.bytes += contentBytes >= 0 ? contentBytes : utf8ByteLength(content);
      // Stop accumulating once over the cap: memory stays bounded however long the line grows.
      if (p.bytes > this.maxLineBytes) {
        const whole = truncateUtf8(p.parts.join(""), this.maxLineBytes);
        p.parts = [whole];
        p.bytes = this.maxLineBytes;
        p.truncated = true;
      }
    }
    if (partial) return null;
    this.pending.delete(k);
    const line = this.finish(p.timestamp, stream, p.parts, p.bytes, p.truncated);
    this.settle(p);
    return line;
  }

  /**
   * Whether a fragment is the rest of the delivered line `p` (taken: its F ends it); when it is past
   * that line's end, the line ends here and the fragment is not taken.
   */
  private restOfDelivered(k: string, p: Pending, fileId: string, offset: number, partial: boolean): boolean {
    const bound = p.delivered as { fileId: string; until: number };
    const past = bound.fileId === fileId && offset >= bound.until;
    if (!past) {
      const pin = p.pins.find((x) => x.fileId === fileId);
      if (pin) pin.last = Math.max(pin.last, offset);
      else p.pins.push({ fileId, offset, last: offset, other: null });
      if (partial) return true;
    }
    this.pending.delete(k);
    this.tails.delete(k);
    this.settle(p);
    return !past;
  }

  /** The line of the other stream of this stream key's container pending now, or null. */
  private otherLine(k: string): Pending | null {
    if (this.pending.size === 0) return null;
    return this.pending.get(k.slice(0, -1) + (k.endsWith("o") ? "e" : "o")) ?? null;
  }

  /**
   * Whether a line of this stream key is pending (fragments or a cut character waiting). When not,
   * an F line is complete by itself: the reader's fast path takes it without calling addKeyed.
   */
  isPending(k: string): boolean {
    return (this.pending.size !== 0 && this.pending.has(k)) || (this.tails.size !== 0 && this.tails.has(k));
  }

  /** Whether any line waits with a cut character (the reader's fast path skips the lookup when not). */
  get hasTails(): boolean {
    return this.tails.size > 0;
  }

  /** Removes and returns the bytes of a cut character waiting for this stream key. */
  takeTail(k: string): Uint8Array | undefined {
    const t = this.tails.get(k);
    if (t) this.tails.delete(k);
    return t;
  }

  /** Keeps the first bytes of a character cut at the end of a P fragment of this stream key. */
  setTail(k: string, bytes: Uint8Array): void {
    this.tails.set(k, bytes.slice());
  }

  /**
   * A line was emitted (its content taken already): its pins drop. Kept: where its fragments are, for
   * the checkpoints of lines that began while it was pending (resumeAt); dropped: its content, and
   * what it knew of other lines (no chain of settled lines stays in memory).
   */
  private settle(p: Pending): void {
    p.settled = true;
    p.parts = [];
    for (const pin of p.pins) {
      pin.other = null;
      this.released.add(pin.fileId);
    }
  }

  private finish(timestamp: string, stream: Stream, parts: string[], bytes: number, truncated: boolean): MergedLine {
    let message = parts.length === 1 ? (parts[0] as string) : parts.join("");
    if (bytes > this.maxLineBytes) {
      message = truncateUtf8(message, this.maxLineBytes);
      truncated = true;
    }
    return { timestamp, stream, message, truncated };
  }

  /**
   * Ends the pending lines of a container instance: bytes of it were lost (a file given up unread),
   * so the next fragment of a stream may begin another line — joined to the pending one, that line
   * would vanish into its record (cut at maxLineBytes, it would not even show). They keep their pins
   * until takeEnded hands them over.
   */
  endLines(key: string): void {
    for (const k of [streamKey(key, "stdout"), streamKey(key, "stderr")]) {
      const p = this.pending.get(k);
      if (!p) continue;
      this.pending.delete(k);
      if (p.delivered) {
        this.tails.delete(k);
        this.settle(p);
        continue;
      }
      if (this.tails.delete(k) && !p.truncated) p.parts.push("\uFFFD");
      this.ended.push({ k, p });
    }
  }

  /** The lines endLines ended, as whole lines (their pins settled); `fileId` of each is the file of its head. */
  takeEnded(): Array<MergedLine & { fileId: string }> {
    const out = this.ended.map(({ p }) => {
      const line = this.asLine(p);
      this.settle(p);
      return line;
    });
    this.ended = [];
    return out;
  }

  /** The lowest offset of this file still needed by a pending or ended line, or null. */
  pendingStart(fileId: string): number | null {
    return this.firstPin(fileId)?.pin.offset ?? null;
  }

  /** The pin of this file with the lowest offset among pending and ended lines, and its line. */
  private firstPin(fileId: string): { pin: LinePin; line: Pending } | null {
    let first: { pin: LinePin; line: Pending } | null = null;
    const lower = (line: Pending) => {
      if (line.delivered) return; // needs nothing read again
      for (const pin of line.pins) if (pin.fileId === fileId && (first === null || pin.offset < first.pin.offset)) first = { pin, line };
    };
    for (const p of this.pending.values()) lower(p);
    for (const e of this.ended) lower(e.p);
    return first;
  }

  /**
   * Where a file of container instance `key` may be resumed after a restart, and where each stream
   * stands there: the first fragment of the earliest line not emitted with fragments in it, else
   * `lineEnd` (the end of its last complete line). A stream inside a line emitted already there (the
   * two streams overlapping) is skipped to that line's end when resumed; the old way, holding the
   * checkpoint where the overlap began, could hold it at the first byte of every file for as long
   * as the streams kept overlapping.
   */
  resumeAt(key: string, fileId: string, lineEnd: number): { offset: number; streams: ResumeStreams } {
    const first = this.firstPin(fileId);
    if (first === null) {
      const at = (s: Stream): StreamResume => {
        const k = streamKey(key, s);
        const p = this.pending.get(k);
        if (p?.delivered) return WHOLE_FILE; // its rest is not read yet
        return p || this.tails.has(k) || this.endedOf(k) ? "inside" : "between";
      };
      return { offset: lineEnd, streams: { stdout: at("stdout"), stderr: at("stderr") } };
    }
    const { pin, line } = first;
    const own: StreamResume = line.pins[0] === pin ? "between" : "inside";
    const o = pin.other;
    const other: StreamResume = o === null ? "between" : o.settled ? deliveredBefore(o, fileId) : o.delivered ? WHOLE_FILE : "inside";
    return { offset: pin.offset, streams: line.stream === "stdout" ? { stdout: own, stderr: other } : { stdout: other, stderr: own } };
  }

  private endedOf(k: string): boolean {
    return this.ended.some((e) => e.k === k);
  }

  /**
   * File `fileId` of container instance `key` is resumed at `offset`, a checkpoint that says where
   * each stream stood there. A line pending on a stream that stood between lines, or inside a line
   * delivered already, was read again from an earlier file and ended before that point: delivered,
   * it is dropped (joined to what follows, it would swallow the next line of its stream). The rest
   * of a line delivered already is taken as such a line and dropped too (restOfDelivered).
   */
  resumed(key: string, fileId: string, offset: number, streams: ResumeStreams, now: number): void {
    for (const s of ["stdout", "stderr"] as const) {
      const at = streams[s];
      if (at === "inside") continue;
      const k = streamKey(key, s);
      const p = this.pending.get(k);
      this.tails.delete(k);
      if (p) {
        this.pending.delete(k);
        this.settle(p);
      }
      if (at === "between") continue;
      this.pending.set(k, {
        timestamp: "",
        stream: s,
        parts: [],
        bytes: 0,
        truncated: false,
        // Its fragments here are those before `at`: where a checkpoint taken on the way says it ends.
        pins: [{ fileId, offset, last: at - 1, other: null }],
        since: now,
        settled: false,
        delivered: { fileId, until: at },
      });
    }
  }

  /** The container instances (uid/container/restart) with a line pending whose head's file `from` says. */
  containersPendingFrom(from: (fileId: string) => boolean): Set<string> {
    const keys = new Set<string>();
    for (const [k, p] of this.pending) if (!p.delivered && from((p.pins[0] as LinePin).fileId)) keys.add(k.slice(0, -2));
    return keys;
  }

  /** Whether a pending line has fragments in this file. */
  pinned(fileId: string): boolean {
    return this.pendingStart(fileId) !== null;
  }

  /** Files that lost a pin since the last call: their safe offsets may have moved. */
  takeReleased(): string[] {
    if (this.released.size === 0) return [];
    const out = [...this.released];
    this.released = new Set();
    return out;
  }

  /**
   * Flushes, as whole lines, the pending lines whose writer has added nothing for `maxAgeMs`, unless
   * their continuation may still be read: `waiting(containerKey)`, asked of lines that are due, says
   * a container instance may have unread bytes (a successor not read yet, reading paused by a full
   * ring, a file held, a file that grew), and gives the line another full timeout. `fileId` of each
   * line is the file of its head.
   */
  flush(now: number, maxAgeMs: number, waiting: (containerKey: string) => boolean = () => false): Array<MergedLine & { fileId: string }> {
    const out: Array<MergedLine & { fileId: string }> = [];
    for (const [k, p] of this.pending) {
      if (now - p.since < maxAgeMs) continue;
      if (waiting(k.slice(0, -2))) {
        p.since = now; // due, but its continuation may be there: another full timeout
        continue;
      }
      this.pending.delete(k);
      if (p.delivered) {
        // The writer paused inside a line delivered already: its rest, if it comes, is a line of its own.
        this.tails.delete(k);
        this.settle(p);
        continue;
      }
      // The rest of a cut character will never come: it is replaced, as invalid UTF-8 is.
      if (this.tails.delete(k) && !p.truncated) p.parts.push("\uFFFD");
      out.push(this.asLine(p));
      this.settle(p);
    }
    return out;
  }

  /** A pending line ended as it is (its pins settled by the caller after), named by the file of its head. */
  private asLine(p: Pending): MergedLine & { fileId: string } {
    const head = p.pins[0] as Pin;
    return { ...this.finish(p.timestamp, p.stream, p.parts, p.bytes, p.truncated), fileId: head.fileId };
  }

  /** The earliest time a pending line becomes due for a flush, or null. */
  nextDue(maxAgeMs: number): number | null {
    let min: number | null = null;
    for (const p of this.pending.values()) if (min === null || p.since + maxAgeMs < min) min = p.since + maxAgeMs;
    return min;
  }

  /** Lines pending, and lines ended but not handed over yet. */
  get size(): number {
    return this.pending.size + this.ended.length;
  }
}

/**
 * Where the fragments in `fileId` of a delivered line begin no more: after its last one there, or
 * past the whole file when the line went on in a later one (its fragments here are all it has here).
 */
function deliveredBefore(line: Pending, fileId: string): number {
  const i = line.pins.findIndex((pin) => pin.fileId === fileId);
  if (i < 0 || i < line.pins.length - 1) return WHOLE_FILE;
  return (line.pins[i] as LinePin).last + 1;
}
