// The files the source follows, indexed by serial (round-robin order), live path and device:inode,
// and their life: tracked on sight, drained once no live path names them, deleted, skipped, retired
// (closed, but still holding a checkpoint the ring has not made durable), forgotten.
import type { Fingerprint } from "./fingerprint.ts";
import type { ResumeStreams } from "./types.ts";
import { LineReader } from "./line-reader.ts";
import type { PartialMerger } from "./partial.ts";
import type { PodLogPath } from "./paths.ts";
import { containerKey } from "./paths.ts";
import { basename } from "node:path";
import { checkpointKey } from "./checkpoints.ts";
import { ROTATED_NAME } from "./rotated.ts";
import { type TailEvents, TailedFile } from "./tailed-file.ts";
import type { SourceConfig, SourceParts } from "./context.ts";

export interface TrackInit {
  path: string;
  livePath: string;
  parsed: PodLogPath;
  fd: number;
  mem: Uint8Array | null;
  dev: number;
  ino: number;
  size: number;
  start: number;
  /** Where each stream stood at `start` (a checkpoint that says), else absent. */
  streams?: ResumeStreams;
  fp: Fingerprint;
}

/** Enough for kubelet's 5 files per container and then some. */
const HISTORY_PER_CONTAINER = 16;

export class FileSet {
  /** Open files (active or draining), in round-robin order. */
  readonly open = new Map<string, TailedFile>();
  /** Live path → the open file it names. */
  readonly byPath = new Map<string, TailedFile>();
  /** device:inode → open file (one file is read once, however many paths link to it). */
  readonly byInode = new Map<string, TailedFile>();
  /** Closed files whose checkpoints must survive: marks not durable yet, or a pending line's head. */
  readonly retired = new Map<string, TailedFile>();
  /** Per container instance: the files we opened (device:inode → head fingerprint), to recognise them rotated. */
  readonly history = new Map<string, Map<string, Fingerprint>>();
  /** Per container instance: reading orders of files given up with bytes unread (gaps in its bytes). */
  private readonly gaps = new Map<string, number[]>();
  private serials = 0;
  private orders = 0;

  constructor(
    private readonly parts: SourceParts,
    private readonly config: SourceConfig,
    private readonly merger: PartialMerger,
    private readonly events: TailEvents,
    /** A file was found deleted: the deleted-bytes cap is looked at. */
    private readonly onDeleted: () => void,
  ) {}

  /** Starts following a file (not yet under any live path: the caller links those). */
  track(o: TrackInit): TailedFile {
    const { counters, clock, fs, checkpoints } = this.parts;
    const serial = `f${++this.serials}`;
    const key = containerKey(o.parsed);
    const reader = new LineReader(
      { partialKey: key, fileId: serial, format: this.config.format, maxLineBytes: this.config.maxLineBytes, merger: this.merger, counters },
      o.start,
      o.streams ?? null,
    );
    const info = { ...o.parsed, id: `${checkpointKey(o.dev, o.ino)}:${serial}`, path: o.path, firstSeenAt: clock.now() };
    const f = new TailedFile(
      { serial, info, livePath: o.livePath, containerKey: key, fd: o.fd, mem: o.mem, dev: o.dev, ino: o.ino, size: o.size, start: o.start, streams: o.streams ?? null, fp: o.fp, order: this.nextOrder(), reader },
      fs,
      this.events,
    );
    this.open.set(serial, f);
    this.remember(f);
    this.parts.output.opened?.(f.info);
    counters.filesAdded++;
    counters.filesWatched = this.open.size;
    checkpoints.markDirty();
    return f;
  }

  /** The next place in reading order: a file opened now, or one found read to its end without opening it. */
  nextOrder(): number {
    return ++this.orders;
  }

  /** `path` names `f` (its first live path, or another link to it). */
  link(path: string, f: TailedFile): void {
    f.paths.add(path);
    this.byPath.set(path, f);
  }

  /** `path` no longer names `f`; once no path does, `f` is drained to its end through its descriptor. */
  unlink(f: TailedFile, path: string): void {
    f.paths.delete(path);
    if (this.byPath.get(path) === f) this.byPath.delete(path);
    if (f.paths.size > 0 || !f.startDraining(this.parts.clock.now())) return;
    if (f.links() === 0) this.markDeleted(f);
    else this.parts.counters.filesRotated++;
  }

  /** Live paths under `prefix` that are not in `present` (null: none is) no longer name their files. */
  unlinkUnder(prefix: string, present: Set<string> | null): void {
    for (const [path, f] of this.byPath) if (path.startsWith(prefix) && !present?.has(path)) this.unlink(f, path);
  }

  /** Live paths not in `seen` no longer name their files. */
  unlinkMissing(seen: Set<string>): void {
    for (const [path, f] of this.byPath) if (!seen.has(path)) this.unlink(f, path);
  }

  /** Its last link is gone: counted once, then the deleted-bytes cap is looked at. */
  markDeleted(f: TailedFile): void {
    if (f.deleted) return;
    f.deleted = true;
    f.deletedAt = this.parts.clock.now();
    this.parts.counters.filesDeleted++;
    this.onDeleted();
  }

