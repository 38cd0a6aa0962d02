// The ring's durability: syncIntervalMs after the first change — an append or an acknowledgement —
// (or at once when an appender waits for room), a header goes into the slot that does not hold the
// last durable one and a datasync makes it and every record before it durable; then the durable
// listeners hear of it. The header records the read position and the acknowledged ranges beyond
// it, so a restart sends again only what was acknowledged since. A failed
// datasync puts the next header into the same slot again, so the other slot keeps the last header
// known to be on disk (docs/ring-format.md).
import type { Logger } from "../log.ts";
import type { Clock, Timer } from "../platform/types.ts";
import { RingError, describeIoError } from "./errors.ts";
import { FLAG_CLOSED, writeHeaderSlot } from "./format.ts";
import type { RingPositions, RingRegion } from "./ring-state.ts";
import type { RingFileHandle } from "./types.ts";

/** Positions are rebased below this (2^48 bytes: years at any real rate, far from 2^53). */
export const REBASE_AT_BYTES = 2 ** 48;

export interface RingSyncerOptions {
  region: RingRegion;
  positions: RingPositions;
  file: RingFileHandle;
  /** The header generation found at open. */
  generation: number;
  epoch: number;
  syncIntervalMs: number;
  rebaseAtBytes: number;
  clock: Clock;
  log: Logger;
  path: string;
  /** The acknowledged ranges beyond the read position now (flat [start, end) pairs, lowest first). */
  ackedRanges(): number[];
  /** A sync completed: room the reader released may now be written. */
  synced(): void;
}

export class RingSyncer {
  private readonly p: RingPositions;
  private generation: number;
  /** Write a header at the next sync even if nothing changed (recovery, close, a failed sync). */
  forceHeader = false;
  private syncing: Promise<void> | null = null;
  private syncAgain = false;
  private timer: Timer | null = null;
  /** positions.ackChanges when the last header that reached the disk was written. */
  private syncedAckChanges = 0;
  private warnedRangesLeftOut = false;
  /** False once the file is closed: nothing more to sync. */
  private open = true;
  private readonly durableListeners = new Set<(seq: number) => void>();
  syncs = 0;
  lastSyncMs = 0;
  syncTotalMs = 0;
  /**
   * When the header of the last completed sync was taken (performance.now(), as lastSyncMs is
   * timed): every change before it is durable. A figure for /status, never a decision.
   */
  private durableAsOf = performance.now();

  constructor(private readonly o: RingSyncerOptions) {
    this.p = o.positions;
    this.generation = o.generation;
  }

  /**
   * Milliseconds since the header of the last completed sync was taken, while a change (an append
   * or an acknowledgement) is not yet durable; 0 when none is. A crash now reads again and sends
   * again what changed in them: about syncIntervalMs plus a datasync, longer when the disk is slow
   * or the process waits for a CPU (the timer fires late).
   */
  unsyncedMs(): number {
    return this.dirty() ? Math.max(0, Math.round(performance.now() - this.durableAsOf)) : 0;
  }

  onDurable(listener: (seq: number) => void): () => void {
    this.durableListeners.add(listener);
    return () => this.durableListeners.delete(listener);
  }

  /** Syncs syncIntervalMs from now, unless a sync is already scheduled. */
  armTimer(): void {
    if (this.timer || this.p.closed) return;
    this.timer = this.o.clock.after(this.o.syncIntervalMs, () => {
      this.timer = null;
      this.sync().catch((e) => this.o.log.error("ring sync failed", { path: this.o.path, error: e }));
    });
  }

