// The ring's consumer side: the cursor that hands records out (as ranges of the data region) and
// the acknowledgements that move the read position over the contiguous acknowledged prefix. The
// acknowledged ranges beyond it go into every header (ring-sync.ts); after a restart they come
// back as holes (recovery.ts) that the cursor steps over.
import { AckedRanges } from "./acked.ts";
import { RECORD_HEADER_BYTES, lapEndAt, recordLength, recordSpan } from "./format.ts";
import { type RingPositions, type RingRegion, Wakeup } from "./ring-state.ts";
import type { RingRanges, RingTraffic } from "./types.ts";

export interface RingReaderOptions {
  region: RingRegion;
  positions: RingPositions;
  traffic?: RingTraffic;
  /** The read position moved (`released`: room for the writer once a header says so) or records beyond it were acknowledged: a header is due. */
  acknowledged(released: boolean): void;
}

export class RingReader {
  private readonly region: RingRegion;
  private readonly p: RingPositions;
  private readonly acked = new AckedRanges();
  private readonly data = new Wakeup();
  ackedRecords = 0;

  constructor(private readonly o: RingReaderOptions) {
    this.region = o.region;
    this.p = o.positions;
    // Records lost to damage, or acknowledged before a restart: nobody will send them.
    for (const g of this.p.gaps.values()) this.acked.add(g.fromSeq, g.toSeq);
    // A hole right at the read position: pass it now (the open's sync records that).
    const target = this.takeAckedPrefix();
    if (target > this.p.readSeq) this.advanceRead(target);
  }

  /** Acknowledged records beyond the read position (holes included). */
  get ackedAhead(): number {
    return this.acked.size;
  }

  /** The acknowledged ranges beyond the read position, flat [start, end) pairs, for the header. */
  ackedRanges(): number[] {
    return this.acked.toArray();
  }

  /** Wakes waitForData(): records were appended, or the ring closed. */
  wake(): void {
    this.data.fire();
  }

  waitForData(): Promise<void> {
    const p = this.p;
    if (p.closed || p.cursorSeq < p.nextSeq) return Promise.resolve();
    return this.data.wait();
  }

  readRanges(maxRecords: number, maxBytes: number): RingRanges | null {
    const p = this.p;
    if (p.closed || p.cursorSeq >= p.nextSeq) return null;
    const { D, dv } = this.region;
    // Sized for the records available (bounded by maxRecords); trimmed below when fewer are taken.
    let offsets = new Uint32Array(2 * Math.min(maxRecords, p.nextSeq - p.cursorSeq));
    let count = 0;
    let bytes = 0;
    let firstSeq = 0;
    while (p.cursorSeq < p.nextSeq && count < maxRecords) {
      const pos = p.cursorPos;
      if (p.gaps.size) {
        const g = p.gaps.get(pos);
        // A hole may take no bytes (then, once passed, the cursor is still at `pos`) or no records.
        if (g && (g.toPos !== pos || p.cursorSeq < g.toSeq)) {
          if (count) break; // a batch is consecutive: stop before the hole
          p.cursorPos = g.toPos;
          p.cursorSeq = g.toSeq;
          continue;
        }
      }
      const lapEnd = lapEndAt(dv, D, pos);
      if (lapEnd) {
        p.cursorPos = pos + lapEnd;
        continue;
      }
      const phys = pos % D;
      const len = recordLength(dv, phys);
      if (count && bytes + len > maxBytes) break;
      if (!count) firstSeq = p.cursorSeq;
      offsets[2 * count] = phys + RECORD_HEADER_BYTES;
      offsets[2 * count + 1] = phys + RECORD_HEADER_BYTES + len;
      count++;
      bytes += len;
      p.cursorPos = pos + recordSpan(len);
      p.cursorSeq++;
    }
    if (!count) return null;
    if (2 * count < offsets.length) offsets = offsets.subarray(0, 2 * count);
    this.o.traffic?.moved(bytes);
    return { firstSeq, count, bytes, data: this.region.dataBuffer, offsets };
  }

  /**
   * Calls visit for every record from the read position on that is not acknowledged (what a
   * restart would hand out), oldest first, without handing anything out.
   */
  forEachUnread(visit: (seq: number, data: Uint8Array, start: number, end: number) => void): void {
    const p = this.p;
    const { D, dv, data } = this.region;
    let pos = p.readPos;
    let seq = p.readSeq;
    while (seq < p.nextSeq) {
      if (p.gaps.size) {
        const g = p.gaps.get(pos);
        if (g && (g.toPos !== pos || seq < g.toSeq)) {
          pos = g.toPos;
          seq = g.toSeq;
          continue;
        }
      }
      const lapEnd = lapEndAt(dv, D, pos);
      if (lapEnd) {
        pos += lapEnd;
        continue;
      }
      const phys = pos % D;
      const len = recordLength(dv, phys);
      visit(seq, data, phys + RECORD_HEADER_BYTES, phys + RECORD_HEADER_BYTES + len);
      pos += recordSpan(len);
      seq++;
    }
  }

  ack(firstSeq: number, count: number): void {
    const p = this.p;
    if (p.closed) return;
    if (!(count > 0)) return;
    const end = firstSeq + count;
    if (!Number.isSafeInteger(firstSeq) || !Number.isSafeInteger(end) || firstSeq < 1 || end > p.nextSeq) {
      throw new RangeError(`ack(${firstSeq}, ${count}) covers records never appended (last is ${p.nextSeq - 1})`);
    }
    const start = Math.max(firstSeq, p.readSeq);
    if (start >= end) return;
    let target: number;
    let added: number;
    if (start === p.readSeq && this.acked.rangeCount === 0) {
      added = end - start;
      target = end;
    } else {
      added = this.acked.add(start, end);
      target = this.takeAckedPrefix();
    }
    if (added === 0) return; // acknowledged before
    this.ackedRecords += added;
    p.ackChanges++;
    const released = target > p.readSeq;
    if (released) this.advanceRead(target);
    this.o.acknowledged(released);
  }

  /** Removes the ranges that continue the read position; returns where the acknowledged prefix ends. */
  private takeAckedPrefix(): number {
    let target = this.p.readSeq;
    // Ranges may chain: a hole's range can follow directly.
    for (let t = this.acked.takePrefix(target); t !== target; t = this.acked.takePrefix(target)) target = t;
    return target;
  }

  /** Moves the read position over records up to (not including) sequence number `to`. */
  private advanceRead(to: number): void {
    const p = this.p;
    const { D, dv } = this.region;
    let pos = p.readPos;
    let seq = p.readSeq;
    while (seq < to) {
      if (p.gaps.size) {
        const g = p.gaps.get(pos);
        if (g) {
          p.gaps.delete(pos);
          pos = g.toPos;
          seq = g.toSeq;
          continue;
        }
      }
      const lapEnd = lapEndAt(dv, D, pos);
      if (lapEnd) {
        pos += lapEnd;
        continue;
      }
      pos += recordSpan(recordLength(dv, pos % D));
      seq++;
    }
    // Caught up with the writer: what lies between is at most a skipped lap end, which belongs to
    // no record. Release it too, or a record that waits for it would wait forever.
    if (seq === p.nextSeq) {
      pos = p.writePos;
      p.gaps.clear();
    }
    p.readPos = pos;
    p.readSeq = seq;
    if (p.cursorSeq <= seq) {
      // The cursor never lags the read position (the bytes behind it may be rewritten).
      p.cursorSeq = seq;
      p.cursorPos = pos;
    }
  }
}
