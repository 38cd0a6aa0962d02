// The source stage (SPEC §2.1): finds container log files, follows them through their file
// descriptors, turns their bytes into merged lines, and hands them to the next stage.
// It keeps each file's checkpoint as the watermark of SPEC §4: a file's offset only becomes its
// checkpoint once the ring says the records read before it are durable.
import { type FSWatcher, closeSync, fstatSync, openSync, readdirSync, readSync, statSync, watch } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { type Logger, log as rootLog } from "../log.ts";
import { CheckpointStore, checkpointKey, type FileCheckpoint, fingerprint } from "./checkpoints.ts";
import { compileGlobs } from "./glob.ts";
import { LineReader, type LineReaderCounters } from "./line-reader.ts";
import { type MergedLine, PartialMerger } from "./partial.ts";
import { parsePodLogPath, type PodLogPath } from "./paths.ts";

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
  /** Takes a file's lines; resolves (after any backpressure) with the ring sequence number that covers them. */
  emit(file: SourceFileInfo, lines: MergedLine[]): Promise<number>;
  /** The file is closed for good (drained or skipped). */
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
}

export interface SourceCounters extends LineReaderCounters {
  bytesRead: number;
  filesAdded: number;
  filesRotated: number;
  filesTruncated: number;
  filesDeleted: number;
  filesSkipped: number;
  partialFlushTimeouts: number;
  watcherErrors: number;
  checkpointWrites: number;
}

interface Mark {
  seq: number;
  offset: number;
}

type FileState = "active" | "draining" | "skipped";

interface TailedFile {
  info: SourceFileInfo;
  fd: number;
  dev: number;
  ino: number;
  reader: LineReader;
  /** Next byte to read from the descriptor. */
  readPos: number;
  /** Size at the last fstat. */
  size: number;
  checkpoint: number;
  marks: Mark[];
  state: FileState;
  drainingSince: number;
  fpLen: number;
  fpHash: number;
}