  /** Closed for good (read to its end, or given up); its checkpoint stays while marks or a pending line need it. */
  retire(f: TailedFile): void {
    this.forget(f);
    if (f.watermark.waiting || this.merger.pinned(f.serial)) this.retired.set(f.serial, f);
    else this.parts.checkpoints.markDone(f);
  }

  /** Closes a file and removes it from every index. */
  forget(f: TailedFile): void {
    f.gone = true;
    f.updateFingerprint();
    this.remember(f);
    f.close();
    this.open.delete(f.serial);
    if (this.byInode.get(f.inodeKey) === f) this.byInode.delete(f.inodeKey);
    for (const p of f.paths) if (this.byPath.get(p) === f) this.byPath.delete(p);
    const { counters, checkpoints, output } = this.parts;
    counters.filesWatched = this.open.size;
    checkpoints.markDirty();
    output.closed?.(f.info);
    for (const o of this.open.values()) if (o.containerKey === f.containerKey) o.dirty = true;
    this.parts.notify();
  }

  /** An open or retired file by serial. */
  bySerial(serial: string): TailedFile | undefined {
    return this.open.get(serial) ?? this.retired.get(serial);
  }

  /** The oldest unfinished file of each container instance: the one to read. */
  heads(): Map<string, TailedFile> {
    const heads = new Map<string, TailedFile>();
    for (const f of this.open.values()) {
      const h = heads.get(f.containerKey);
      if (!h || f.order < h.order) heads.set(f.containerKey, f);
    }
    return heads;
  }

  /**
   * Puts the rotated files of a container read after downtime in rotation order (by the stamp in their
   * names), before its other files: the catch-up and the first scan open them in two passes.
   */
  orderByRotation(key: string): void {
    this.#reorder(key, "after the rotated");
  }

  /**
   * Puts the files of a container opened under a rotated name in rotation order among their own
   * reading slots, the others left where they are: a file found by a second listing (compressed
   * while a scan opened its siblings) must not be read after a newer one.
   */
  orderRotatedAmongThemselves(key: string): void {
    this.#reorder(key, "kept");
  }

  /** Gives the container's reading slots to its rotated files in stamp order; its other files are put after them, or keep theirs. */
  #reorder(key: string, others: "after the rotated" | "kept"): void {
    const stampOf = (f: TailedFile) => ROTATED_NAME.exec(basename(f.info.path))?.[2] ?? null;
    const mine = [...this.open.values()].filter((f) => f.containerKey === key && (others === "after the rotated" || stampOf(f) !== null)).sort((a, b) => a.order - b.order);
    if (mine.length < 2) return;
    const rotated = mine.filter((f) => stampOf(f) !== null).sort((a, b) => ((stampOf(a) as string) < (stampOf(b) as string) ? -1 : 1));
    const rest = mine.filter((f) => stampOf(f) === null);
    const orders = mine.map((f) => f.order); // the same slots, given out again in the new order
    [...rotated, ...rest].forEach((f, i) => (f.order = orders[i] as number));
  }

  /** `f` is given up with bytes unread: its container's bytes have a gap where it was read. */
  markGap(f: TailedFile): void {
    this.gaps.set(f.containerKey, [...(this.gaps.get(f.containerKey) ?? []), f.order]);
  }

  /**
   * Whether reading `f` passes a gap of its container: a line pending from before it must not take
   * fragments from after it (they may be another line's). Each gap is passed once.
   */
  passGap(f: TailedFile): boolean {
    const gaps = this.gaps.get(f.containerKey);
    if (!gaps) return false;
    const ahead = gaps.filter((order) => order >= f.order);
    if (ahead.length === gaps.length) return false;
    if (ahead.length === 0) this.gaps.delete(f.containerKey);
    else this.gaps.set(f.containerKey, ahead);
    return true;
  }

  /** An open file of this container instance, if any. */
  openOf(key: string | undefined): TailedFile | undefined {
    if (key === undefined) return undefined;
    for (const f of this.open.values()) if (f.containerKey === key && !f.gone) return f;
    return undefined;
  }

  /**
   * Forgets the rotation history of containers that have neither an open file nor any file on disk
   * (`present`: the containers a full scan saw), and bounds the rest. A container between a rotation
   * and its runtime's reopen has no open file, but its rotated files must still be recognised.
   */
  pruneHistory(present: ReadonlySet<string>): void {
    const keep = new Set(present);
    for (const f of this.open.values()) keep.add(f.containerKey);
    for (const key of this.gaps.keys()) if (!keep.has(key)) this.gaps.delete(key);
    for (const [key, h] of this.history) {
      if (!keep.has(key)) this.history.delete(key);
      else while (h.size > HISTORY_PER_CONTAINER) h.delete(h.keys().next().value as string);
    }
  }

  /** Records a file's fingerprint in its container's history. */
  remember(f: TailedFile): void {
    let h = this.history.get(f.containerKey);
    if (!h) this.history.set(f.containerKey, (h = new Map()));
    h.set(f.inodeKey, f.fp);
  }

  closeAll(): void {
    for (const f of this.open.values()) f.close();
    this.open.clear();
    this.byPath.clear();
    this.byInode.clear();
  }
}
