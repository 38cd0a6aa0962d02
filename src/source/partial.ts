// Merging of partial lines (docs/source.md, "Lines"). Runtimes split long lines into `P` fragments ended by an
// `F` fragment of the same stream. Pending fragments are keyed by (pod UID, container, restart,
// stream) — not by file — so a line split across a rotation is still merged.
//
// Crash safety: a pending line pins, in every file it has taken fragments from, the offset of its
// first fragment there. The source keeps each such file's checkpoint at or before its pin, so after
// a crash the whole line is read again: the head from the rotated file (found again by inode, or in
// its .gz), the rest from its successor. Lines of the two streams that overlap pin together until
// none is pending (see `runs`).
import type { Stream } from "./line-format.ts";
import type { MergedLine } from "./types.ts";
import { truncateUtf8, utf8ByteLength } from "./utf8.ts";

/** A file region a pending line still needs: the checkpoint of `fileId` may not pass `offset`. */
export interface Pin {
  fileId: string;
  offset: number;
}

interface Pending {
  timestamp: string;
  stream: Stream;
  parts: string[];
  bytes: number;
  truncated: boolean;
  /** One pin per file the line has fragments in, the first (the head's file) first. */
  pins: Pin[];
  since: number;
}

/** The merger's key of one stream of a container instance (uid/container/restart). */
export function streamKey(key: string, stream: Stream): string {
  // Two characters after the container key (flush() takes them off again).
  return stream === "stdout" ? key + "\u0000o" : key + "\u0000e";
}

export class PartialMerger {
  private readonly pending = new Map<string, Pending>();
  /**
   * Per container instance: the pins of lines that completed (or were flushed) while another line of
   * the container was still pending — lines of its two streams overlapping in a run. Until the run
   * ends (no line of the container pending), a checkpoint may not pass where it began, in any file
   * it touched: resumed in the run's middle, the reader would meet the tail of a line already
   * emitted, its head behind the checkpoint (in this file, or across a rotation in the one before).
   */
  private readonly runs = new Map<string, Pin[]>();
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
    const p = this.pending.size === 0 ? undefined : this.pending.get(k);
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
        pins: [{ fileId, offset }],
        since: now,
      });
      return null;
    }
    if (!p.pins.some((pin) => pin.fileId === fileId)) p.pins.push({ fileId, offset });
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
    this.settle(k, p);
    return this.finish(p.timestamp, stream, p.parts, p.bytes, p.truncated);
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

  /** A line left the pending set: its pins drop, or join its container's run while another line is pending. */
  private settle(k: string, p: Pending): void {
    const container = k.slice(0, -2);
    let run = this.runs.get(container);
    if (this.pending.has(streamKey(container, "stdout")) || this.pending.has(streamKey(container, "stderr"))) {
      if (!run) this.runs.set(container, (run = []));
      for (const pin of p.pins) {
        const same = run.find((r) => r.fileId === pin.fileId);
        if (!same) run.push({ ...pin });
        else same.offset = Math.min(same.offset, pin.offset);
      }
      return;
    }
    for (const pin of p.pins) this.released.add(pin.fileId);
    if (!run) return;
    for (const pin of run) this.released.add(pin.fileId);
    this.runs.delete(container);
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
      if (this.tails.delete(k) && !p.truncated) p.parts.push("\uFFFD");
      this.ended.push({ k, p });
    }
  }

  /** The lines endLines ended, as whole lines (their pins settled); `fileId` of each is the file of its head. */
  takeEnded(): Array<MergedLine & { fileId: string }> {
    const out = this.ended.map(({ k, p }) => {
      this.settle(k, p);
      return this.asLine(p);
    });
    this.ended = [];
    return out;
  }

  /** The lowest offset of this file still needed by a pending or ended line (or a run of overlapping ones), or null. */
  pendingStart(fileId: string): number | null {
    let min: number | null = null;
    const lower = (pins: Pin[]) => {
      for (const pin of pins) if (pin.fileId === fileId && (min === null || pin.offset < min)) min = pin.offset;
    };
    for (const p of this.pending.values()) lower(p.pins);
    for (const e of this.ended) lower(e.p.pins);
    for (const run of this.runs.values()) lower(run);
    return min;
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
      this.settle(k, p);
      // The rest of a cut character will never come: it is replaced, as invalid UTF-8 is.
      if (this.tails.delete(k) && !p.truncated) p.parts.push("\uFFFD");
      out.push(this.asLine(p));
    }
    return out;
  }

  /** A pending line ended as it is (its pins settled by the caller), named by the file of its head. */
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