  cancelTimer(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Syncs now, or right after the sync under way. */
  syncSoon(): void {
    if (this.syncing) {
      this.syncAgain = true; // run another as soon as this one is done
      return;
    }
    this.sync().catch((e) => this.o.log.error("ring sync failed", { path: this.o.path, error: e }));
  }

  sync(): Promise<void> {
    if (!this.open) return Promise.resolve();
    if (this.syncing) return this.syncing.then(() => (this.dirty() ? this.sync() : undefined));
    if (!this.dirty()) return Promise.resolve();
    const p = this.doSync().finally(() => {
      this.syncing = null;
      if (this.syncAgain) {
        this.syncAgain = false;
        if (!this.p.closed) this.syncSoon();
      }
    });
    this.syncing = p;
    return p;
  }

  /** The final sync of close(): the header that says "closed cleanly, nothing after this". */
  async closingSync(): Promise<void> {
    if (this.syncing) await this.syncing.catch(() => {});
    this.forceHeader = true;
    await this.sync();
  }

  /** Waits for a sync under way (a second close()). */
  async settled(): Promise<void> {
    if (this.syncing) await this.syncing.catch(() => {});
  }

  /** The file is closed: later syncs do nothing. */
  detach(): void {
    this.open = false;
  }

  private dirty(): boolean {
    const p = this.p;
    return p.nextSeq - 1 > p.durable || p.readPos !== p.syncedReadPos || p.ackChanges !== this.syncedAckChanges || this.forceHeader;
  }

  /**
   * Keeps logical positions far below 2^53: subtracts a whole number of laps from all of them
   * (physical offsets, `pos % D`, do not change). Runs only between syncs.
   */
  private rebase(): void {
    const p = this.p;
    if (p.durableReadPos < this.o.rebaseAtBytes) return;
    p.rebase(Math.floor(p.durableReadPos / this.o.region.D) * this.o.region.D);
  }

  private async doSync(): Promise<void> {
    this.rebase();
    const p = this.p;
    const seq = p.nextSeq - 1;
    const readPos = p.readPos;
    const readSeq = p.readSeq;
    const ackChanges = p.ackChanges;
    const acked = this.o.ackedRanges();
    this.forceHeader = false;
    this.generation++;
    const kept = writeHeaderSlot(this.o.region.hv, (this.generation % 2) as 0 | 1, {
      fileBytes: this.o.region.fileBytes,
      generation: this.generation,
      readPos,
      readSeq,
      writePos: p.writePos,
      nextSeq: p.nextSeq,
      epoch: this.o.epoch,
      // Only the final sync of close() says "closed": appends are refused from then on.
      flags: p.closed ? FLAG_CLOSED : 0,
      acked,
    });
    if (kept < acked.length / 2 && !this.warnedRangesLeftOut) {
      this.warnedRangesLeftOut = true;
      this.o.log.warn("more acknowledged ranges than a ring header holds; after a restart the rest are sent again", { path: this.o.path, ranges: acked.length / 2, kept });
    }
    const t0 = performance.now();
    try {
      await this.o.file.datasync(); // on Linux this writes back the pages dirtied through the mapping
    } catch (e) {
      // Not durable. Write the next header into this same slot again, so the other slot keeps the
      // last header known to be on disk.
      this.generation--;
      this.forceHeader = true;
      throw new RingError(`fdatasync of the ring file ${this.o.path} failed: ${describeIoError(e)}`);
    }
    const ms = performance.now() - t0;
    this.syncs++;
    this.lastSyncMs = ms;
    this.syncTotalMs += ms;
    this.durableAsOf = t0; // the header's fields were taken just before, in this same turn
    p.syncedReadPos = readPos;
    this.syncedAckChanges = ackChanges;
    if (readPos > p.durableReadPos) {
      p.durableReadPos = readPos;
      p.durableReadSeq = readSeq;
    }
    if (seq > p.durable) {
      p.durable = seq;
      this.notifyDurable(seq);
    }
    if (this.dirty()) this.armTimer();
    this.o.synced(); // a waiting appender that still finds no room asks for another sync
  }

  private notifyDurable(seq: number): void {
    for (const l of this.durableListeners) {
      try {
        l(seq);
      } catch (e) {
        this.o.log.error("durable listener threw", { error: e });
      }
    }
  }
}
