// An open ring file (the Ring of types.ts): one mapped file and the parts that share its positions —
// the writer (ring-writer.ts), the reader and its acknowledgements (ring-reader.ts) and the syncer
// (ring-sync.ts). Opening scans it (recovery.ts) and makes what the scan found durable.
import { join } from "node:path";
import type { Logger } from "../log.ts";
import type { Clock } from "../platform/types.ts";
import { RingError } from "./errors.ts";
import { DATA_OFFSET, MAX_EPOCH, maxPayloadIn, RECORD_HEADER_BYTES, pickHeader, type RingHeader } from "./format.ts";
import { noteScan, type ScanCounts } from "./ring-files.ts";
import { RingReader } from "./ring-reader.ts";
import { RingPositions, RingRegion } from "./ring-state.ts";
import { RingSyncer } from "./ring-sync.ts";
import { RingWriter } from "./ring-writer.ts";
import { type ScanResult, scanRing } from "./recovery.ts";
import type { PackedRecords, Ring, RingFileHandle, RingRanges, RingStats, RingStorage, RingTraffic } from "./types.ts";

/** What the open found and did, for the statistics. */
export interface RecoveryCounts extends ScanCounts {
  /** A file that was no ring file (or both headers damaged), moved aside: its records are not read. */
  movedAsideFiles: number;
  movedAsideBytes: number;
}

/** Extra statistics beyond RingStats. */
export interface RingExtraStats {
  /** Files moved aside at open (not a ring file, or both headers damaged) and their size. */
  recoveryMovedAsideFiles: number;
  recoveryMovedAsideBytes: number;
  fileBytes: number;
  appendedBytes: number;
  recoveryCutRecords: number;
  syncTotalMs: number;
  path: string;
}

export interface RingFileOptions {
  syncIntervalMs: number;
  rebaseAtBytes: number;
  clock: Clock;
  traffic?: RingTraffic;
  log: Logger;
}

export class RingFile implements Ring {
  private readonly p: RingPositions;
  private readonly writer: RingWriter;
  private readonly reader: RingReader;
  private readonly syncer: RingSyncer;

  /** Maps the file `name`, scans it and syncs what the scan found. */
  static async open(storage: RingStorage, name: string, o: RingFileOptions, recovery: RecoveryCounts): Promise<RingFile> {
    const path = join(storage.dir, name);
    const file = storage.open(name);
    let map: Uint8Array;
    let h: RingHeader;
    try {
      map = file.map();
      const picked = pickHeader(new DataView(map.buffer, map.byteOffset, DATA_OFFSET));
      if (picked.kind !== "valid") throw new RingError(`ring file ${path} lost its header while opening`);
      h = picked.header;
    } catch (e) {
      file.close();
      throw e;
    }
    const region = new RingRegion(map, h.fileBytes);
    const scan = scanRing(region.data, region.D, h);
    noteScan(recovery, scan, o.log, path);
    const ring = new RingFile(path, file, region, h, scan, o, recovery);
    if (scan.cutRecords || scan.cutBytes) ring.zeroTail(h);
    // Make what the scan found durable (after a SIGKILL it may sit in the page cache only) and
    // record the recovered positions, so that later opens see the same ring.
    ring.syncer.forceHeader = true;
    await ring.sync();
    o.log.info("ring opened", {
      path,
      bytes: h.fileBytes,
      records: ring.stats().records,
      alreadyAcknowledged: scan.ackedRecords,
      usedBytes: scan.writePos - scan.readPos,
      readSeq: scan.readSeq,
      nextSeq: scan.nextSeq,
    });
    return ring;
  }

