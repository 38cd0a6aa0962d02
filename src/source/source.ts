// The source stage (SPEC §2.1): finds container log files, follows them through their file
// descriptors, turns their bytes into merged lines, and hands them to the next stage.
// It keeps each file's checkpoint as the watermark of SPEC §4: a file's offset only becomes its
// checkpoint once the ring says the records read before it are durable, and never passes the
// first fragment of a line still pending (in this file or, across a rotation, in its successor).
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import type { Config } from "../config/schema.ts";
import { type Logger, log as rootLog } from "../log.ts";
import { CheckpointStore, checkpointKey, type FileCheckpoint, fingerprint } from "./checkpoints.ts";
import { compileGlobs } from "./glob.ts";
import { LineBatch, LineReader, type LineReaderCounters } from "./line-reader.ts";
import { PartialMerger } from "./partial.ts";
import { parsePodLogPath, type PodLogPath } from "./paths.ts";
import { readGzip, type RotatedSibling, rotatedSiblings } from "./rotated.ts";
import { DirWatcher } from "./watcher.ts";

export interface SourceFileInfo extends PodLogPath {
  /** device:inode */
  id: string;
  path: string;
  /** When the collector first saw this file (ms): the start of its metadata wait. */
  firstSeenAt: number;
}

/** read: read and emit lines; hold: keep it open, do not read yet; skip: never read it. */
export type FileDecision = "read" | "hold" | "skip";

/** What the source needs from the rest of the pipeline. */
export interface SourceOutput {
  decide(file: SourceFileInfo, now: number): FileDecision;
  /**
   * Takes a file's lines; resolves (after any backpressure) with the ring sequence number that covers them.
   * Their byte ranges point into the source's read buffer, which is read into again once this resolves.
   */
  emit(file: SourceFileInfo, lines: LineBatch): Promise<number>;
  /** The file is closed for good (drained, given up or skipped). */
  closed?(file: SourceFileInfo): void;
}

export interface SourceOptions {
  config: Config["source"];
  dataDir: string;
  ownPodUid: string | null;
  output: SourceOutput;
  /** The highest ring sequence number known durable. */
  durableSeq: () => number;
  log?: Logger;
  now?: () => number;
  /** Called right before each checkpoint save (the pod metadata snapshot is written there); a throw skips the save. */
  onCheckpointsSaving?: () => void;
}

/** Plain numbers for /status and /metrics: `*Total`-like counters only grow; the rest are gauges. */
export interface SourceCounters extends LineReaderCounters {
  bytesRead: number;
  filesAdded: number;
  filesRotated: number;
  filesTruncated: number;
  filesDeleted: number;
  filesSkipped: number;
  /** Deleted-but-open files closed unread because of maxDeletedHeldBytes. */
  filesGivenUp: number;
  /** Unread bytes of given-up files. */
  bytesLost: number;
  /** Rotated files (plain or .gz) read after downtime to finish a checkpointed file. */
  filesRecovered: number;
  /** Files created and rotated before we opened them, read under their rotated name. */
  filesMissedRotated: number;
  partialFlushTimeouts: number;
  watchdogReopens: number;
  watcherErrors: number;
  checkpointWrites: number;
  checkpointsPruned: number;
  /** Times the reading loop or the scan timer woke up (idle cost). */
  wakeups: number;
  /** Gauges. */
  filesWatched: number;
  filesHeld: number;
  deletedHeldBytes: number;
  lagBytes: number;
}

interface Mark {
  seq: number;
  offset: number;
}

interface TailedFile {
  /** Unique per opened file (inodes are reused; this is not). */
  serial: string;
  info: SourceFileInfo;
  /** The live name (`…/N.log`) this file had: checkpoint path and rotated-sibling lookup. */
  livePath: string;
  /** Live paths naming it now (more than one through symlinks). */
  paths: Set<string>;
  partialKey: string;
  /** Read through this descriptor, or from `mem` (a decompressed .gz after downtime). */
  fd: number;
  mem: Uint8Array | null;
  dev: number;
  ino: number;
  reader: LineReader;
  /** Next byte to read. */
  readPos: number;
  /** Size at the last fstat. */
  size: number;
  checkpoint: number;
  marks: Mark[];
  /** draining: rotated away or deleted; read to its end, then closed. */
  state: "active" | "draining";
  /** Will not grow again: closed at its end without waiting for a successor. */
  final: boolean;
  drainingSince: number;
  deleted: boolean;
  deletedAt: number;
  held: boolean;
  /** Waits for an older file of the same container (its rotated predecessor) to be drained. */
  blocked: boolean;
  /** There may be bytes to read (an event, a scan, or the last read filled a slice). */
  dirty: boolean;
  /** Reading order among files of one container instance (older first). */
  order: number;
  fpLen: number;
  fpHash: number;
  stuckSince: number | null;
  stuckAtPos: number;
  /** Test hook: the reader believes it is at its end (the peers' "stops shipping" bug). */
  stalled: boolean;
  gone: boolean;
  /** Started at its end (readFrom: end, present at start, no checkpoint). */
  fromEnd: boolean;
}

const FINGERPRINT_BYTES = 1024;
const ROTATED_NAME = /^(\d+\.log)\.(\d{8}-\d{6})(\.gz)?$/;
/** Enough for kubelet's 5 files per container and then some. */
const HISTORY_PER_CONTAINER = 16;
type RotatedClass = "history" | "missed" | "ignored";
/** A rotated file is closed at its end once its successor has bytes, or after this long. */
const DRAIN_GRACE_MS = 5000;
/** While files are held, draining or partials pending, the loop wakes this often. */
const TICK_MS = 1000;
/**
 * After waking from idle, the loop waits this long before reading, so that the many small writes
 * of busy containers are read together: a turn costs an fstat, a read and a ring write per file
 * that grew, and at 20 k lines/s from 50 files (each writing 100 times a second) reading every
 * write as it came cost ~14 CPU-s per M lines, mostly those syscalls (latency scenario). Vector's
 * file source sleeps between polls for the same reason. Adds at most this much to latency; a
 * backlog is read back to back, without it.
 */
const READ_COALESCE_MS = 50;

