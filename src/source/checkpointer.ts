// The checkpointer: the checkpoints of the last run until files claim them, the watermarks of the
// files followed now, files recently read to their end ("done", so that they are recognised when
// they turn up rotated or compressed after a restart), and saving all of it when something moved
// (docs/source.md, "Checkpoints").
import type { Logger } from "../log.ts";
import type { Clock } from "../platform/types.ts";
import { checkpointIdentity } from "./checkpoints.ts";
import type { PartialMerger } from "./partial.ts";
import type { TailedFile } from "./tailed-file.ts";
import type { CheckpointHealth, CheckpointStorage, FileCheckpoint, SourceCounters } from "./types.ts";

/** How long a file read to its end is remembered (kubelet rotates, compresses and deletes within this). */
const DONE_RETENTION_MS = 60 * 60_000;
/** At least this many done files remembered per live path (kubelet keeps five files per container by default). */
const DONE_PER_PATH = 8;
/**
 * And this many more than the rotated files its dir last listed (containerLogMaxFiles may keep more
 * than eight; the kubelet may rotate again before the next listing).
 */
const DONE_BEYOND_ROTATED = 4;

/** The files a checkpoint is kept for: those followed, and those closed but not durable yet (FileSet). */
export interface FileTables {
  readonly open: ReadonlyMap<string, TailedFile>;
  readonly retired: Map<string, TailedFile>;
}

interface Done {
  cp: FileCheckpoint;
  at: number;
  /**
   * Its file's place in reading order (FileSet: older first), not when it was done: files held for a
   * pending line or their marks are done late, all at once, after newer ones that needed nothing
   * more. The last run's rank before this run's, in the order it saved them.
   */
  rank: number;
}

export class Checkpointer {
  /** Checkpoints loaded at start and not yet matched to a file, by checkpointIdentity. */
  readonly unclaimed = new Map<string, FileCheckpoint>();
  /** When the last run last saved its checkpoints (null: no checkpoint file, or one too old to say). */
  lastRunSavedAt: number | null = null;
  /**
   * When the source stopped looking at its directories (a graceful stop): a save after it — the
   * last one comes once the ring has drained, up to shutdownTimeoutMs later — says the directories
   * were known as of then. The next start takes a rotated file modified well before savedAt for one
   * this run knew; one made while the stop drained was never seen (seed 32330).
   */
  lookedUntil: number | null = null;
  /** Files read to their end and closed, by device:inode:head (checkpointIdentity; inodes are reused at once). */
  private readonly done = new Map<string, Done>();
  private dirty = false;
  /**
   * Each followed file's size in the last save: a file that grew unread (held, or behind a full
   * ring: no watermark moves) is saved again at the next scan, so that if it is deleted while we
   * are down, the next start counts its loss from that size, not from an older one.
   */
  private readonly savedSizes = new WeakMap<TailedFile, number>();
  private prunedAfterScan = false;
  /** Saves failing since (epoch ms), and the last error: a /status reason (a full data dir disk). */
  readonly health: CheckpointHealth = { failingSince: null, lastError: null };

  constructor(
    private readonly storage: CheckpointStorage,
    private readonly counters: SourceCounters,
    private readonly log: Logger,
    private readonly clock: Clock,
    /** Called right before each save (other state that must be durable no later than the checkpoints). */
    private readonly onSaving?: () => void,
    /** How many rotated files of a live path (plain or compressed) the last listing of its dir showed. */
    private readonly rotatedOnDisk: (livePath: string) => number = () => 0,
  ) {}

  load(): void {
    const saved = this.storage.load((msg) => this.log.warn(msg));
    this.lastRunSavedAt = saved.savedAt;
    // No save time (a first start): save at the first chance, even with nothing followed yet. A run
    // that dies before its first save would leave the next one a first start too, and the rotated
    // files this one saw come and go would be history to it (docs/source.md, "Restart").
    if (saved.savedAt === null) this.dirty = true;
    let rank = -saved.files.length; // below every file of this run (FileSet's orders start at 1)
    for (const cp of saved.files) {
      if (cp.done) this.done.set(checkpointIdentity(cp), { cp, at: saved.savedAt ?? this.clock.now(), rank: rank++ });
      else this.unclaimed.set(checkpointIdentity(cp), cp);
    }
  }

