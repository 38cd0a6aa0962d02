// The ring's producer side: appends records at the write position, laid out in a staging buffer
// and written with one pwrite per contiguous run, and makes appenders wait (in order) while the
// ring is full.
import type { Logger } from "../log.ts";
import type { Clock } from "../platform/types.ts";
import { RingClosedError, RingError, describeIoError } from "./errors.ts";
import { DATA_OFFSET, KIND_DATA, KIND_WRAP, RECORD_HEADER_BYTES, recordSpan, writeRecordHeader } from "./format.ts";
import { type RingPositions, type RingRegion, Wakeup } from "./ring-state.ts";
import type { PackedRecords, RingFileHandle, RingTraffic } from "./types.ts";

/** Staging buffer for appends: a batch of records from one slice of a file fits in one pwrite. */
const STAGE_BYTES = 1 << 20;

/** Records to append, whatever holds them. */
interface RecordList {
  count: number;
  at(i: number): Uint8Array;
  lengthOf(i: number): number;
}

/** Records [from..] of a list, copied into memory of their own (one buffer). */
function copyRest(list: RecordList, from: number): RecordList {
  let total = 0;
  for (let i = from; i < list.count; i++) total += list.lengthOf(i);
  const bytes = new Uint8Array(total);
  const starts = new Uint32Array(list.count - from + 1);
  let at = 0;
  for (let i = from; i < list.count; i++) {
    const p = list.at(i);
    starts[i - from] = at;
    bytes.set(p, at);
    at += p.length;
  }
  starts[list.count - from] = at;
  return { count: list.count - from, at: (i) => bytes.subarray(starts[i]!, starts[i + 1]!), lengthOf: (i) => starts[i + 1]! - starts[i]! };
}

export interface RingWriterOptions {
  region: RingRegion;
  positions: RingPositions;
  file: RingFileHandle;
  /** The epoch new records carry (recovery.ts). */
  epoch: number;
  clock: Clock;
  traffic?: RingTraffic;
  log: Logger;
  path: string;
  /** Records were written: arm the sync, wake the reader. */
  wrote(): void;
  /** An append waits for room: acknowledged space becomes writable once a header saying so is durable. */
  needSpace(): void;
}

export class RingWriter {
  /** Records are laid out here, then written to the file in one pwrite (see writeSome). */
  private readonly stage = new Uint8Array(STAGE_BYTES);
  private readonly stageView = new DataView(this.stage.buffer);
  private readonly region: RingRegion;
  private readonly p: RingPositions;
  private readonly space = new Wakeup();
  private warnedWriteError = false;
  private pendingAppends = 0;
  private appendTail: Promise<unknown> = Promise.resolve();
  private blockedSince: number | null = null;
  private blockedMs = 0;
  appendedRecords = 0;
  appendedBytes = 0;

  constructor(private readonly o: RingWriterOptions) {
    this.region = o.region;
    this.p = o.positions;
  }

  /** True while an append waits for room. */
  get blocked(): boolean {
    return this.blockedSince !== null;
  }

  /** Milliseconds appenders spent waiting for room, this wait included. */
  totalBlockedMs(): number {
    return this.blockedMs + (this.blockedSince === null ? 0 : this.o.clock.now() - this.blockedSince);
  }

  appendPacked(records: PackedRecords): Promise<number> {
    const { bytes, ends } = records;
    const startOf = (i: number) => (i === 0 ? 0 : ends[i - 1]!);
    return this.appendList({ count: records.count, at: (i) => bytes.subarray(startOf(i), ends[i]!), lengthOf: (i) => ends[i]! - startOf(i) });
  }

  /** Wakes waiting appenders: room was made durable, or the ring closed (they see it and reject). */
  wakeAppenders(): void {
    if (this.blockedSince !== null) {
      this.blockedMs += this.o.clock.now() - this.blockedSince;
      this.blockedSince = null;
    }
    this.space.fire();
  }

  /**
   * Writes the records now if they all fit, else they wait, in order behind earlier waiting
   * appends, until they all do: an append is in the ring whole or not at all, so the mark its caller
   * leaves once it resolves covers everything of it a crash could replay (docs/ring-format.md,
   * "Bounded replay"). Only records that could not all fit even in an empty ring are written as room
   * frees. The caller may reuse the records' memory once this returns, so waiting ones are copied.
   */
  private appendList(list: RecordList): Promise<number> {
    if (this.p.closed) return Promise.reject(new RingClosedError());
    const D = this.region.D;
    let total = 0;
    let largest = 0;
    for (let i = 0; i < list.count; i++) {
      const n = list.lengthOf(i);
      const span = recordSpan(n);
      if (span > D) return Promise.reject(new RingError(`a record of ${n} bytes cannot fit in a ring of ${D} bytes`));
      total += span;
      largest = Math.max(largest, span);
    }
    // All of it fits in an empty ring, whatever the end of a lap wastes (less than one record).
    const need = total + largest;
    const whole = need <= D;
    let start = 0;
    if (this.pendingAppends === 0 && (!whole || this.fitsNow(list, need))) {
      start = this.writeSome(list, 0);
      if (start === list.count) return Promise.resolve(this.p.nextSeq - 1);
    }
    const rest = copyRest(list, start);
    this.pendingAppends++;
    const p = this.appendTail.then(() => this.appendBlocking(rest, whole ? need : 0));
    const done = p.finally(() => {
      this.pendingAppends--;
    });
    this.appendTail = done.catch(() => {});
    return done;
  }

