// The reading loop: turns of at most one slice per file, round robin (fairness), the oldest file of
// each container first (a rotated file is drained before its successor, so lines and the partials
// split across them stay in order). Each slice's lines go to the pipeline, whose emit resolves after
// any backpressure with the ring sequence number that covers them: the file's watermark mark.
// Between turns the loop yields to the event loop; with nothing to do it sleeps until notified.
import type { SourceConfig, SourceParts } from "./context.ts";
import type { Discovery } from "./discovery.ts";
import type { FileSet } from "./file-set.ts";
import { LineBatch } from "./line-batch.ts";
import type { PartialMerger } from "./partial.ts";
import type { TailedFile } from "./tailed-file.ts";
import type { Timer } from "../platform/types.ts";

/** A rotated file is closed at its end once its successor has bytes, or after this long. */
const DRAIN_GRACE_MS = 5000;
/** While files are held, draining or partials pending, the loop wakes this often. */
const TICK_MS = 1000;
/**
 * After waking from idle, the loop waits this long before reading, so that the many small writes of
 * busy containers are read together: a turn costs an fstat, a read and a ring write per file that grew
 * (bench/RESULTS.md, latency scenario). Adds at most this much to latency; a backlog is read back to
 * back, without it.
 */
const READ_COALESCE_MS = 50;
/**
 * Within a turn the loop yields to the event loop once it has read this long: a turn over many busy
 * files takes tens of milliseconds, and the sink's answers and the gzip worker's results wait for
 * the yield (bench/RESULTS.md, "Reading and sending together").
 */
const TURN_STRETCH_MS = 5;