  /**
   * Takes the unclaimed checkpoint of the file with this device and inode whose head `matches` (the
   * longest head, when a checkpoint taken while a file was empty matches too), or null.
   */
  claim(dev: number, ino: number, matches: (cp: FileCheckpoint) => boolean): FileCheckpoint | null {
    let best: FileCheckpoint | null = null;
    for (const cp of this.unclaimed.values()) {
      if (cp.dev === dev && cp.ino === ino && (best === null || cp.fpLen > best.fpLen) && matches(cp)) best = cp;
    }
    if (best) this.unclaimed.delete(checkpointIdentity(best));
    return best;
  }

  /** Takes every unclaimed checkpoint of this live path that `same` recognises (a file read whole that had them). */
  takeAll(livePath: string, same: (cp: FileCheckpoint) => boolean): void {
    for (const [key, cp] of this.unclaimed) if (cp.path === livePath && same(cp)) this.unclaimed.delete(key);
  }

  /** Takes this unclaimed checkpoint: its file is followed already. */
  take(cp: FileCheckpoint): void {
    this.unclaimed.delete(checkpointIdentity(cp));
  }

  markDirty(): void {
    this.dirty = true;
  }

  /** Whether unclaimed checkpoints were already given up after the first readable scan. */
  get settled(): boolean {
    return this.prunedAfterScan;
  }

  /** Whether the last run knew a file of this live path that `same` recognises (followed, or read to its end). */
  knows(livePath: string, same: (cp: FileCheckpoint) => boolean): boolean {
    for (const cp of this.unclaimed.values()) if (cp.path === livePath && same(cp)) return true;
    return this.readToEnd(livePath, same);
  }

  /** Whether a file of this live path that `same` recognises was read to its end (done). */
  readToEnd(livePath: string, same: (cp: FileCheckpoint) => boolean): boolean {
    for (const { cp } of this.done.values()) if (cp.path === livePath && same(cp)) return true;
    return false;
  }

  /** A file read to its end, its lines durable: remembered a while, then forgotten. */
  markDone(f: TailedFile): void {
    this.rememberDone({ dev: f.dev, ino: f.ino, fpLen: f.fp.fpLen, fpHash: f.fp.fpHash, path: f.livePath, offset: f.watermark.checkpoint, size: f.size }, f.order);
  }

  /**
   * A checkpointed file with nothing left to read (found compressed after downtime, say): done.
   * `order`: its place in reading order among its container's files (FileSet).
   */
  rememberDone(checkpoint: FileCheckpoint, order: number): void {
    const cp: FileCheckpoint = { ...checkpoint, done: true };
    this.done.set(checkpointIdentity(cp), { cp, at: this.clock.now(), rank: order });
    this.dirty = true;
  }

  /**
   * After the first readable scan (and the catch-up after it), checkpoints that matched no file, live
   * or rotated, are of files gone for good. A file deleted while only this process held it open (e.g.
   * rotated away during an outage, then a crash), or rotated and deleted while we were down, took its
   * unread bytes with it: count them — size − offset at the last save, or more where `estimateSize`
   * knows better (it may have grown after the save: its rotated siblings tell how large they grow).
   */
  forgetUnclaimed(estimateSize: (cp: FileCheckpoint) => number = (cp) => cp.size ?? 0): void {
    this.prunedAfterScan = true;
    if (this.unclaimed.size === 0) return;
    this.counters.checkpointsPruned += this.unclaimed.size;
    this.log.info("forgetting checkpoints of files that no longer exist", { count: this.unclaimed.size });
    for (const cp of this.unclaimed.values()) {
      const lost = Math.max(cp.size ?? 0, estimateSize(cp)) - cp.offset;
      if (lost <= 0) continue;
      this.counters.bytesLost += lost;
      this.counters.filesGivenUp++;
      this.log.warn("a file was deleted before it was read to its end; its unread bytes are lost (an estimate: its size at the last checkpoint save, which every scan keeps current, or its rotated siblings' if larger)", {
        path: cp.path,
        bytesLost: lost,
      });
    }
    this.unclaimed.clear();
    this.dirty = true;
  }