export class Source {
  readonly counters: SourceCounters = {
    linesRead: 0,
    linesMalformed: 0,
    linesTruncated: 0,
    bytesRead: 0,
    filesAdded: 0,
    filesRotated: 0,
    filesTruncated: 0,
    filesDeleted: 0,
    filesSkipped: 0,
    filesGivenUp: 0,
    bytesLost: 0,
    filesRecovered: 0,
    filesMissedRotated: 0,
    partialFlushTimeouts: 0,
    watchdogReopens: 0,
    watcherErrors: 0,
    checkpointWrites: 0,
    checkpointsPruned: 0,
    wakeups: 0,
    filesWatched: 0,
    filesHeld: 0,
    deletedHeldBytes: 0,
    lagBytes: 0,
  };
  /** Open files (active or draining), in round-robin order. */
  private readonly files = new Map<string, TailedFile>();
  /** Live path → the open file it names. */
  private readonly byPath = new Map<string, TailedFile>();
  /** device:inode → open file (one file is read once, however many paths link to it). */
  private readonly byInode = new Map<string, TailedFile>();
  /** Closed files whose checkpoints must survive: marks not durable yet, or a pending line's head. */
  private readonly retired = new Map<string, TailedFile>();
  /** Live path → device:inode of a file of a pod that is not selected. */
  private readonly skipped = new Map<string, string>();
  /** Rotated names already looked at: history (read or older than us), missed (read now), ignored. */
  private readonly classified = new Map<string, RotatedClass>();
  /** Per container instance: the files we opened (device:inode → head fingerprint), to recognise them rotated. */
  private readonly history = new Map<string, Map<string, { fpLen: number; fpHash: number }>>();
  /** Every path the last scan saw (watch events on them need no scan). */
  private known = new Set<string>();
  private readonly merger: PartialMerger;
  /** The lines of one slice, handed to the router (reused: ranges point into readBuf). */
  private readonly lines = new LineBatch();
  private readonly store: CheckpointStore;
  /** Checkpoints loaded at start and not yet matched to a file. */
  private unclaimed = new Map<string, FileCheckpoint>();
  private prunedAfterScan = false;
  /** Containers (partial keys) finished from rotated files at start: their live file starts at 0. */
  private readonly recoveredKeys = new Set<string>();
  private readonly include: (p: string) => boolean;
  private readonly exclude: (p: string) => boolean;
  private readonly excludedContainers: Set<string>;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly readBuf: Uint8Array;
  private watcher: DirWatcher | null = null;
  private scanTimer: ReturnType<typeof setInterval> | null = null;
  private tickTimer: ReturnType<typeof setTimeout> | null = null;
  /** Ends the wait of READ_COALESCE_MS early (stop). */
  private cutCoalesce: (() => void) | null = null;
  private wake: (() => void) | null = null;
  private woken = false;
  private stopping = false;
  private closed = false;
  private emitting = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private checkpointsDirty = false;
  private firstScanDone = false;
  private serials = 0;
  private orders = 0;

  constructor(private readonly opts: SourceOptions) {
    const c = opts.config;
    this.merger = new PartialMerger(c.maxLineBytes);
    this.store = new CheckpointStore(opts.dataDir);
    this.include = compileGlobs(c.include);
    this.exclude = compileGlobs(c.exclude);
    this.excludedContainers = new Set(c.excludeContainers);
    this.log = (opts.log ?? rootLog).child({ stage: "source" });
    this.now = opts.now ?? Date.now;
    this.readBuf = new Uint8Array(c.readSliceBytes);
  }

  /** Loads checkpoints, finishes files rotated while we were down, scans, starts the watcher and the loop. */
  start(): void {
    this.unclaimed = this.store.load((msg) => this.log.warn(msg));
    this.recoverRotated(false);
    this.scan(true);
    this.firstScanDone = true;
    this.startWatcher();
    this.scanTimer = setInterval(() => {
      this.counters.wakeups++;
      this.scan(false);
    }, this.opts.config.scanIntervalMs);
    this.pumpDone = this.pump();
  }

  get ready(): boolean {
    return this.firstScanDone;
  }

  /** Something changed (a file grew, metadata arrived): run a turn soon. */
  notify(): void {
    this.woken = true;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** The ring made everything up to `seq` durable: advance checkpoints and persist them. */
  onDurable(seq: number): void {
    if (this.closed) return; // the ring's last sync after close() must not rewrite checkpoints without the files
    this.applyMarks(seq);
    this.saveCheckpoints();
  }

  /** Stops reading; keeps checkpoints of what is durable now. The caller syncs the ring first. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.notify();
    this.cutCoalesce?.();
    this.watcher?.close();
    if (this.scanTimer) clearInterval(this.scanTimer);
    if (this.tickTimer) clearTimeout(this.tickTimer);
    // Resolves once the loop is out. If it waits on a full ring, it waits until the ring takes the
    // slice or closes (the caller bounds that with its shutdown deadline); lines of a slice the
    // ring never took are not covered by any checkpoint, so they are read again after a restart.
    await this.pumpDone;
  }

  /** After the final ring sync: persist checkpoints and close every descriptor. */
  close(): void {
    if (this.closed) return;
    this.applyMarks(this.opts.durableSeq());
    this.checkpointsDirty = true;
    this.saveCheckpoints();
    this.closed = true;
    for (const f of this.files.values()) this.closeFd(f);
    this.files.clear();
    this.byPath.clear();
    this.byInode.clear();
  }

  /** Per-file data for /status: checkpoint offset, read position, size, lag (size − checkpoint). */
  fileStatus(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const f of this.files.values()) {
      out.push({
        path: f.info.path,
        namespace: f.info.namespace,
        pod: f.info.podName,
        podUid: f.info.podUid,
        container: f.info.container,
        restart: f.info.restart,
        state: f.held ? "held" : f.blocked ? "waiting-predecessor" : f.state,
        deleted: f.deleted,
        offset: f.checkpoint,
        readOffset: f.readPos,
        size: f.size,
        lag: Math.max(0, f.size - f.checkpoint),
      });
    }
    return out;
  }

  get filesWatched(): number {
    return this.files.size;
  }

