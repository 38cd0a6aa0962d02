// The checkpointer: the checkpoints of the last run until files claim them, the watermarks of the
// files followed now, and saving them when something moved (docs/source.md, "checkpoints").
import type { Logger } from "../log.ts";
import { checkpointKey } from "./checkpoints.ts";
import type { FileSet } from "./file-set.ts";
import type { PartialMerger } from "./partial.ts";
import type { CheckpointStorage, FileCheckpoint, SourceCounters } from "./types.ts";

export class Checkpointer {
  /** Checkpoints loaded at start and not yet matched to a file, by device:inode. */
  readonly unclaimed = new Map<string, FileCheckpoint>();
  private dirty = false;
  private prunedAfterScan = false;

  constructor(
    private readonly storage: CheckpointStorage,
    private readonly counters: SourceCounters,
    private readonly log: Logger,
    /** Called right before each save (other state that must be durable no later than the checkpoints). */
    private readonly onSaving?: () => void,
  ) {}

  load(): void {
    for (const cp of this.storage.load((msg) => this.log.warn(msg))) this.unclaimed.set(checkpointKey(cp.dev, cp.ino), cp);
  }

  markDirty(): void {
    this.dirty = true;
  }

  /** Whether unclaimed checkpoints were already given up after the first readable scan. */
  get settled(): boolean {
    return this.prunedAfterScan;
  }

  /**
   * After the first readable scan (and the catch-up after it), checkpoints that matched no file, live
   * or rotated, are of files gone for good. A file deleted while only this process held it open (e.g.
   * rotated away during an outage, then a crash) took its unread bytes with it: count them (at least
   * size − offset at the last save).
   */
  forgetUnclaimed(): void {
    this.prunedAfterScan = true;
    if (this.unclaimed.size === 0) return;
    this.counters.checkpointsPruned += this.unclaimed.size;
    this.log.info("forgetting checkpoints of files that no longer exist", { count: this.unclaimed.size });
    for (const cp of this.unclaimed.values()) {
      const lost = (cp.size ?? 0) - cp.offset;
      if (lost <= 0) continue;
      this.counters.bytesLost += lost;
      this.counters.filesGivenUp++;
      this.log.warn("a file was deleted before it was read to its end; its unread bytes are lost", { path: cp.path, bytesLost: lost });
    }
    this.unclaimed.clear();
    this.dirty = true;
  }

  /** Moves every watermark over what the ring made durable; drops retired files nothing needs. */
  applyMarks(files: FileSet, merger: PartialMerger, durable: number): void {
    for (const f of files.open.values()) if (f.watermark.advance(durable)) this.dirty = true;
    for (const [serial, f] of files.retired) {
      if (f.watermark.advance(durable)) this.dirty = true;
      if (!f.watermark.waiting && !merger.pinned(serial)) {
        files.retired.delete(serial);
        this.dirty = true;
      }
    }
  }

  /** Persists the checkpoints if anything moved; a failure is logged and tried again next time. */
  save(files: FileSet): void {
    if (!this.dirty) return;
    this.dirty = false;
    const out: FileCheckpoint[] = [];
    const ids = new Set<string>();
    for (const f of [...files.open.values(), ...files.retired.values()]) {
      f.updateFingerprint();
      const id = checkpointKey(f.dev, f.ino);
      if (ids.has(id)) continue; // an older retired file whose inode was reused: the open one wins
      ids.add(id);
      out.push({ dev: f.dev, ino: f.ino, fpLen: f.fp.fpLen, fpHash: f.fp.fpHash, path: f.livePath, offset: f.watermark.checkpoint, size: f.size });
    }
    // Until the first scan of a readable root, checkpoints not matched yet are kept as they were.
    for (const [id, cp] of this.unclaimed) if (!ids.has(id)) out.push(cp);
    try {
      this.onSaving?.();
      this.storage.save(out);
      this.counters.checkpointWrites++;
    } catch (err) {
      this.dirty = true;
      this.log.error("cannot write checkpoints", { path: this.storage.path, error: (err as Error).message });
    }
  }
}
