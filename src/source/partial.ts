// Merging of partial lines (SPEC §2.2). Runtimes split long lines into `P` fragments ended by an
// `F` fragment of the same stream. Pending fragments are keyed by (pod UID, container, restart,
// stream) — not by file — so a line split across a rotation is still merged.
import type { Stream } from "./line-format.ts";
import { truncateUtf8, utf8ByteLength } from "./utf8.ts";

export interface MergedLine {
  timestamp: string;
  stream: Stream;
  message: string;
  truncated: boolean;
}

interface Pending {
  timestamp: string;
  stream: Stream;
  parts: string[];
  bytes: number;
  truncated: boolean;
  /** Where the first fragment starts in its file: the checkpoint may not pass it. */
  fileId: string;
  startOffset: number;
  since: number;
}

export class PartialMerger {
  private readonly pending = new Map<string, Pending>();

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
    const k = stream === "stdout" ? key + "\u0000o" : key + "\u0000e";
    const p = this.pending.get(k);
    if (!p) {
      if (!partial) return this.finish(timestamp, stream, [content], utf8ByteLength(content), false);
      this.pending.set(k, {
        timestamp,
        stream,
        parts: [content],
        bytes: utf8ByteLength(content),
        truncated: false,
        fileId,
        startOffset: offset,
        since: now,
      });
      return null;
    }
    if (!p.truncated) {
      p.parts.push(content);
      p.bytes += utf8ByteLength(content);
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
    return this.finish(p.timestamp, stream, p.parts, p.bytes, p.truncated);
  }

  private finish(timestamp: string, stream: Stream, parts: string[], bytes: number, truncated: boolean): MergedLine {
    let message = parts.length === 1 ? (parts[0] as string) : parts.join("");
    if (bytes > this.maxLineBytes) {
      message = truncateUtf8(message, this.maxLineBytes);
      truncated = true;
    }
    return { timestamp, stream, message, truncated };
  }

  /** The lowest file offset still needed by a pending partial of this file, or null. */
  pendingStart(fileId: string): number | null {
    let min: number | null = null;
    for (const p of this.pending.values()) {
      if (p.fileId === fileId && (min === null || p.startOffset < min)) min = p.startOffset;
    }
    return min;
  }

  /** Flushes pendings older than `maxAgeMs` (or of the given key prefix when `key` is set) as whole lines. */
  flush(now: number, maxAgeMs: number, key?: string): Array<MergedLine & { fileId: string }> {
    const out: Array<MergedLine & { fileId: string }> = [];
    for (const [k, p] of this.pending) {
      const matches = key === undefined ? now - p.since >= maxAgeMs : k.startsWith(key + "\u0000");
      if (!matches) continue;
      this.pending.delete(k);
      out.push({ ...this.finish(p.timestamp, p.stream, p.parts, p.bytes, p.truncated), fileId: p.fileId });
    }
    return out;
  }

  get size(): number {
    return this.pending.size;
  }
}