  /**
   * Test hook: makes the reader of the file at `path` believe it is at its end, as the peers' tailers
   * do when they "silently stop shipping". The watchdog must notice and reopen it.
   */
  simulateStall(path: string): boolean {
    const f = this.byPath.get(path);
    if (!f) return false;
    f.stalled = true;
    return true;
  }

  /** Test hook: the watcher's asynchronous error (e.g. ENOSPC: out of inotify watches). */
  simulateWatcherError(err: Error): void {
    this.watcher?.emitError(err);
  }

  // ---- discovery -------------------------------------------------------------------------

  private startWatcher(): void {
    if (this.watcher || this.stopping) return;
    const w = new DirWatcher(this.opts.config.root, {
      onEvent: (kind, name) => this.onWatchEvent(kind, name),
      onError: (err, first) => {
        // Out of inotify watches (ENOSPC) arrives as an asynchronous error; unhandled it kills the process.
        this.counters.watcherErrors++;
        if (first) {
          this.log.warn("file watcher failed; relying on the reconciliation scan from now on", {
            error: err.message,
            scanIntervalMs: this.opts.config.scanIntervalMs,
          });
        }
      },
    });
    if (w.start()) this.watcher = w;
    else if (w.failed) this.watcher = w; // failed for good: do not retry on every scan
  }

  private onWatchEvent(kind: "rename" | "change", name: string): void {
    if (this.stopping) return;
    const path = join(this.opts.config.root, name);
    const f = this.byPath.get(path);
    if (f) f.dirty = true;
    if (kind === "rename" || (!f && !this.known.has(path))) {
      // A created, renamed or removed path may be a new file, a rotation or a deletion: look at
      // its container dir (or pod dir) now — a file must be open before it can be rotated or
      // deleted. Only that dir is listed, so pod churn and rotations cost no full scans.
      const parts = name.split("/");
      const podDir = parts[0];
      if (!podDir) return;
      if (parts.length >= 2) this.scanContainer(podDir, parts[1] as string, false, null);
      else this.scanPodDir(podDir);
    }
    this.notify();
  }

  /** A pod dir appeared or vanished: its containers are looked at, or its files drained. */
  private scanPodDir(podDir: string): void {
    const dir = join(this.opts.config.root, podDir);
    let containers: string[];
    try {
      containers = readdirSync(dir);
    } catch {
      this.reconcileUnder(dir + "/", null); // removed: drain what it had through the descriptors
      return;
    }
    for (const c of containers) this.scanContainer(podDir, c, false, null);
  }

  /** Live paths under `prefix` that are not in `present` (null: none is) no longer name their files. */
  private reconcileUnder(prefix: string, present: Set<string> | null): void {
    for (const [path, f] of this.byPath) {
      if (path.startsWith(prefix) && !present?.has(path)) this.unlinkPath(f, path);
    }
    for (const path of this.skipped.keys()) if (path.startsWith(prefix) && !present?.has(path)) this.skipped.delete(path);
  }

  /** Reconciliation: find new files, notice rotated and deleted ones, run the watchdog and the caps. */
  private scan(initial: boolean): void {
    if (this.stopping) return;
    const root = this.opts.config.root;
    let podDirs: string[];
    try {
      podDirs = readdirSync(root);
    } catch (err) {
      // Files already open are still read through their descriptors (deletions show as nlink 0);
      // nothing is concluded from a root we cannot list.
      this.log.warn("log root is not readable; will retry", { root, error: (err as NodeJS.ErrnoException).code });
      return;
    }
    if (!this.watcher) this.startWatcher();
    const seen = new Set<string>();
    for (const podDir of podDirs) {
      let containers: string[];
      try {
        containers = readdirSync(join(root, podDir));
      } catch {
        continue; // not a directory, or removed meanwhile
      }
      for (const container of containers) this.scanContainer(podDir, container, initial, seen);
    }
    this.known = seen;
    for (const path of this.classified.keys()) if (!seen.has(path)) this.classified.delete(path);
    const openKeys = new Set<string>();
    for (const f of this.files.values()) openKeys.add(f.partialKey);
    for (const [key, h] of this.history) {
      if (!openKeys.has(key)) this.history.delete(key);
      else while (h.size > HISTORY_PER_CONTAINER) h.delete(h.keys().next().value as string);
    }
    this.markMissing(seen);
    if (!this.prunedAfterScan) {
      // Files rotated (or compressed) between the first recovery pass and this scan.
      if (this.unclaimed.size > 0) this.recoverRotated(true);
      // Checkpoints that matched no file (live or rotated) at the first readable scan are of files gone for good.
      this.prunedAfterScan = true;
      if (this.unclaimed.size > 0) {
        this.counters.checkpointsPruned += this.unclaimed.size;
        this.log.info("forgetting checkpoints of files that no longer exist", { count: this.unclaimed.size });
        // A file deleted while only this process held it open (e.g. rotated away during an outage,
        // then a crash) took its unread bytes with it: count them (at least size − offset).
        for (const cp of this.unclaimed.values()) {
          const lost = (cp.size ?? 0) - cp.offset;
          if (lost <= 0) continue;
          this.counters.bytesLost += lost;
          this.counters.filesGivenUp++;
          this.log.warn("a file was deleted before it was read to its end; its unread bytes are lost", {
            path: cp.path,
            bytesLost: lost,
          });
        }
        this.unclaimed.clear();
        this.checkpointsDirty = true;
      }
    }
    const now = this.now();
    this.refreshSizes(now);
    this.enforceDeletedCap(now);
    this.watchdog(now);
    for (const f of this.files.values()) f.dirty = true;
    this.applyMarks(this.opts.durableSeq());
    this.saveCheckpoints();
    this.notify();
  }