  private constructor(
    readonly path: string,
    private readonly file: RingFileHandle,
    private readonly region: RingRegion,
    h: RingHeader,
    scan: ScanResult,
    o: RingFileOptions,
    private readonly recovery: RecoveryCounts,
  ) {
    const p = (this.p = new RingPositions(scan));
    // After an unclean end, new records carry a higher epoch than anything left of the old tail.
    const epoch = scan.unclean ? Math.min(h.epoch + 1, MAX_EPOCH) : h.epoch;
    const { clock, log, traffic } = o;
    this.syncer = new RingSyncer({
      region,
      positions: p,
      file,
      generation: h.generation,
      epoch,
      clock,
      log,
      path,
      syncIntervalMs: o.syncIntervalMs,
      rebaseAtBytes: o.rebaseAtBytes,
      ackedRanges: () => this.reader.ackedRanges(),
      synced: () => this.writer.wakeAppenders(),
    });
    this.reader = new RingReader({
      region,
      positions: p,
      traffic,
      acknowledged: (released) => {
        this.syncer.armTimer();
        if (released && this.writer.blocked) this.syncer.syncSoon();
      },
    });
    this.writer = new RingWriter({
      region,
      positions: p,
      file,
      epoch,
      clock,
      traffic,
      log,
      path,
      wrote: () => {
        this.syncer.armTimer();
        this.reader.wake();
      },
      needSpace: () => {
        if (p.durableReadPos < p.readPos) this.syncer.syncSoon();
      },
    });
  }

  /** After a cut, clears the bytes past the new end that an earlier write may have left. */
  private zeroTail(h: RingHeader): void {
    const { D, data } = this.region;
    const p = this.p;
    const end = Math.min(Math.max(h.writePos, p.writePos + RECORD_HEADER_BYTES), p.readPos + D);
    for (let pos = p.writePos; pos < end; ) {
      const phys = pos % D;
      const n = Math.min(end - pos, D - phys);
      data.fill(0, phys, phys + n);
      pos += n;
    }
  }

  appendPacked(records: PackedRecords): Promise<number> {
    return this.writer.appendPacked(records);
  }

  lastSeq(): number {
    return this.p.nextSeq - 1;
  }

  maxRecordBytes(): number {
    return maxPayloadIn(this.region.D);
  }

  readRanges(maxRecords: number, maxBytes: number): RingRanges | null {
    return this.reader.readRanges(maxRecords, maxBytes);
  }

  waitForData(): Promise<void> {
    return this.reader.waitForData();
  }

  ack(firstSeq: number, count: number): void {
    this.reader.ack(firstSeq, count);
  }

  forEachUnread(visit: (seq: number, data: Uint8Array, start: number, end: number) => void): void {
    this.reader.forEachUnread(visit);
  }

  sync(): Promise<void> {
    return this.syncer.sync();
  }

  durableSeq(): number {
    return this.p.durable;
  }

  onDurable(listener: (seq: number) => void): () => void {
    return this.syncer.onDurable(listener);
  }

  stats(): RingStats & RingExtraStats {
    const { p, writer, syncer, recovery } = this;
    return {
      capacityBytes: this.region.D,
      usedBytes: p.writePos - p.readPos,
      records: p.nextSeq - p.readSeq - this.reader.ackedAhead,
      nextSeq: p.nextSeq,
      readSeq: p.readSeq,
      durableReadSeq: p.durableReadSeq,
      durableSeq: p.durable,
      appendedRecords: writer.appendedRecords,
      ackedRecords: this.reader.ackedRecords,
      recoverySkippedRecords: recovery.skippedRecords,
      recoverySkippedBytes: recovery.skippedBytes,
      recoveryCutBytes: recovery.cutBytes,
      recoveryCutRecords: recovery.cutRecords,
      recoveryMovedAsideFiles: recovery.movedAsideFiles,
      recoveryMovedAsideBytes: recovery.movedAsideBytes,
      blockedMs: writer.totalBlockedMs(),
      full: writer.blocked,
      lastSyncMs: syncer.lastSyncMs,
      unsyncedMs: syncer.unsyncedMs(),
      syncs: syncer.syncs,
      syncTotalMs: syncer.syncTotalMs,
      fileBytes: this.region.fileBytes,
      appendedBytes: writer.appendedBytes,
      path: this.path,
    };
  }

  /** Final sync (the header that says "closed cleanly"), then the file is closed; the mapping goes with the ring. */
  async close(): Promise<void> {
    if (this.p.closed) {
      await this.syncer.settled();
      return;
    }
    this.p.closed = true;
    this.syncer.cancelTimer();
    this.writer.wakeAppenders(); // they see `closed` and reject
    this.reader.wake();
    try {
      await this.syncer.closingSync();
    } finally {
      this.file.close();
      this.syncer.detach();
    }
  }
}