  /** Moves every watermark over what the ring made durable; retired files that need nothing more are done. */
  applyMarks(files: FileTables, merger: PartialMerger, durable: number): void {
    for (const f of files.open.values()) if (f.watermark.advance(durable)) this.dirty = true;
    for (const [serial, f] of files.retired) {
      if (f.watermark.advance(durable)) this.dirty = true;
      if (!f.watermark.waiting && !merger.pinned(serial)) {
        files.retired.delete(serial);
        this.markDone(f);
      }
    }
  }

  /** Persists the checkpoints if anything moved or grew; a failure is logged and tried again next time. */
  save(files: FileTables): void {
    if (!this.dirty && !this.grown(files)) return;
    this.dirty = false;
    const out: FileCheckpoint[] = [];
    const ids = new Set<string>();
    for (const f of [...files.open.values(), ...files.retired.values()]) {
      f.updateFingerprint();
      const cp: FileCheckpoint = { dev: f.dev, ino: f.ino, fpLen: f.fp.fpLen, fpHash: f.fp.fpHash, path: f.livePath, offset: f.watermark.checkpoint, size: f.size };
      if (f.watermark.streams) cp.streams = f.watermark.streams;
      // A retired file whose inode an open one has now is kept (its .gz may still be read after a
      // restart); only one with the same head too is left out: the open one wins.
      const id = checkpointIdentity(cp);
      if (ids.has(id)) continue;
      ids.add(id);
      out.push(cp);
      this.savedSizes.set(f, f.size);
    }
    // Until the first scan of a readable root, checkpoints not matched yet are kept as they were.
    for (const [id, cp] of this.unclaimed) if (!ids.has(id)) out.push(cp);
    for (const { cp } of this.recentDone()) out.push(cp);
    try {
      this.onSaving?.();
      this.storage.save({ files: out, savedAt: this.lookedUntil ?? this.clock.now() });
      this.counters.checkpointWrites++;
      if (this.health.failingSince !== null) this.log.info("checkpoints written again", { path: this.storage.path });
      this.health.failingSince = null;
      this.health.lastError = null;
    } catch (err) {
      this.dirty = true;
      this.counters.checkpointWriteErrors++;
      this.health.failingSince ??= this.clock.now();
      this.health.lastError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.log.error("cannot write checkpoints", { path: this.storage.path, error: (err as Error).message });
    }
  }

  /** Whether a followed file is larger than in the last save (the sizes a scan or a read saw). */
  private grown(files: FileTables): boolean {
    for (const f of files.open.values()) if (f.size > (this.savedSizes.get(f) ?? 0)) return true;
    return false;
  }

  /**
   * Done files within the retention, the newest in reading order per live path (older ones dropped:
   * the kubelet deletes the oldest files first), oldest first as they are saved. Never fewer than the
   * rotated files still on disk — one forgotten while its file (or .gz) is there is read again whole
   * after a restart, with every newer file of its container (docs/source.md, "Done files").
   */
  private recentDone(): Done[] {
    const now = this.clock.now();
    const perPath = new Map<string, { n: number; keep: number }>();
    const newestFirst = [...this.done.entries()].sort((a, b) => b[1].rank - a[1].rank || b[1].at - a[1].at);
    const kept: Done[] = [];
    for (const [id, d] of newestFirst) {
      let seen = perPath.get(d.cp.path);
      if (!seen) perPath.set(d.cp.path, (seen = { n: 0, keep: Math.max(DONE_PER_PATH, this.rotatedOnDisk(d.cp.path) + DONE_BEYOND_ROTATED) }));
      seen.n++;
      if (now - d.at > DONE_RETENTION_MS || seen.n > seen.keep) this.done.delete(id);
      else kept.push(d);
    }
    return kept.reverse();
  }
}
