// What the ring's parts (writer, reader, syncer) share: the layout of the mapped file and the
// positions in it.
//
// Positions are logical byte counts that only grow; the physical offset in the data region is
// `pos % D`. Three positions move forward: the write position (appends), the reader cursor
// (records handed out by readRanges, this process only) and the read position (the contiguous
// acked prefix). A fourth, the *durable* read position, is the read position of the last header that
// a completed datasync put on disk: the writer never overwrites bytes at or after it. So whichever
// header copy survives a crash, every record from its read position on is still intact.
import { DATA_OFFSET, dataBytesOf } from "./format.ts";
import type { Gap, ScanResult } from "./recovery.ts";

/** The mapped file: two header slots, then the data region of D bytes. */
export class RingRegion {
  /** The header slots. */
  readonly hv: DataView;
  readonly data: Uint8Array;
  readonly dv: DataView;
  /** The data region as a Buffer (same memory), handed out by readRanges. */
  readonly dataBuffer: Buffer;
  readonly D: number;

  constructor(
    map: Uint8Array,
    readonly fileBytes: number,
  ) {
    this.hv = new DataView(map.buffer, map.byteOffset, DATA_OFFSET);
    this.D = dataBytesOf(fileBytes);
    this.data = map.subarray(DATA_OFFSET, DATA_OFFSET + this.D);
    this.dv = new DataView(this.data.buffer, this.data.byteOffset, this.D);
    this.dataBuffer = Buffer.from(this.data.buffer, this.data.byteOffset, this.D);
  }
}

export class RingPositions {
  readPos: number;
  readSeq: number;
  durableReadPos: number;
  /** The sequence number at durableReadPos: a restart hands out nothing older. */
  durableReadSeq: number;
  /** The read position in the last header a completed datasync put on disk. */
  syncedReadPos: number;
  cursorPos: number;
  cursorSeq: number;
  writePos: number;
  nextSeq: number;
  /** The highest sequence number known to be on disk. */
  durable: number;
  /**
   * Holes found at open, by the logical position where they start: damage, and records the header
   * listed as acknowledged. Nobody reads them; the read position passes over them.
   */
  readonly gaps = new Map<number, Gap>();
  /** +1 whenever acknowledgements change: a header recording them is due. */
  ackChanges = 0;
  closed = false;

  constructor(scan: ScanResult) {
    this.readPos = this.durableReadPos = this.syncedReadPos = this.cursorPos = scan.readPos;
    this.readSeq = this.cursorSeq = this.durableReadSeq = scan.readSeq;
    this.writePos = scan.writePos;
    this.nextSeq = scan.nextSeq;
    this.durable = scan.readSeq - 1;
    for (const g of scan.gaps) this.gaps.set(g.fromPos, g);
  }

  /** Subtracts `base` (a whole number of laps) from every position; physical offsets do not change. */
  rebase(base: number): void {
    this.readPos -= base;
    this.durableReadPos -= base;
    this.syncedReadPos -= base;
    this.cursorPos -= base;
    this.writePos -= base;
    if (this.gaps.size) {
      const moved = [...this.gaps.values()].map((g) => ({ ...g, fromPos: g.fromPos - base, toPos: g.toPos - base }));
      this.gaps.clear();
      for (const g of moved) this.gaps.set(g.fromPos, g);
    }
  }
}

/** One promise that everyone waiting shares, settled by fire(); the next wait() makes a new one. */
export class Wakeup {
  private pending: { promise: Promise<void>; resolve: () => void } | null = null;

  wait(): Promise<void> {
    if (!this.pending) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.pending = { promise, resolve };
    }
    return this.pending.promise;
  }

  fire(): void {
    const w = this.pending;
    if (!w) return;
    this.pending = null;
    w.resolve();
  }
}