  /** `need`: the room that surely holds all of `list` (0: it is written as room frees, see appendList). */
  private async appendBlocking(list: RecordList, need: number): Promise<number> {
    let i = 0;
    for (;;) {
      if (this.p.closed) throw new RingClosedError();
      if (need === 0 || this.fitsNow(list, need)) i = this.writeSome(list, i);
      if (i === list.count) return this.p.nextSeq - 1;
      await this.waitForSpace();
    }
  }

  /**
   * Whether every record of `list` fits now, laid out as writeSome lays them (a lap's end skipped):
   * surely when `need` bytes are free, else counted record by record.
   */
  private fitsNow(list: RecordList, need: number): boolean {
    const D = this.region.D;
    const p = this.p;
    if (need <= D - (p.writePos - p.durableReadPos)) return true;
    let pos = p.writePos;
    for (let i = 0; i < list.count; i++) {
      const span = recordSpan(list.lengthOf(i));
      const phys = pos % D;
      if (phys + span > D) pos += D - phys;
      if (pos + span - p.durableReadPos > D) return false;
      pos += span;
    }
    return true;
  }

  /**
   * Writes records [from..] while they fit; returns the index of the first one that did not.
   * Records are laid out in a staging buffer exactly as in the file and written with one pwrite
   * per contiguous run, not stored through the mapping: a store into a shared file mapping faults
   * every page in (and again after each writeback write-protects it), which cost 1.6–4× the CPU
   * of pwrite for the same bytes (bench/ring-write.bench.ts). The page cache is shared, so
   * readers see the records through the mapping as soon as the pwrite returns.
   */
  private writeSome(list: RecordList, from: number): number {
    const { D, dv, data } = this.region;
    const p = this.p;
    const stage = this.stage;
    const sv = this.stageView;
    const epoch = this.o.epoch;
    let i = from;
    let wrote = false;
    let bytes = 0;
    let runPhys = 0; // where the staged run starts in the data region
    let runLen = 0;
    for (; i < list.count; i++) {
      const payload = list.at(i);
      const span = recordSpan(payload.length);
      let pos = p.writePos;
      let phys = pos % D;
      if (phys + span > D) {
        // Not enough room before the end of the lap: the record starts the next lap.
        const waste = D - phys;
        if (pos + waste - p.durableReadPos > D) break;
        this.flushStage(runPhys, runLen);
        if (waste >= RECORD_HEADER_BYTES) writeRecordHeader(dv, phys, KIND_WRAP, p.nextSeq, 0, null, epoch);
        if (p.readPos === pos) {
          // Nothing unacknowledged: the skipped bytes belong to no one (otherwise a record larger
          // than what is left before the end could wait forever on an empty ring).
          p.readPos = pos + waste;
          if (p.cursorPos === pos) p.cursorPos = p.readPos;
        }
        pos = p.writePos = pos + waste;
        phys = 0;
        runLen = 0;
        wrote = true;
      }
      if (pos + span - p.durableReadPos > D) break;
      if (span > stage.length) {
        // Larger than the staging buffer (a huge line): straight into the mapping.
        this.flushStage(runPhys, runLen);
        data.set(payload, phys + RECORD_HEADER_BYTES);
        writeRecordHeader(dv, phys, KIND_DATA, p.nextSeq, payload.length, payload, epoch);
        runLen = 0;
      } else {
        // A run is contiguous in the file: it ends at a full staging buffer and at the end of a lap
        // (also when a record ends exactly there, so the next one starts at offset 0).
        if (runLen + span > stage.length || runPhys + runLen !== phys) {
          this.flushStage(runPhys, runLen);
          runLen = 0;
        }
        if (runLen === 0) runPhys = phys;
        stage.set(payload, runLen + RECORD_HEADER_BYTES);
        writeRecordHeader(sv, runLen, KIND_DATA, p.nextSeq, payload.length, payload, epoch);
        const end = runLen + RECORD_HEADER_BYTES + payload.length;
        if (end < runLen + span) stage.fill(0, end, runLen + span); // padding: zeros, not stale bytes
        runLen += span;
      }
      p.writePos = pos + span;
      p.nextSeq++;
      bytes += payload.length;
      wrote = true;
    }
    this.flushStage(runPhys, runLen);
    this.appendedRecords += i - from;
    this.appendedBytes += bytes;
    if (wrote) {
      this.o.wrote();
      this.o.traffic?.moved(bytes);
    }
    return i;
  }

  /** Writes the staged run of `len` bytes at data-region offset `phys` (pwrite; the mapping sees it). */
  private flushStage(phys: number, len: number): void {
    if (len === 0) return;
    let done = 0;
    try {
      while (done < len) done += this.o.file.write(this.stage, done, len - done, DATA_OFFSET + phys + done);
    } catch (err) {
      // The space is allocated, so this is an I/O error. Storing through the mapping is what the
      // ring did before staging; it keeps the ring's state and the bytes consistent.
      if (!this.warnedWriteError) this.o.log.warn("pwrite to the ring file failed; writing through the mapping", { path: this.o.path, error: describeIoError(err) });
      this.warnedWriteError = true;
      this.region.data.set(this.stage.subarray(done, len), phys + done);
    }
  }

  private waitForSpace(): Promise<void> {
    this.blockedSince ??= this.o.clock.now();
    this.o.needSpace();
    return this.space.wait();
  }
}
