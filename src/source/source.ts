// The source stage: finds container log files, follows them through their file descriptors, turns
// their bytes into merged lines and hands them to the next stage (docs/source.md). It keeps each
// file's checkpoint as a watermark: a file's offset only becomes its checkpoint once the ring says
// the records read before it are durable, and never passes the first fragment of a line still
// pending (in this file or, across a rotation, in its successor).
//
// The parts, one concern each: Discovery (scan, inotify, rotated-name classification), CatchUp
// (files rotated during downtime), Opener, FileSet (the followed files and their life), TailedFile
// (one file: descriptor, slices, truncation, deletion, reopen, fingerprint), Checkpointer (watermarks
// and saving), SafetyNets (sizes, the deleted-bytes cap, the watchdog) and ReadingLoop (turns,
// fairness, emits). This class builds them and runs the reconciliation scan.
import type { Config } from "../config/schema.ts";
import { type Logger, log as rootLog } from "../log.ts";
import { systemClock } from "../platform/clock.ts";
import { nodeSourceFs } from "../platform/source-fs.ts";
import type { Clock, Timer } from "../platform/types.ts";
import { CatchUp, RecoveredContainers } from "./catch-up.ts";
import { Checkpointer } from "./checkpointer.ts";
import { CheckpointStore } from "./checkpoints.ts";
import { newSourceCounters, type SourceParts } from "./context.ts";
import { Discovery, logFileFilter } from "./discovery.ts";
import { FileSet } from "./file-set.ts";
import { Opener } from "./opener.ts";
import { PartialMerger } from "./partial.ts";
import { GzipReader } from "./rotated.ts";
import { ReadingLoop } from "./reading-loop.ts";
import { SafetyNets } from "./safety-nets.ts";
import type { TailedFile } from "./tailed-file.ts";
import type { CheckpointHealth, CheckpointStorage, SourceCounters, SourceFileStatus, SourceFs, SourceOutput } from "./types.ts";

export interface SourceOptions {
  config: Config["source"];
  dataDir: string;
  ownPodUid: string | null;
  output: SourceOutput;
  /** The highest ring sequence number known durable. */
  durableSeq: () => number;
  log?: Logger;
  /** The file system the logs are read through (default: the real one). */
  fs?: SourceFs;
  clock?: Clock;
  /** Where checkpoints persist (default: checkpoints.json in dataDir). */
  checkpoints?: CheckpointStorage;
  /** Called right before each checkpoint save: state that must be durable no later than the checkpoints. */
  onCheckpointsSaving?: () => void;
  /** When the process started (epoch ms; default: when start() runs): before the ring opened, which may take seconds. */
  startedAt?: number;
}

export class Source {
  readonly counters: SourceCounters = newSourceCounters();
  private readonly parts: SourceParts;
  private readonly files: FileSet;
  private readonly discovery: Discovery;
  private readonly catchUp: CatchUp;
  private readonly safety: SafetyNets;
  private readonly loop: ReadingLoop;
  private readonly merger: PartialMerger;
  private scanTimer: Timer | null = null;
  private firstScanDone = false;
  private stopping = false;
  private closed = false;

  constructor(private readonly opts: SourceOptions) {
    const config = opts.config;
    const log = (opts.log ?? rootLog).child({ stage: "source" });
    const clock = opts.clock ?? systemClock;
    const storage = opts.checkpoints ?? new CheckpointStore(opts.dataDir);
    const rotatedOnDisk = (livePath: string) => this.discovery.rotatedListed.count(livePath);
    const checkpoints = new Checkpointer(storage, this.counters, log, clock, opts.onCheckpointsSaving, rotatedOnDisk);
    const fs = opts.fs ?? nodeSourceFs;
    this.parts = {
      fs,
      clock,
      log,
      counters: this.counters,
      output: opts.output,
      checkpoints,
      startedAt: 0,
      gzip: new GzipReader(fs, log),
      notify: () => this.notify(),
    };
    this.merger = new PartialMerger(config.maxLineBytes);
    const events = {
      truncated: (f: TailedFile, at: number) => {
        this.counters.filesTruncated++;
        log.warn("file truncated; reading it again from the start", { path: f.info.path, offset: at });
        checkpoints.markDirty();
      },
      unlinked: (f: TailedFile) => {
        this.files.markDeleted(f);
        f.startDraining(this.parts.clock.now());
      },
    };
    this.files = new FileSet(this.parts, config, this.merger, events, () => this.safety.enforceDeletedCap());
    const opener = new Opener(this.parts, config, this.files);
    const accept = logFileFilter(config, opts.ownPodUid);
    const recovered = new RecoveredContainers();
    this.discovery = new Discovery(this.parts, config, this.files, opener, accept, recovered);
    this.catchUp = new CatchUp(this.parts, this.files, opener, (p) => this.discovery.acceptLive(p), recovered);
    this.safety = new SafetyNets(this.parts, config, this.files);
    this.loop = new ReadingLoop(this.parts, config, this.files, this.merger, this.discovery, opts.durableSeq);
  }