const FINGERPRINT_BYTES = 1024;
/** A rotated file is closed at EOF once its successor has bytes, or after this long. */
const DRAIN_GRACE_MS = 5000;

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
    partialFlushTimeouts: 0,
    watcherErrors: 0,
    checkpointWrites: 0,
  };
  private readonly files = new Map<string, TailedFile>();
  /** Live path → file id, to notice rotation (the path now names another inode). */
  private readonly byPath = new Map<string, string>();
  /** Closed files whose last marks are not durable yet (their checkpoints must survive until then). */
  private readonly retired: TailedFile[] = [];
  private readonly skippedIds = new Set<string>();
  private readonly merger: PartialMerger;
  private readonly store: CheckpointStore;
  private saved = new Map<string, FileCheckpoint>();
  private readonly include: (p: string) => boolean;
  private readonly exclude: (p: string) => boolean;
  private readonly excludedContainers: Set<string>;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly readBuf: Uint8Array;
  private watcher: FSWatcher | null = null;
  private watcherFailed = false;
  private scanTimer: ReturnType<typeof setInterval> | null = null;
  private scanSoonTimer: ReturnType<typeof setTimeout> | null = null;
  private wake: (() => void) | null = null;
  private woken = false;
  private stopping = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private checkpointsDirty = false;
  private firstScanDone = false;

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

  /** Loads checkpoints, scans once, starts the watcher and the pump. */
  start(): void {
    this.saved = this.store.load((msg) => this.log.warn(msg));
    this.scan(true);
    this.firstScanDone = true;
    this.startWatcher();
    this.scanTimer = setInterval(() => this.scan(false), this.opts.config.scanIntervalMs);
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
    this.applyMarks(seq);
    this.saveCheckpoints();
  }

  /** Stops reading; keeps checkpoints of what is durable now. The caller syncs the ring first. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.notify();
    this.watcher?.close();
    if (this.scanTimer) clearInterval(this.scanTimer);
    if (this.scanSoonTimer) clearTimeout(this.scanSoonTimer);
    await this.pumpDone;
  }

  /** After the final ring sync: persist checkpoints and close every descriptor. */
  close(): void {
    this.applyMarks(this.opts.durableSeq());
    this.checkpointsDirty = true;
    this.saveCheckpoints();
    for (const f of this.files.values()) this.closeFd(f);
    this.files.clear();
  }

  fileStatus(): Array<Record<string, unknown>> {
    return [...this.files.values()].map((f) => ({
      path: f.info.path,
      namespace: f.info.namespace,
      pod: f.info.podName,
      podUid: f.info.podUid,
      container: f.info.container,
      restart: f.info.restart,
      state: f.state,
      offset: f.checkpoint,
      readOffset: f.readPos,
      size: f.size,
      lag: Math.max(0, f.size - f.checkpoint),
    }));
  }

  get filesWatched(): number {
    return this.files.size;
  }

  // ---- discovery -------------------------------------------------------------------------

  private startWatcher(): void {
    if (this.watcher || this.watcherFailed || this.stopping) return;
    try {
      this.watcher = watch(this.opts.config.root, { recursive: true }, (_event, filename) => {
        const name = typeof filename === "string" ? filename : "";
        // A new or renamed path may be a new file; any event may mean bytes to read.
        if (!this.byPath.has(join(this.opts.config.root, name))) this.scanSoon();
        this.notify();
      });
      this.watcher.on("error", (err) => {
        // Running out of inotify watches arrives here; unhandled it would kill the process.
        this.counters.watcherErrors++;
        this.log.warn("file watcher failed; relying on the reconciliation scan", {
          error: (err as Error).message,
          scanIntervalMs: this.opts.config.scanIntervalMs,
        });
        this.watcher?.close();
        this.watcher = null;
        this.watcherFailed = true;
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") {
        this.watcherFailed = true;
        this.log.warn("cannot watch the log root; relying on the reconciliation scan", { error: (err as Error).message });
      }
    }
  }

  private scanSoon(): void {
    if (this.scanSoonTimer || this.stopping) return;
    this.scanSoonTimer = setTimeout(() => {
      this.scanSoonTimer = null;
      this.scan(false);
    }, 50);
  }

  /** Reconciliation: find new files, notice rotated and deleted ones. */
  private scan(initial: boolean): void {
    if (this.stopping) return;
    const root = this.opts.config.root;
    let podDirs: string[];
    try {
      podDirs = readdirSync(root);
    } catch (err) {
      this.log.warn("log root is not readable; will retry", { root, error: (err as NodeJS.ErrnoException).code });
      this.markMissing(new Set());
      return;
    }
    this.startWatcher();
    const seen = new Set<string>();
    for (const podDir of podDirs) {
      let containers: string[];
      try {
        containers = readdirSync(join(root, podDir));
      } catch {
        continue; // not a directory, or removed meanwhile
      }
      for (const container of containers) {
        let names: string[];
        try {
          names = readdirSync(join(root, podDir, container));
        } catch {
          continue;
        }
        for (const name of names) {
          const rel = `${podDir}/${container}/${name}`;
          const parsed = parsePodLogPath(rel);
          if (!parsed || !this.include(rel) || this.exclude(rel)) continue;
          if (this.excludedContainers.has(parsed.container)) continue;
          if (this.opts.ownPodUid && parsed.podUid === this.opts.ownPodUid) continue;
          const path = join(root, rel);
          seen.add(path);
          this.discover(path, parsed, initial);
        }
      }
    }
    this.markMissing(seen);
    this.notify();
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
    const knownId = this.byPath.get(path);
    if (knownId === id || this.files.has(id) || this.skippedIds.has(id)) {
      if (knownId !== id) this.byPath.set(path, id);
      return;
    }
    if (knownId !== undefined) {
      // The path names another file now: the old one was rotated away; read it to its end.
      const old = this.files.get(knownId);
      if (old && old.state === "active") {
        old.state = "draining";
        old.drainingSince = this.now();
        this.counters.filesRotated++;
      }
    }
    this.open(path, parsed, id, initial);
  }

  private open(path: string, parsed: PodLogPath, id: string, initial: boolean): void {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      this.log.warn("cannot open log file", { path, error: (err as NodeJS.ErrnoException).code });
      return;
    }
    const st = fstatSync(fd);
    const realId = checkpointKey(st.dev, st.ino);
    if (realId !== id && (this.files.has(realId) || this.skippedIds.has(realId))) {
      closeSync(fd);
      return;
    }
    let start = 0;
    let fpLen = 0;
    let fpHash = 0;
    const saved = this.saved.get(realId);
    if (saved && this.headMatches(fd, saved.fpLen, saved.fpHash)) {
      start = saved.offset <= st.size ? saved.offset : 0;
      fpLen = saved.fpLen;
      fpHash = saved.fpHash;
    } else if (initial && this.opts.config.readFrom === "end") {
      start = st.size;
    }
    const info: SourceFileInfo = { ...parsed, id: realId, path, firstSeenAt: this.now() };
    const file: TailedFile = {
      info,
      fd,
      dev: st.dev,
      ino: st.ino,
      reader: new LineReader(
        {
          partialKey: `${parsed.podUid}/${parsed.container}/${parsed.restart}`,
          fileId: realId,
          format: this.opts.config.format,
          maxLineBytes: this.opts.config.maxLineBytes,
          merger: this.merger,
          counters: this.counters,
        },
        start,
      ),
      readPos: start,
      size: st.size,
      checkpoint: start,
      marks: [],
      state: "active",
      drainingSince: 0,
      fpLen,
      fpHash,
    };
    this.files.set(realId, file);
    this.byPath.set(path, realId);
    this.counters.filesAdded++;
    this.checkpointsDirty = true;
    this.log.debug("following file", { path, offset: start });
  }

  private headMatches(fd: number, len: number, hash: number): boolean {
    if (len === 0) return true;
    const head = new Uint8Array(len);
    const n = readSync(fd, head, 0, len, 0);
    return n === len && fingerprint(head) === hash;
  }

  /** Files whose path vanished are drained to their end through the descriptor, then closed. */
  private markMissing(seen: Set<string>): void {
    for (const [path, id] of this.byPath) {
      if (seen.has(path)) continue;
      this.byPath.delete(path);
      const f = this.files.get(id);
      if (f && f.state === "active") {
        f.state = "draining";
        f.drainingSince = this.now();
        this.counters.filesDeleted++;
      }
    }
  }

  // ---- reading ---------------------------------------------------------------------------

  private async pump(): Promise<void> {
    while (!this.stopping) {
      this.woken = false;
      let progressed = false;
      try {
        progressed = await this.turn();
      } catch (err) {
        this.log.error("source turn failed", { error: err });
      }
      if (progressed || this.woken || this.stopping) continue;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        // Held files and pending partials have deadlines; otherwise only events wake us.
        if (this.needsTimer()) setTimeout(() => this.notify(), 1000);
      });
    }
  }

  private needsTimer(): boolean {
    if (this.merger.size > 0) return true;
    for (const f of this.files.values()) if (f.state === "draining") return true;
    return this.holding;
  }

  private holding = false;

  /** One round-robin pass: at most one slice per file. Returns whether any bytes were read. */
  private async turn(): Promise<boolean> {
    let progressed = false;
    let holding = false;
    const now = this.now();
    for (const file of [...this.files.values()]) {
      if (this.stopping) break;
      const decision = this.opts.output.decide(file.info, now);
      if (decision === "skip") {
        this.skip(file);
        continue;
      }
      if (decision === "hold") {
        holding = true;
        continue;
      }
      const lines: MergedLine[] = [];
      const n = this.readSlice(file, now, lines);
      if (n > 0) progressed = true;
      let finished = false;
      if (n === 0 && file.state === "draining" && this.drained(file, now)) {
        // A pending partial stays pending: its continuation is in the successor file.
        file.reader.finish(now, lines);
        finished = true;
      }
      if (n > 0 || lines.length > 0 || finished) await this.emit(file, lines);
      if (finished) this.retire(file);
    }
    // Partials whose F never came are emitted whole after partialFlushMs.
    if (this.merger.size > 0) {
      const flushed = this.merger.flush(now, this.opts.config.partialFlushMs);
      if (flushed.length) this.counters.partialFlushTimeouts += flushed.length;
      await this.emitFlushed(flushed);
    }
    this.holding = holding;
    return progressed;
  }

  private async emitFlushed(lines: ReturnType<PartialMerger["flush"]>): Promise<void> {
    for (const line of lines) {
      const file = this.files.get(line.fileId) ?? this.retired.find((f) => f.info.id === line.fileId);
      if (file) await this.emit(file, [line]);
    }
  }

  private async emit(file: TailedFile, lines: MergedLine[]): Promise<void> {
    const seq = await this.opts.output.emit(file.info, lines);
    const pending = this.merger.pendingStart(file.info.id);
    const safe = pending === null ? file.reader.lineEnd : Math.min(pending, file.reader.lineEnd);
    const last = file.marks[file.marks.length - 1];
    if (last && last.seq === seq) last.offset = safe;
    else file.marks.push({ seq, offset: safe });
  }

  /** Reads one slice from the descriptor into lines; returns the bytes read. */
  private readSlice(file: TailedFile, now: number, out: MergedLine[]): number {
    let n: number;
    try {
      n = readSync(file.fd, this.readBuf, 0, this.readBuf.length, file.readPos);
    } catch (err) {
      this.log.warn("read failed", { path: file.info.path, error: (err as NodeJS.ErrnoException).code });
      return 0;
    }
    if (n === 0) {
      const st = fstatSync(file.fd);
      file.size = st.size;
      if (st.size < file.readPos) {
        // Truncated in place: start again from the top.
        this.counters.filesTruncated++;
        this.log.warn("file truncated; reading it again from the start", { path: file.info.path });
        file.readPos = 0;
        file.reader.reset(0);
        file.marks = [];
        file.checkpoint = 0;
        this.checkpointsDirty = true;
      }
      if (st.nlink === 0 && file.state === "active") {
        file.state = "draining";
        file.drainingSince = now;
        this.counters.filesDeleted++;
      }
      return 0;
    }
    file.readPos += n;
    if (file.readPos > file.size) file.size = file.readPos;
    this.counters.bytesRead += n;
    file.reader.feed(this.readBuf.subarray(0, n), now, out);
    return n;
  }

  private drained(file: TailedFile, now: number): boolean {
    if (fstatSync(file.fd).nlink === 0) return true;
    if (now - file.drainingSince >= DRAIN_GRACE_MS) return true;
    // The runtime writes to the new file once it reopened: the old one will not grow again.
    const successorId = this.byPath.get(file.info.path);
    const successor = successorId ? this.files.get(successorId) : undefined;
    return successor !== undefined && successor !== file && successor.size > 0;
  }

  private skip(file: TailedFile): void {
    this.counters.filesSkipped++;
    this.skippedIds.add(file.info.id);
    this.closeFd(file);
    this.files.delete(file.info.id);
    this.opts.output.closed?.(file.info);
  }

  private retire(file: TailedFile): void {
    this.closeFd(file);
    this.files.delete(file.info.id);
    this.retired.push(file);
    this.opts.output.closed?.(file.info);
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

  // ---- checkpoints -----------------------------------------------------------------------

  private applyMarks(durable: number): void {
    const advance = (f: TailedFile) => {
      let i = 0;
      while (i < f.marks.length && (f.marks[i] as Mark).seq <= durable) i++;
      if (i > 0) {
        f.checkpoint = (f.marks[i - 1] as Mark).offset;
        f.marks.splice(0, i);
        this.checkpointsDirty = true;
      }
    };
    for (const f of this.files.values()) advance(f);
    for (let i = this.retired.length - 1; i >= 0; i--) {
      const f = this.retired[i] as TailedFile;
      advance(f);
      if (f.marks.length === 0) {
        this.retired.splice(i, 1);
        this.checkpointsDirty = true;
      }
    }
  }

  private saveCheckpoints(): void {
    if (!this.checkpointsDirty) return;
    this.checkpointsDirty = false;
    const out: FileCheckpoint[] = [];
    for (const f of [...this.files.values(), ...this.retired]) {
      if (f.fd >= 0 && f.fpLen < FINGERPRINT_BYTES && f.size > f.fpLen) {
        const len = Math.min(f.size, FINGERPRINT_BYTES);
        const head = new Uint8Array(len);
        if (readSync(f.fd, head, 0, len, 0) === len) {
          f.fpLen = len;
          f.fpHash = fingerprint(head);
        }
      }
      out.push({ dev: f.dev, ino: f.ino, fpLen: f.fpLen, fpHash: f.fpHash, path: f.info.path, offset: f.checkpoint });
    }
    try {
      this.store.save(out);
      this.counters.checkpointWrites++;
    } catch (err) {
      this.checkpointsDirty = true;
      this.log.error("cannot write checkpoints", { path: this.store.path, error: (err as Error).message });
    }
  }
}