export class ReadingLoop {
  /** An emit is waiting on the pipeline (backpressure: not a stuck reader). */
  emitting = false;
  private readonly readBuf: Uint8Array;
  /** The lines of one slice, handed to the pipeline (reused: ranges point into readBuf). */
  private readonly lines = new LineBatch();
  private stopping = false;
  private woken = false;
  private wake: (() => void) | null = null;
  private cutCoalesce: (() => void) | null = null;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly parts: SourceParts,
    private readonly config: SourceConfig,
    private readonly files: FileSet,
    private readonly merger: PartialMerger,
    private readonly discovery: Discovery,
    private readonly durableSeq: () => number,
  ) {
    this.readBuf = new Uint8Array(config.readSliceBytes);
  }

  start(): void {
    this.done = this.pump();
  }

  /** Something changed (a file grew, metadata arrived): run a turn soon. */
  notify(): void {
    this.woken = true;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /**
   * Resolves once the loop is out (an emit waiting on a full ring is waited for) and the lines only
   * this process can finish are read on (finishOrphans).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.notify();
    this.cutCoalesce?.();
    await this.done;
    await this.finishOrphans();
  }

  /**
   * At a stop, a pending line whose head's file is closed or deleted lives only in this process's
   * memory: the next one cannot read that head again, and would make a record of the rest. Its
   * container is read on, oldest file first as in turns, until no such line is pending or nothing
   * more is there — a line whose end is on disk is delivered whole. Bounded by the bytes on disk and
   * the caller's shutdown deadline (an emit waiting on a full ring ends when the ring closes).
   */
  private async finishOrphans(): Promise<void> {
    const orphaned = (fileId: string) => {
      const f = this.files.bySerial(fileId);
      return !f || f.gone || f.deleted;
    };
    // A line's rest is at most maxLineBytes; lines of the other stream may come between.
    const counters = this.parts.counters;
    const until = counters.bytesRead + 4 * this.config.maxLineBytes;
    try {
      while (counters.bytesRead < until) {
        const keys = this.merger.containersPendingFrom(orphaned);
        if (keys.size === 0) return;
        const heads = this.files.heads();
        let progressed = false;
        for (const key of keys) {
          const file = heads.get(key);
          if (file && !file.held && (await this.readOne(file, this.parts.clock.now()))) progressed = true;
        }
        if (!progressed) return;
      }
    } catch {
      // The ring closed under a waiting append (the shutdown deadline): what it did not take is read
      // again after a restart, from the checkpoints.
    }
  }

  private async pump(): Promise<void> {
    const { clock, log, counters } = this.parts;
    while (!this.stopping) {
      this.woken = false;
      let progressed = false;
      try {
        progressed = await this.turn();
      } catch (err) {
        if (this.stopping) break; // the ring closed under a waiting append at shutdown
        log.error("source turn failed", { error: err });
      }
      if (this.stopping) break;
      if (progressed || this.woken) {
        // Appends that do not wait resolve as microtasks: yield to the event loop between turns, or
        // watcher events, timers and the API would starve while a backlog is read.
        await new Promise<void>((resolve) => clock.soon(resolve));
        continue;
      }
      let tick: Timer | null = null;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        // Held and draining files and pending partials have deadlines; otherwise only events wake us.
        if (this.needsTick()) tick = clock.after(TICK_MS, () => this.notify());
      });
      (tick as Timer | null)?.cancel();
      counters.wakeups++;
      if (!this.stopping) await this.coalesce();
    }
  }

  private coalesce(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.parts.clock.after(READ_COALESCE_MS, done);
      const self = this;
      function done() {
        timer.cancel();
        self.cutCoalesce = null;
        resolve();
      }
      this.cutCoalesce = done;
    });
  }

  private needsTick(): boolean {
    if (this.merger.size > 0) return true;
    for (const f of this.files.open.values()) if (f.state === "draining" || f.held) return true;
    return false;
  }

  /** One round-robin pass: at most one slice per file. Returns whether anything moved. */
  private async turn(): Promise<boolean> {
    const clock = this.parts.clock;
    let progressed = false;
    let held = 0;
    let heads = this.files.heads();
    let stretchFrom: number | null = null;
    for (const file of [...this.files.open.values()]) {
      if (this.stopping) break;
      if (file.gone) continue;
      // Read now: an earlier file's emit may have waited for room in the ring (a fragment stamped
      // with the turn's start would look older than it is, and its line be flushed too early).
      let now = clock.now();
      stretchFrom ??= now;
      if (now - stretchFrom >= TURN_STRETCH_MS) {
        await new Promise<void>((resolve) => clock.soon(resolve));
        if (this.stopping) break;
        if (file.gone) continue;
        heads = this.files.heads(); // files may have rotated or closed meanwhile
        now = stretchFrom = clock.now();
      }
      const decision = this.parts.output.decide(file.info, now);
      if (decision === "skip") {
        this.discovery.skip(file);
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
      if (heads.get(file.containerKey) !== file) {
        file.blocked = true;
        continue;
      }
      if (file.blocked) {
        file.blocked = false;
        file.dirty = true;
      }
      if (!file.dirty && file.state === "active") continue;
      if (await this.readOne(file, now)) progressed = true;
    }
    this.parts.counters.filesHeld = held;
    if (this.stopping) return progressed;
    await this.flushPartials();
    return progressed;
  }

  /** Reads one slice of `file` at `now` and emits its lines; closes it once drained. Returns whether it moved. */
  private async readOne(file: TailedFile, now: number): Promise<boolean> {
    // Bytes of its container before this file were lost: a line pending across them ends there.
    if (this.files.passGap(file)) this.merger.endLines(file.containerKey);
    const lines = this.lines;
    lines.clear(); // one batch reused per slice: the pipeline is done with it when emit resolves
    const n = file.readSlice(this.readBuf, now, lines, this.parts.log);
    this.parts.counters.bytesRead += n;
    if (n === 0) file.dirty = false;
    let finished = false;
    if (n === 0 && file.state === "draining" && !file.gone && file.drained(now, DRAIN_GRACE_MS, this.files.byPath.get(file.livePath))) {
      // Its last line may lack "\n": the file will not grow, so that line is complete.
      // A pending partial stays pending: its continuation is in the successor.
      file.reader.finish(now, lines);
      finished = true;
    }
    const released = this.takeReleased();
    if (n > 0 || lines.length > 0 || finished || released.length > 0) {
      const seq = await this.emit(file, lines);
      this.markReleased(released, file, seq);
    }
    if (finished) this.files.retire(file); // its successor may read now
    return n > 0 || finished;
  }

  /**
   * Partials whose F never came are emitted whole after partialFlushMs — counted only while their
   * container has nothing left to read: a line is not cut because its continuation sits unread (in
   * a successor waiting for its turn, behind a full ring, in a held file). Lines ended by bytes lost
   * (a file given up unread) are emitted at once, as far as they were read.
   */
  private async flushPartials(): Promise<void> {
    if (this.merger.size === 0) return;
    const ended = this.merger.takeEnded(); // bytes after them lost: due at once
    const timedOut = this.merger.flush(this.parts.clock.now(), this.config.partialFlushMs, (key) => this.mayHaveMore(key));
    const flushed = ended.length === 0 ? timedOut : [...ended, ...timedOut];
    if (flushed.length === 0) return;
    const counters = this.parts.counters;
    counters.partialFlushTimeouts += timedOut.length;
    // The files these lines had fragments in are safe past them once the last of them is in the ring.
    const released = this.takeReleased();
    let last: { file: TailedFile; seq: number } | null = null;
    for (const line of flushed) {
      if (line.truncated) counters.linesTruncated++;
      const head = this.files.bySerial(line.fileId);
      // Emit through an open file of the same container when the head's file is closed.
      const target = head && !head.gone ? head : (this.files.openOf(head?.containerKey) ?? head);
      if (!target) continue;
      last = { file: target, seq: await this.emit(target, LineBatch.of(line)) };
      // Through a file closed already: what the pipeline keeps per open file it may drop again.
      if (target.gone) this.parts.output.closed?.(target.info);
    }
    if (last) this.markReleased(released, last.file, last.seq);
  }

  /**
   * Whether a container instance may still have bytes to read: one of its files has not been read to
   * its end (or is due for a look), waits for its predecessor, is held, is a rotated file not closed
   * yet (its successor may hold a line's continuation), has grown, or was rotated or deleted — looked
   * at through the descriptor and the path, as inotify may be late or gone. With none of its files
   * open any more, its directory is listed: a successor not seen yet is opened.
   */
  private mayHaveMore(key: string): boolean {
    let sawOpen = false;
    for (const f of [...this.files.open.values()]) {
      if (f.containerKey !== key) continue;
      if (f.dirty || f.blocked || f.held || f.state === "draining" || f.readPos < f.size) return true;
      f.refreshSize(); // may find it deleted: draining now, and its successor is looked for below
      if (f.readPos < f.size || (f.mem === null && !this.discovery.stillLive(f))) {
        f.dirty = true;
        return true;
      }
      sawOpen = true;
    }
    if (sawOpen) return false;
    for (const f of this.files.retired.values()) if (f.containerKey === key) return this.discovery.lookAgain(f.livePath);
    return false;
  }

  /** Hands lines over; marks the file with the sequence number that covers them, and returns it. */
  private async emit(file: TailedFile, lines: LineBatch): Promise<number> {
    this.emitting = true;
    let seq: number;
    try {
      seq = await this.parts.output.emit(file.info, lines);
    } finally {
      this.emitting = false;
    }
    this.mark(file, seq, this.durableSeq());
    return seq;
  }

  /**
   * The files whose pins lines completed or flushed just dropped, each expecting the mark of the record
   * that carries the line: a closed one is not done (and its checkpoint not passed over the line)
   * before that record is in the ring. If the hand-over fails, the mark never comes: the checkpoint
   * stays before the line.
   */
  private takeReleased(): TailedFile[] {
    const out: TailedFile[] = [];
    for (const serial of this.merger.takeReleased()) {
      const f = this.files.bySerial(serial);
      if (!f) continue;
      f.watermark.expect();
      out.push(f);
    }
    return out;
  }

  /** The records up to `seq` carry the lines that released these files (`emitted` is marked already). */
  private markReleased(released: TailedFile[], emitted: TailedFile, seq: number): void {
    const durable = this.durableSeq();
    for (const f of released) if (f !== emitted) this.mark(f, seq, durable);
  }

  /** Everything before the file's safe offset is covered by ring records up to `seq`. */
  private mark(f: TailedFile, seq: number, durable: number): void {
    const safe = f.safePoint(this.merger);
    f.watermark.mark(seq, safe.offset, safe.streams);
    if (seq <= durable && f.watermark.advance(durable)) this.parts.checkpoints.markDirty(); // filtered lines: nothing to wait for
  }
}
