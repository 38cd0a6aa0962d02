// What runs at every scan to keep the source honest: sizes and deletions seen through the
// descriptors, the cap on disk held by deleted-but-unread files, and the watchdog that reopens a file
// whose reading stopped advancing while it grows (the "silently stops shipping" failure of tailers).
import type { SourceConfig, SourceParts } from "./context.ts";
import type { FileSet } from "./file-set.ts";
import type { PartialMerger } from "./partial.ts";
import type { TailedFile } from "./tailed-file.ts";

export class SafetyNets {
  constructor(
    private readonly parts: SourceParts,
    private readonly config: SourceConfig,
    private readonly files: FileSet,
    private readonly merger: PartialMerger,
  ) {}

  /** Sizes through the descriptors (deletions show as nlink 0), and the lag gauge. */
  refreshSizes(): void {
    let lag = 0;
    for (const f of this.files.open.values()) {
      f.refreshSize();
      lag += Math.max(0, f.size - f.watermark.checkpoint);
    }
    this.parts.counters.lagBytes = lag;
  }

  /** Deleted-but-open files hold disk; beyond maxDeletedHeldBytes the oldest is given up. */
  enforceDeletedCap(): void {
    const { counters, log, clock } = this.parts;
    const now = clock.now();
    const deleted = [...this.files.open.values()].filter((f) => f.deleted && f.fd >= 0).sort((a, b) => a.deletedAt - b.deletedAt);
    let total = deleted.reduce((s, f) => s + f.size, 0);
    const cap = this.config.maxDeletedHeldBytes;
    for (const f of deleted) {
      if (total <= cap) break;
      const lost = Math.max(0, f.size - f.reader.lineEnd);
      total -= f.size;
      counters.filesGivenUp++;
      counters.bytesLost += lost;
      log.warn("giving up a deleted file to free its disk space (source.maxDeletedHeldBytes)", {
        path: f.info.path,
        unreadBytes: lost,
        deletedHeldBytes: total + f.size,
        maxDeletedHeldBytes: cap,
        deletedForMs: now - f.deletedAt,
      });
      // Read to its end: closed as a drained file is, and done once its records are durable — a
      // restart then knows its .gz (else read whole again, from the middle of a line it ends inside of).
      if (lost === 0) {
        this.files.retire(f);
        continue;
      }
      // A line pending in its container may go on in the bytes lost: it ends there (FileSet.markGap).
      this.files.markGap(f);
      this.files.forget(f);
      if (this.merger.pinned(f.serial)) this.files.retired.set(f.serial, f);
    }
    counters.deletedHeldBytes = total;
  }

  /**
   * A file that grows while its read position has not moved for watchdogSeconds, with nothing
   * blocking it (held, waiting for its predecessor, ring backpressure: `emitting`), is reopened.
   */
  watchdog(now: number, emitting: boolean): void {
    const limitMs = this.config.watchdogSeconds * 1000;
    if (limitMs <= 0) return;
    for (const f of this.files.open.values()) {
      if (f.fd < 0 || f.held || f.blocked || emitting || f.size <= f.readPos) {
        f.stuckSince = null;
        continue;
      }
      if (f.stuckSince === null || f.stuckAtPos !== f.readPos) {
        f.stuckSince = now;
        f.stuckAtPos = f.readPos;
        continue;
      }
      if (now - f.stuckSince < limitMs) continue;
      this.reopen(f, now);
    }
  }

  private reopen(f: TailedFile, now: number): void {
    this.parts.counters.watchdogReopens++;
    this.parts.log.warn("file grows but reading it has not advanced; reopening it at its checkpoint", {
      path: f.info.path,
      readOffset: f.readPos,
      resumeAt: f.reader.lineEnd,
      size: f.size,
      stuckMs: now - (f.stuckSince ?? now),
    });
    f.reopen();
    this.parts.notify();
  }
}