  /** Loads checkpoints, finishes files rotated while we were down, scans, starts the watcher and the loop. */
  start(): void {
    this.parts.startedAt = this.opts.startedAt ?? this.parts.clock.now();
    this.parts.checkpoints.load();
    this.catchUp.run(false);
    this.scan(true);
    this.firstScanDone = true;
    this.discovery.startWatching();
    this.scanTimer = this.parts.clock.every(this.opts.config.scanIntervalMs, () => {
      this.counters.wakeups++;
      this.scan(false);
    });
    this.loop.start();
  }

  get ready(): boolean {
    return this.firstScanDone;
  }

  /** Something changed (a file grew, metadata arrived): run a turn soon. */
  notify(): void {
    this.loop.notify();
  }

  /** The ring made everything up to `seq` durable: advance checkpoints and persist them. */
  onDurable(seq: number): void {
    if (this.closed) return; // the ring's last sync after close() must not rewrite checkpoints without the files
    this.parts.checkpoints.applyMarks(this.files, this.merger, seq);
    this.parts.checkpoints.save(this.files);
  }

  /** Stops reading; keeps checkpoints of what is durable now. The caller syncs the ring first. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.discovery.stopWatching();
    this.scanTimer?.cancel();
    this.parts.checkpoints.lookedUntil ??= this.parts.clock.now();
    // Resolves once the loop is out. If it waits on a full ring, it waits until the ring takes the
    // slice or closes (the caller bounds that with its shutdown deadline); lines of a slice the ring
    // never took are not covered by any checkpoint, so they are read again after a restart.
    await this.loop.stop();
  }

  /** After the final ring sync: persist checkpoints and close every descriptor. */
  close(): void {
    if (this.closed) return;
    // Sizes as they are now: a file deleted before the next start is counted as lost up to here.
    this.safety.refreshSizes();
    const checkpoints = this.parts.checkpoints;
    checkpoints.applyMarks(this.files, this.merger, this.opts.durableSeq());
    checkpoints.markDirty();
    checkpoints.save(this.files);
    this.closed = true;
    this.files.closeAll();
  }

  /** Per-file data for /status: checkpoint offset, read position, size, lag (size − checkpoint). */
  fileStatus(): SourceFileStatus[] {
    return [...this.files.open.values()].map((f) => f.status());
  }

  get filesWatched(): number {
    return this.files.open.size;
  }

  /** Whether checkpoints can be saved (a full data dir disk stops them; the previous ones stay). */
  get checkpointHealth(): CheckpointHealth {
    return this.parts.checkpoints.health;
  }

  /** Reconciliation: find new files, notice rotated and deleted ones, run the safety nets, save. */
  private scan(initial: boolean): void {
    if (this.stopping) return;
    if (!this.discovery.scanAll(initial)) return;
    const checkpoints = this.parts.checkpoints;
    if (!checkpoints.settled) {
      // Files rotated (or compressed) between the first catch-up pass and this scan.
      if (checkpoints.unclaimed.size > 0) this.catchUp.run(true);
      checkpoints.forgetUnclaimed((cp) => this.catchUp.estimateFinalSize(cp));
      for (const key of new Set([...this.files.open.values()].map((f) => f.containerKey))) this.files.orderByRotation(key);
    }
    const now = this.parts.clock.now();
    this.safety.refreshSizes();
    this.safety.enforceDeletedCap();
    this.safety.watchdog(now, this.loop.emitting);
    for (const f of this.files.open.values()) f.dirty = true;
    checkpoints.applyMarks(this.files, this.merger, this.opts.durableSeq());
    checkpoints.save(this.files);
    this.notify();
  }
}