  /**
   * One container dir: rotated siblings first (a file created and rotated between two looks is
   * found under its rotated name and read), then the live `N.log` files.
   */
  private scanContainer(podDir: string, container: string, initial: boolean, seen: Set<string> | null): void {
    const dir = join(this.opts.config.root, podDir, container);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      if (!seen) this.reconcileUnder(dir + "/", null);
      return;
    }
    const live: Array<[string, PodLogPath]> = [];
    const rotated: Array<{ path: string; liveRel: string; stamp: string; gz: boolean }> = [];
    for (const name of names) {
      const rel = `${podDir}/${container}/${name}`;
      const path = join(dir, name);
      seen?.add(path);
      const m = ROTATED_NAME.exec(name);
      if (m) {
        if (!this.classified.has(path)) rotated.push({ path, liveRel: `${podDir}/${container}/${m[1]}`, stamp: m[2] as string, gz: m[3] !== undefined });
        continue;
      }
      const parsed = this.accept(rel);
      if (parsed) live.push([path, parsed]);
    }
    // Oldest first (a plain file before its .gz): files found missed are read in rotation order.
    rotated.sort((a, b) => (a.stamp === b.stamp ? Number(a.gz) - Number(b.gz) : a.stamp < b.stamp ? -1 : 1));
    for (const r of rotated) this.classifyRotated(r.liveRel, r.path, r.gz, initial);
    if (!seen) this.reconcileUnder(dir + "/", new Set(names.map((n) => join(dir, n))));
    for (const [path, parsed] of live) this.discover(path, parsed, initial);
  }

  /**
   * A rotated name we have not looked at yet. If it is a file we followed (by inode; a .gz by the
   * name it was compressed from, else by the fingerprint of its head), nothing to do. Present at
   * start: history, not read (SPEC: rotated files are not tailed). Otherwise it was created and
   * rotated while we were not looking: read it whole, before the live file of its container.
   */
  private classifyRotated(liveRel: string, path: string, gz: boolean, initial: boolean): void {
    const parsed = this.accept(liveRel);
    if (!parsed) {
      this.classified.set(path, "ignored");
      return;
    }
    if (initial) {
      this.classified.set(path, "history");
      return;
    }
    if (this.skipped.has(join(this.opts.config.root, liveRel))) {
      this.classified.set(path, "ignored"); // a pod that is not selected: never read
      return;
    }
    const key = partialKeyOf(parsed);
    const history = this.history.get(key);
    let mem: Uint8Array | null = null;
    if (gz) {
      const plain = path.slice(0, -3);
      if (this.classified.has(plain)) {
        this.classified.set(path, this.classified.get(plain) as RotatedClass);
        return;
      }
      mem = readGzip(path);
      if (!mem) return; // still being written, or damaged: look again at the next scan
      // Files of this container still open (a rotated one being drained) count too.
      for (const o of this.files.values()) {
        if (o.partialKey !== key || o.fd < 0) continue;
        this.updateFingerprint(o);
        history?.set(o.info.id, { fpLen: o.fpLen, fpHash: o.fpHash });
      }
      if (history && [...history.values()].some((h) => h.fpLen > 0 && headMatches(-1, mem, h.fpLen, h.fpHash))) {
        this.classified.set(path, "history");
        return;
      }
    } else {
      let st;
      try {
        st = statSync(path);
      } catch {
        return;
      }
      const id = checkpointKey(st.dev, st.ino);
      // Open: ours (the descriptor pins the inode). Closed: inodes are reused at once, so the head must match too.
      const closed = history?.get(id);
      if (this.byInode.has(id) || (closed && closed.fpLen > 0 && fileHeadMatches(path, closed.fpLen, closed.fpHash))) {
        this.classified.set(path, "history");
        return;
      }
    }
    this.classified.set(path, "missed");
    const f = this.openRotated(path, mem, join(this.opts.config.root, liveRel), parsed, null);
    if (!f) return;
    // A plain one may still take the runtime's last writes (before it reopens): it is closed like
    // any rotated file, once its successor has bytes.
    if (!mem) f.final = false;
    // Its reading order is right as it is: rotated names are classified (oldest first) before the
    // live files of the same listing are discovered, so every open file of its container is older
    // and the live file that replaced it is opened after it.
    this.counters.filesMissedRotated++;
    this.log.warn("a file was rotated before it was opened; reading it under its rotated name", { path });
  }

  /** The parsed path of a live log file we should follow, or null. */
  private accept(rel: string): PodLogPath | null {
    const parsed = parsePodLogPath(rel); // only `<n>.log`: never .gz, .tmp or rotated names
    if (!parsed || !this.include(rel) || this.exclude(rel)) return null;
    if (this.excludedContainers.has(parsed.container)) return null;
    if (this.opts.ownPodUid && parsed.podUid === this.opts.ownPodUid) return null;
    return parsed;
  }

  private discover(path: string, parsed: PodLogPath, initial: boolean): void {
    let st;
    try {
      st = statSync(path); // follows symlinks: one file is read once, whatever links to it
    } catch {
      return;
    }
    if (!st.isFile()) return;
    const id = checkpointKey(st.dev, st.ino);
    const known = this.byPath.get(path);
    if (known && known.info.id === id) return;
    if (this.skipped.get(path) === id) return;
    this.skipped.delete(path);
    if (known) this.unlinkPath(known, path); // the path names another file now: a rotation
    const alias = this.byInode.get(id);
    if (alias) {
      alias.paths.add(path);
      this.byPath.set(path, alias);
      return;
    }
    this.open(path, parsed, initial && !this.recoveredKeys.has(partialKeyOf(parsed)));
  }

  /** `path` no longer names `f`; once no path does, `f` is drained to its end through its descriptor. */
  private unlinkPath(f: TailedFile, path: string): void {
    f.paths.delete(path);
    if (this.byPath.get(path) === f) this.byPath.delete(path);
    if (f.paths.size === 0) this.startDraining(f);
  }

  private startDraining(f: TailedFile): void {
    if (f.state !== "active") return;
    f.state = "draining";
    f.drainingSince = this.now();
    f.dirty = true;
    let nlink = 1;
    try {
      nlink = fstatSync(f.fd).nlink;
    } catch {
      // closed meanwhile
    }
    if (nlink === 0) this.markDeleted(f);
    else this.counters.filesRotated++;
  }

  private markDeleted(f: TailedFile): void {
    if (f.deleted) return;
    f.deleted = true;
    f.deletedAt = this.now();
    this.counters.filesDeleted++;
    this.enforceDeletedCap(f.deletedAt);
  }

  private open(path: string, parsed: PodLogPath, initial: boolean): void {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      this.log.warn("cannot open log file", { path, error: (err as NodeJS.ErrnoException).code });
      return;
    }
    const st = fstatSync(fd);
    const id = checkpointKey(st.dev, st.ino);
    if (this.byInode.has(id)) {
      closeSync(fd); // raced with another path to the same file
      return;
    }
    let start = 0;
    let fpLen = 0;
    let fpHash = 0;
    let fromEnd = false;
    const saved = this.unclaimed.get(id);
    if (saved && headMatches(fd, null, saved.fpLen, saved.fpHash)) {
      this.unclaimed.delete(id);
      start = saved.offset <= st.size ? saved.offset : 0;
      fpLen = saved.fpLen;
      fpHash = saved.fpHash;
    } else if (initial && this.opts.config.readFrom === "end") {
      start = st.size;
      fromEnd = true;
    }
    const f = this.track({ path, livePath: path, parsed, fd, mem: null, dev: st.dev, ino: st.ino, size: st.size, start, fpLen, fpHash });
    f.fromEnd = fromEnd;
    f.paths.add(path);
    this.byPath.set(path, f);
    this.byInode.set(id, f);
    this.log.debug("following file", { path, offset: start });
  }

  private track(o: {
    path: string;
    livePath: string;
    parsed: PodLogPath;
    fd: number;
    mem: Uint8Array | null;
    dev: number;
    ino: number;
    size: number;
    start: number;
    fpLen: number;
    fpHash: number;
  }): TailedFile {
    const serial = `f${++this.serials}`;
    const partialKey = partialKeyOf(o.parsed);
    const f: TailedFile = {
      serial,
      info: { ...o.parsed, id: checkpointKey(o.dev, o.ino), path: o.path, firstSeenAt: this.now() },
      livePath: o.livePath,
      paths: new Set(),
      partialKey,
      fd: o.fd,
      mem: o.mem,
      dev: o.dev,
      ino: o.ino,
      reader: new LineReader(
        {
          partialKey,
          fileId: serial,
          format: this.opts.config.format,
          maxLineBytes: this.opts.config.maxLineBytes,
          merger: this.merger,
          counters: this.counters,
        },
        o.start,
      ),
      readPos: o.start,
      size: o.size,
      checkpoint: o.start,
      marks: [],
      state: "active",
      final: false,
      drainingSince: 0,
      deleted: false,
      deletedAt: 0,
      held: false,
      blocked: false,
      dirty: true,
      order: ++this.orders,
      fpLen: o.fpLen,
      fpHash: o.fpHash,
      stuckSince: null,
      stuckAtPos: 0,
      stalled: false,
      gone: false,
      fromEnd: false,
    };
    this.files.set(serial, f);
    let history = this.history.get(partialKey);
    if (!history) this.history.set(partialKey, (history = new Map()));
    history.set(f.info.id, { fpLen: o.fpLen, fpHash: o.fpHash });
    this.counters.filesAdded++;
    this.counters.filesWatched = this.files.size;
    this.checkpointsDirty = true;
    return f;
  }

  /** Live paths that vanished: their files are drained to their end through the descriptor. */
  private markMissing(seen: Set<string>): void {
    for (const [path, f] of this.byPath) if (!seen.has(path)) this.unlinkPath(f, path);
    for (const path of this.skipped.keys()) if (!seen.has(path)) this.skipped.delete(path);
  }

  /**
   * After downtime: a checkpointed file that is no longer at its path was rotated while we were
   * away. Find it among its rotated siblings (plain by inode and head, or compressed by the head of
   * its content), read its remainder, then every newer rotated sibling whole, before the live file.
   * Runs before the first scan, and again after it for checkpoints the scan did not claim: the
   * kubelet may rotate or compress while we start.
   */
  private recoverRotated(afterScan: boolean): void {
    const root = this.opts.config.root;
    const byLive = new Map<string, FileCheckpoint[]>();
    for (const cp of this.unclaimed.values()) {
      try {
        const st = statSync(cp.path);
        // Still live (same inode, same head; inodes are reused quickly): the scan resumes it.
        if (st.dev === cp.dev && st.ino === cp.ino && fileHeadMatches(cp.path, cp.fpLen, cp.fpHash)) continue;
      } catch {
        // gone from its path
      }
      const list = byLive.get(cp.path) ?? [];
      list.push(cp);
      byLive.set(cp.path, list);
    }
    for (const [livePath, cps] of byLive) {
      const parsed = this.accept(relative(root, livePath));
      if (!parsed) continue;
      const siblings = rotatedSiblings(livePath);
      if (siblings.length === 0) continue;
      const gzCache = new Map<string, Uint8Array | null>();
      const content = (path: string) => {
        if (!gzCache.has(path)) gzCache.set(path, readGzip(path));
        return gzCache.get(path) ?? null;
      };
      const plainMatches = (path: string | null, cp: FileCheckpoint) => {
        if (!path) return false;
        try {
          const st = statSync(path);
          return st.dev === cp.dev && st.ino === cp.ino && fileHeadMatches(path, cp.fpLen, cp.fpHash);
        } catch {
          return false;
        }
      };
      const gzMatches = (path: string | null, cp: FileCheckpoint) => {
        const bytes = path ? content(path) : null;
        return bytes !== null && headMatches(-1, bytes, cp.fpLen, cp.fpHash);
      };
      const plan: Array<{ index: number; cp: FileCheckpoint | null }> = [];
      for (const cp of cps) {
        const index = siblings.findIndex((sib) => plainMatches(sib.plain, cp) || gzMatches(sib.gz, cp));
        if (index >= 0 && !plan.some((p) => p.index === index)) plan.push({ index, cp });
      }
      if (plan.length === 0) continue;
      // Newer rotated files than the newest one we knew were written entirely during the downtime.
      const newest = Math.max(...plan.map((p) => p.index));
      for (let i = newest + 1; i < siblings.length; i++) plan.push({ index: i, cp: null });
      plan.sort((a, b) => a.index - b.index);
      const key = partialKeyOf(parsed);
      const opened: TailedFile[] = [];
      for (const { index, cp } of plan) {
        const sib = siblings[index] as RotatedSibling;
        if (cp) this.unclaimed.delete(checkpointKey(cp.dev, cp.ino));
        // The plain file first; if the kubelet compressed it meanwhile, its .gz (listed again).
        let f: TailedFile | null = null;
        if (sib.plain && (!cp || plainMatches(sib.plain, cp))) f = this.openRotated(sib.plain, null, livePath, parsed, cp);
        if (!f) {
          const gz = sib.gz ?? rotatedSiblings(livePath).find((x) => x.stamp === sib.stamp)?.gz ?? null;
          if (gz && (!cp || gzMatches(gz, cp))) f = this.openRotated(gz, content(gz), livePath, parsed, cp);
        }
        if (!f) continue;
        opened.push(f);
        this.counters.filesRecovered++;
        this.recoveredKeys.add(key);
        this.log.info("reading a file rotated during downtime", { path: f.info.path, offset: f.readPos, from: livePath });
      }
      if (afterScan && opened.length > 0) {
        // The scan already opened this container's live file: read the recovered ones before it,
        // and that file from its first byte (it came after them), whatever readFrom says.
        let min = Number.POSITIVE_INFINITY;
        for (const o of this.files.values()) {
          if (o.partialKey !== key || opened.includes(o)) continue;
          min = Math.min(min, o.order);
          if (o.fromEnd) {
            o.fromEnd = false;
            o.readPos = 0;
            o.checkpoint = 0;
            o.reader.reset(0);
          }
        }
        if (min !== Number.POSITIVE_INFINITY) opened.forEach((f, i) => (f.order = min - 1 + (i + 1) / (opened.length + 1)));
      }
    }
  }

  private openRotated(
    path: string,
    mem: Uint8Array | null,
    livePath: string,
    parsed: PodLogPath,
    cp: FileCheckpoint | null,
  ): TailedFile | null {
    let fd = -1;
    let dev: number;
    let ino: number;
    let size: number;
    if (mem) {
      size = mem.length;
      const st = statSync(path);
      // Keep the identity the checkpoint knew (the .gz is a new inode; its content is the same file).
      dev = cp?.dev ?? st.dev;
      ino = cp?.ino ?? st.ino;
    } else {
      try {
        fd = openSync(path, "r");
      } catch {
        return null;
      }
      const st = fstatSync(fd);
      dev = st.dev;
      ino = st.ino;
      size = st.size;
    }
    const start = cp ? Math.min(cp.offset, size) : 0;
    if (start >= size) {
      if (fd >= 0) closeSync(fd);
      return null; // nothing unread
    }
    const f = this.track({
      path,
      livePath,
      parsed,
      fd,
      mem,
      dev,
      ino,
      size,
      start,
      fpLen: cp?.fpLen ?? 0,
      fpHash: cp?.fpHash ?? 0,
    });
    f.state = "draining";
    f.drainingSince = this.now();
    f.final = true;
    if (fd >= 0) this.byInode.set(f.info.id, f);
    return f;
  }

  // ---- reading ---------------------------------------------------------------------------

  private async pump(): Promise<void> {
    while (!this.stopping) {
      this.woken = false;
      let progressed = false;
      try {
        progressed = await this.turn();
      } catch (err) {
        if (this.stopping) break; // the ring closed under a waiting append at shutdown
        this.log.error("source turn failed", { error: err });
      }
      if (this.stopping) break;
      if (progressed || this.woken) {
        // Appends that do not wait resolve as microtasks: yield to the event loop between turns,
        // or watcher events, timers and the API would starve while a backlog is read.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        // Held and draining files and pending partials have deadlines; otherwise only events wake us.
        if (this.needsTick()) {
          this.tickTimer = setTimeout(() => {
            this.tickTimer = null;
            this.notify();
          }, TICK_MS);
        }
      });
      if (this.tickTimer) {
        clearTimeout(this.tickTimer);
        this.tickTimer = null;
      }
      this.counters.wakeups++;
      if (!this.stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, READ_COALESCE_MS);
          function done() {
            clearTimeout(timer);
            resolve();
          }
          this.cutCoalesce = done;
        });
        this.cutCoalesce = null;
      }
    }
  }

  private needsTick(): boolean {
    if (this.merger.size > 0) return true;
    for (const f of this.files.values()) if (f.state === "draining" || f.held) return true;
    return false;
  }

  /** One round-robin pass: at most one slice per file. Returns whether anything moved. */
  private async turn(): Promise<boolean> {
    let progressed = false;
    let held = 0;
    const now = this.now();
    // The oldest unfinished file of each container instance is read first: a rotated file is
    // drained before its successor, so lines (and partials split across them) stay in order.
    const heads = new Map<string, TailedFile>();
    for (const f of this.files.values()) {
      const h = heads.get(f.partialKey);
      if (!h || f.order < h.order) heads.set(f.partialKey, f);
    }
    for (const file of [...this.files.values()]) {
      if (this.stopping) break;
      if (file.gone) continue;
      const decision = this.opts.output.decide(file.info, now);
      if (decision === "skip") {
        this.skip(file);
        continue;
      }
      if (decision === "hold") {
        file.held = true;
        held++;
        continue;
      }
      if (file.held) {
        file.held = false;
        file.dirty = true;
      }
      if (heads.get(file.partialKey) !== file) {
        file.blocked = true;
        continue;
      }
      if (file.blocked) {
        file.blocked = false;
        file.dirty = true;
      }
      if (!file.dirty && file.state === "active") continue;
      const lines = this.lines;
      lines.clear(); // one batch reused per slice: the router is done with it when emit resolves
      const n = this.readSlice(file, now, lines);
      if (n > 0) progressed = true;
      else file.dirty = false;
      let finished = false;
      if (n === 0 && file.state === "draining" && !file.gone && this.drained(file, now)) {
        // Its last line may lack "\n": the file will not grow, so that line is complete.
        // A pending partial stays pending: its continuation is in the successor.
        file.reader.finish(now, lines);
        finished = true;
      }
      const released = this.merger.takeReleased();
      if (n > 0 || lines.length > 0 || finished || released.length > 0) await this.emit(file, lines, released);
      if (finished) {
        this.retire(file);
        progressed = true; // its successor may read now
      }
    }
    this.counters.filesHeld = held;
    if (this.stopping) return progressed;
    // Partials whose F never came are emitted whole after partialFlushMs.
    if (this.merger.size > 0) {
      const flushed = this.merger.flush(now, this.opts.config.partialFlushMs);
      for (const line of flushed) {
        this.counters.partialFlushTimeouts++;
        if (line.truncated) this.counters.linesTruncated++;
        const head = this.files.get(line.fileId) ?? this.retired.get(line.fileId);
        // Emit through an open file of the same container when the head's file is closed.
        const target = head && !head.gone ? head : this.openFileOfKey(head?.partialKey) ?? head;
        const released = this.merger.takeReleased();
        if (target) await this.emit(target, LineBatch.of(line), released);
      }
    }
    return progressed;
  }

  private openFileOfKey(key: string | undefined): TailedFile | undefined {
    if (key === undefined) return undefined;
    for (const f of this.files.values()) if (f.partialKey === key && !f.gone) return f;
    return undefined;
  }

  private async emit(file: TailedFile, lines: LineBatch, released: string[]): Promise<void> {
    this.emitting = true;
    let seq: number;
    try {
      seq = await this.opts.output.emit(file.info, lines);
    } finally {
      this.emitting = false;
    }
    const durable = this.opts.durableSeq();
    this.mark(file, seq, durable);
    for (const serial of released) {
      if (serial === file.serial) continue;
      const other = this.files.get(serial) ?? this.retired.get(serial);
      if (other) this.mark(other, seq, durable);
    }
  }

  /** Records that everything before the file's safe offset is covered by ring records up to `seq`. */
  private mark(f: TailedFile, seq: number, durable: number): void {
    const pending = this.merger.pendingStart(f.serial);
    const safe = pending === null ? f.reader.lineEnd : Math.min(pending, f.reader.lineEnd);
    const last = f.marks[f.marks.length - 1];
    if (last && last.seq === seq) last.offset = safe;
    else f.marks.push({ seq, offset: safe });
    if (seq <= durable) this.advance(f, durable); // filtered lines: nothing to wait for
  }

  /** Reads one slice into lines; returns the bytes read. */
  private readSlice(file: TailedFile, now: number, out: LineBatch): number {
    let n: number;
    if (file.mem) {
      n = Math.min(this.readBuf.length, file.mem.length - file.readPos);
      if (n <= 0) return 0;
      const chunk = file.mem.subarray(file.readPos, file.readPos + n);
      file.readPos += n;
      this.counters.bytesRead += n;
      file.reader.feed(chunk, now, out);
      return n;
    }
    if (file.fd < 0) return 0;
    try {
      n = file.stalled ? 0 : readSync(file.fd, this.readBuf, 0, this.readBuf.length, file.readPos);
    } catch (err) {
      this.log.warn("read failed", { path: file.info.path, error: (err as NodeJS.ErrnoException).code });
      return 0;
    }
    if (n === 0) {
      if (file.stalled) return 0;
      const st = fstatSync(file.fd);
      file.size = st.size;
      if (st.size < file.readPos) {
        // Truncated in place: start again from the top.
        this.counters.filesTruncated++;
        this.log.warn("file truncated; reading it again from the start", { path: file.info.path, offset: file.readPos });
        file.readPos = 0;
        file.reader.reset(0);
        file.marks = [];
        file.checkpoint = 0;
        file.fpLen = 0;
        file.fpHash = 0;
        file.dirty = true;
        this.checkpointsDirty = true;
      }
      if (st.nlink === 0) {
        this.markDeleted(file);
        if (file.state === "active") {
          file.state = "draining";
          file.drainingSince = now;
        }
      }
      return 0;
    }
    file.readPos += n;
    if (file.readPos > file.size) file.size = file.readPos;
    file.stuckSince = null;
    this.counters.bytesRead += n;
    file.reader.feed(this.readBuf.subarray(0, n), now, out);
    return n;
  }

  private drained(file: TailedFile, now: number): boolean {
    if (file.final || file.deleted) return true;
    if (now - file.drainingSince >= DRAIN_GRACE_MS) return true;
    // The runtime writes to the new file once it reopened: the old one will not grow again.
    const successor = this.byPath.get(file.livePath);
    if (!successor || successor === file || successor.fd < 0) return false;
    try {
      successor.size = Math.max(successor.size, fstatSync(successor.fd).size);
    } catch {
      return false;
    }
    return successor.size > 0;
  }

  private skip(file: TailedFile): void {
    this.counters.filesSkipped++;
    for (const p of file.paths) this.skipped.set(p, file.info.id);
    this.forget(file);
  }

  private retire(file: TailedFile): void {
    this.forget(file);
    if (file.marks.length > 0 || this.merger.pinned(file.serial)) this.retired.set(file.serial, file);
    else this.checkpointsDirty = true;
  }

  /** Closes a file and removes it from every index. */
  private forget(file: TailedFile): void {
    file.gone = true;
    this.updateFingerprint(file);
    this.history.get(file.partialKey)?.set(file.info.id, { fpLen: file.fpLen, fpHash: file.fpHash });
    this.closeFd(file);
    file.mem = null;
    this.files.delete(file.serial);
    if (this.byInode.get(file.info.id) === file) this.byInode.delete(file.info.id);
    for (const p of file.paths) if (this.byPath.get(p) === file) this.byPath.delete(p);
    this.counters.filesWatched = this.files.size;
    this.checkpointsDirty = true;
    this.opts.output.closed?.(file.info);
    for (const f of this.files.values()) if (f.partialKey === file.partialKey) f.dirty = true;
    this.notify();
  }

  private closeFd(file: TailedFile): void {
    if (file.fd < 0) return;
    try {
      closeSync(file.fd);
    } catch {
      // already closed
    }
    file.fd = -1;
  }

  // ---- safety nets -----------------------------------------------------------------------

  private refreshSizes(now: number): void {
    let lag = 0;
    for (const f of this.files.values()) {
      if (f.fd >= 0) {
        try {
          const st = fstatSync(f.fd);
          f.size = st.size;
          if (st.nlink === 0) {
            this.markDeleted(f);
            if (f.state === "active") {
              f.state = "draining";
              f.drainingSince = now;
            }
          }
        } catch {
          // closed meanwhile
        }
      }
      lag += Math.max(0, f.size - f.checkpoint);
    }
    this.counters.lagBytes = lag;
  }

  /** Deleted-but-open files hold disk; beyond maxDeletedHeldBytes the oldest is given up. */
  private enforceDeletedCap(now: number): void {
    const deleted = [...this.files.values()].filter((f) => f.deleted && f.fd >= 0).sort((a, b) => a.deletedAt - b.deletedAt);
    let total = deleted.reduce((s, f) => s + f.size, 0);
    const cap = this.opts.config.maxDeletedHeldBytes;
    for (const f of deleted) {
      if (total <= cap) break;
      const lost = Math.max(0, f.size - f.reader.lineEnd);
      total -= f.size;
      this.counters.filesGivenUp++;
      this.counters.bytesLost += lost;
      this.log.warn("giving up a deleted file to free its disk space (source.maxDeletedHeldBytes)", {
        path: f.info.path,
        unreadBytes: lost,
        deletedHeldBytes: total + f.size,
        maxDeletedHeldBytes: cap,
        deletedForMs: now - f.deletedAt,
      });
      this.forget(f);
      if (this.merger.pinned(f.serial)) this.retired.set(f.serial, f);
    }
    this.counters.deletedHeldBytes = total;
  }

  /**
   * A file that grows while its read position has not moved for watchdogSeconds, with nothing
   * blocking it (held, waiting for its predecessor, ring backpressure), is reopened.
   */
  private watchdog(now: number): void {
    const limitMs = this.opts.config.watchdogSeconds * 1000;
    if (limitMs <= 0) return;
    for (const f of this.files.values()) {
      if (f.fd < 0 || f.held || f.blocked || this.emitting || f.size <= f.readPos) {
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
    this.counters.watchdogReopens++;
    const resumeAt = f.reader.lineEnd;
    this.log.warn("file grows but reading it has not advanced; reopening it at its checkpoint", {
      path: f.info.path,
      readOffset: f.readPos,
      resumeAt,
      size: f.size,
      stuckMs: now - (f.stuckSince ?? now),
    });
    const path = [...f.paths][0];
    if (path) {
      try {
        const fd = openSync(path, "r");
        const st = fstatSync(fd);
        if (st.dev === f.dev && st.ino === f.ino) {
          this.closeFd(f);
          f.fd = fd;
        } else closeSync(fd); // the path names another file now: keep reading ours through its descriptor
      } catch {
        // keep the old descriptor
      }
    }
    f.readPos = resumeAt;
    f.reader.reset(resumeAt);
    f.stalled = false;
    f.stuckSince = null;
    f.dirty = true;
    this.notify();
  }

  // ---- checkpoints -----------------------------------------------------------------------

  private advance(f: TailedFile, durable: number): void {
    let i = 0;
    while (i < f.marks.length && (f.marks[i] as Mark).seq <= durable) i++;
    if (i === 0) return;
    const offset = (f.marks[i - 1] as Mark).offset;
    f.marks.splice(0, i);
    if (offset !== f.checkpoint) {
      f.checkpoint = offset;
      this.checkpointsDirty = true;
    }
  }

  private applyMarks(durable: number): void {
    for (const f of this.files.values()) this.advance(f, durable);
    for (const [serial, f] of this.retired) {
      this.advance(f, durable);
      if (f.marks.length === 0 && !this.merger.pinned(serial)) {
        this.retired.delete(serial);
        this.checkpointsDirty = true;
      }
    }
  }

  /** The fingerprint covers the first FINGERPRINT_BYTES of the file once it has them. */
  private updateFingerprint(f: TailedFile): void {
    if (f.fd < 0 || f.fpLen >= FINGERPRINT_BYTES || f.size <= f.fpLen) return;
    const len = Math.min(f.size, FINGERPRINT_BYTES);
    const head = new Uint8Array(len);
    try {
      if (readSync(f.fd, head, 0, len, 0) !== len) return;
    } catch {
      return;
    }
    f.fpLen = len;
    f.fpHash = fingerprint(head);
  }

  private saveCheckpoints(): void {
    if (!this.checkpointsDirty) return;
    this.checkpointsDirty = false;
    const out: FileCheckpoint[] = [];
    const ids = new Set<string>();
    for (const f of [...this.files.values(), ...this.retired.values()]) {
      this.updateFingerprint(f);
      const id = checkpointKey(f.dev, f.ino);
      if (ids.has(id)) continue; // an older retired file whose inode was reused: the open one wins
      ids.add(id);
      out.push({ dev: f.dev, ino: f.ino, fpLen: f.fpLen, fpHash: f.fpHash, path: f.livePath, offset: f.checkpoint, size: f.size });
    }
    // Until the first scan of a readable root, checkpoints not matched yet are kept as they were.
    for (const [id, cp] of this.unclaimed) if (!ids.has(id)) out.push(cp);
    try {
      this.opts.onCheckpointsSaving?.();
      this.store.save(out);
      this.counters.checkpointWrites++;
    } catch (err) {
      this.checkpointsDirty = true;
      this.log.error("cannot write checkpoints", { path: this.store.path, error: (err as Error).message });
    }
  }
}

function partialKeyOf(p: PodLogPath): string {
  return `${p.podUid}/${p.container}/${p.restart}`;
}

/** Whether the first `len` bytes (of the descriptor, or of `mem`) hash to `hash`. */
function headMatches(fd: number, mem: Uint8Array | null, len: number, hash: number): boolean {
  if (len === 0) return true;
  let head: Uint8Array;
  if (mem) {
    if (mem.length < len) return false;
    head = mem.subarray(0, len);
  } else {
    head = new Uint8Array(len);
    if (readSync(fd, head, 0, len, 0) !== len) return false;
  }
  return fingerprint(head) === hash;
}

function fileHeadMatches(path: string, len: number, hash: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return false;
  }
  try {
    return headMatches(fd, null, len, hash);
  } finally {
    closeSync(fd);
  }
}
