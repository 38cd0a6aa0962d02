// The memory-mapped ring file (SPEC §5, docs/ring-format.md).
//
// Positions are logical byte counts that only grow; the physical offset in the data region is
// `pos % dataBytes`. Three positions move forward: the write position (appends), the reader cursor
// (records handed out by read(), this process only) and the read position (the contiguous acked
// prefix). A fourth, the *durable* read position, is the read position of the last header that a
// completed fdatasync put on disk: the writer never overwrites bytes at or after it. So whichever
// header copy survives a crash, every record from its read position on is still intact.
import { closeSync, constants, existsSync, fdatasync, mkdirSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "../log.ts";
import { errnoName, posixFallocate } from "../platform/ffi.ts";
import { collectGarbage, mapFile } from "../platform/mmap.ts";
import { procStatusBytes } from "../platform/proc-status.ts";
import { GcPacer } from "./gc-pacer.ts";
import { AckedRanges } from "./acked.ts";
import {
  DATA_OFFSET,
  KIND_DATA,
  FLAG_CLOSED,
  KIND_WRAP,
  MAX_EPOCH,
  RECORD_HEADER_BYTES,
  dataBytesOf,
  fileBytesFor,
  pickHeader,
  recordKind,
  recordLength,
  recordSpan,
  writeHeaderSlot,
  writeRecordHeader,
  type RingHeader,
} from "./format.ts";
import { scanRing, type Gap } from "./recovery.ts";
import type { PackedRecords, Ring, RingRanges, RingReadBatch, RingStats } from "./types.ts";

/** Staging buffer for appends: a batch of records from one slice of a file fits in one pwrite. */
const STAGE_BYTES = 1 << 20;

/** Records to append, whatever holds them (an array of payloads, or one packed buffer). */
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

export const RING_FILE = "ring.dat";
/** Paced collection (see OpenRingOptions.gcEveryBytes): a minor collection costs ~0.2 ms; when one is a full one: gc-pacer.ts. */
export const DEFAULT_GC_EVERY_BYTES = 32 << 20;
/** Positions are rebased below this (2^48 bytes: years at any real rate, far from 2^53). */
export const REBASE_AT_BYTES = 2 ** 48;

export interface OpenRingOptions {
  dir: string;
  /** buffer.maxBytes: the size of the file, headers included. */
  capacityBytes: number;
  syncIntervalMs: number;
  log?: Logger;
  /**
   * Collect garbage after this many bytes have gone through the ring (appended + read), which
   * releases the payload views and copies that keep anonymous memory growing under load
   * (docs/ring-format.md, "Memory"). 0 disables. Default 32 MiB.
   */
  gcEveryBytes?: number;
  /** Tests only: rebase logical positions once the durable read position reaches this. */
  rebaseAtBytes?: number;
}

export class RingError extends Error {
  override name = "RingError";
}
/** The ring cannot be opened (data dir unusable, disk full): a refused start (the CLI exits 2). */
export class RingOpenError extends RingError {
  override name = "RingOpenError";
}
export class RingClosedError extends Error {
  override name = "RingClosedError";
  constructor() {
    super("the ring is closed");
  }
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

const noopLog: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => noopLog };

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}: ${err.message}` : String(e);
}

/** Allocates real blocks for the whole file (not sparse): a full disk shows now, clearly. */
function preallocate(fd: number, bytes: number, path: string): void {
  let rc: number;
  try {
    rc = posixFallocate(fd, 0, bytes);
  } catch {
    rc = 95; // no ffi: write zeros below
  }
  if (rc === 0) return;
  if (rc === 95 || rc === 22) {
    // The file system cannot fallocate: write zeros, which allocates just the same.
    const chunk = new Uint8Array(1 << 20);
    const size = fstatSync(fd).size;
    for (let off = size; off < bytes; ) {
      const n = Math.min(chunk.length, bytes - off);
      off += writeSync(fd, chunk, 0, n, off);
    }
    return;
  }
  const hint = rc === 28 || rc === 122 ? "; free disk space or lower buffer.maxBytes" : "";
  throw new RingOpenError(`cannot allocate ${bytes} bytes for the ring file ${path}: ${errnoName(rc)}${hint}`);
}

/** Writes a fresh ring file at `path` atomically (tmp file, fdatasync, rename, fsync dir). */
function createRingFile(path: string, fileBytes: number, readSeq: number, epoch = 1): void {
  const tmp = `${path}.tmp`;
  if (existsSync(tmp)) unlinkSync(tmp);
  const fd = openSync(tmp, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    preallocate(fd, fileBytes, path);
    const head = new Uint8Array(DATA_OFFSET);
    const v = new DataView(head.buffer);
    const h: RingHeader = { fileBytes, generation: 0, readPos: 0, readSeq, writePos: 0, nextSeq: readSeq, epoch, flags: FLAG_CLOSED };
    writeHeaderSlot(v, 0, h);
    writeHeaderSlot(v, 1, h);
    writeSync(fd, head, 0, head.length, 0);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {}
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

function moveAside(path: string, reason: string, log: Logger): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const aside = `${path}.invalid-${stamp}`;
  renameSync(path, aside);
  fsyncDir(dirname(path));
  log.error("ring file is not usable; moved it aside and started an empty ring", { path, movedTo: aside, reason });
  return aside;
}

interface RecoveryCounts {
  skippedRecords: number;
  skippedBytes: number;
  cutRecords: number;
  cutBytes: number;
  /** A file that was no ring file (or both headers damaged), moved aside: its records are not read. */
  movedAsideFiles: number;
  movedAsideBytes: number;
}

export async function openRing(opts: OpenRingOptions): Promise<Ring> {
  try {
    return await openRingFile(opts);
  } catch (e) {
    if (e instanceof RingError) throw e;
    throw new RingOpenError(`cannot open the ring in ${opts.dir}: ${describe(e)}`);
  }
}

async function openRingFile(opts: OpenRingOptions): Promise<Ring> {
  const log = opts.log ?? noopLog;
  const path = join(opts.dir, RING_FILE);
  const wantFileBytes = fileBytesFor(opts.capacityBytes);
  const counts: RecoveryCounts = { skippedRecords: 0, skippedBytes: 0, cutRecords: 0, cutBytes: 0, movedAsideFiles: 0, movedAsideBytes: 0 };

  try {
    mkdirSync(opts.dir, { recursive: true });
    // An interrupted create or resize.
    for (const leftover of [`${path}.tmp`, `${path}.tmp.tmp`]) if (existsSync(leftover)) unlinkSync(leftover);
  } catch (e) {
    throw new RingOpenError(`cannot use the data dir ${opts.dir} for the ring: ${describe(e)}`);
  }
  if (!existsSync(path)) {
    createRingFile(path, wantFileBytes, 1);
    log.info("created ring file", { path, bytes: wantFileBytes });
    return RingFile.open(path, opts, log, counts);
  }
  // Check the header through read(2) before mapping: a mapping of a short file faults (SIGBUS).
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR);
  } catch (e) {
    throw new RingOpenError(`cannot open the ring file ${path}: ${describe(e)}`);
  }
  let size: number;
  let picked: ReturnType<typeof pickHeader>;
  try {
    size = fstatSync(fd).size;
    const head = new Uint8Array(DATA_OFFSET);
    const n = readSync(fd, head, 0, head.length, 0);
    picked = pickHeader(new DataView(head.buffer, 0, n));
    if (picked.kind === "valid" && size !== picked.header.fileBytes) {
      if (size < picked.header.fileBytes) {
        log.warn("ring file is shorter than its header says (truncated); restoring its length, missing records will be cut", {
          path,
          bytes: size,
          expectedBytes: picked.header.fileBytes,
        });
        preallocate(fd, picked.header.fileBytes, path);
      } else {
        ftruncateSync(fd, picked.header.fileBytes);
      }
      fsyncSync(fd);
    }
  } finally {
    closeSync(fd);
  }
  if (picked.kind !== "valid") {
    const reason = picked.kind === "no-magic" ? (size < DATA_OFFSET ? `too short (${size} bytes)` : "no ring header (wrong magic)") : `both header copies damaged (${picked.reason})`;
    moveAside(path, reason, log);
    counts.movedAsideFiles++;
    counts.movedAsideBytes += size;
    createRingFile(path, wantFileBytes, 1);
    return RingFile.open(path, opts, log, counts);
  }
  if (picked.otherDamaged) log.warn("one ring header copy is damaged; using the other", { path });
  if (picked.header.fileBytes !== wantFileBytes) {
    const resized = resizeRingFile(path, wantFileBytes, log, counts);
    if (resized) collectGarbage(true); // unmap the old file's pages now
  }
  return RingFile.open(path, opts, log, counts);
}

/**
 * Copies every unacknowledged record into a new file of the configured size, keeping their order
 * and renumbering them consecutively from the read sequence number. Never drops a record: when they
 * need more room than configured, the new file is as large as they need (it shrinks on a later
 * start, once drained). Returns false (keeping the old file) when the new one cannot be allocated.
 */
function resizeRingFile(path: string, wantFileBytes: number, log: Logger, counts: RecoveryCounts): boolean {
  let map: Uint8Array | null = mapFile(path);
  const hv = new DataView(map.buffer, map.byteOffset, DATA_OFFSET);
  const picked = pickHeader(hv);
  if (picked.kind !== "valid") throw new RingError("ring header changed while resizing");
  const h = picked.header;
  const D = dataBytesOf(h.fileBytes);
  const data = map.subarray(DATA_OFFSET, DATA_OFFSET + D);
  const scan = scanRing(data, D, h);
  addCounts(counts, scan, log, path);
  // Collect the spans of surviving records.
  const dv = new DataView(data.buffer, data.byteOffset, D);
  const gaps = new Map(scan.gaps.map((g) => [g.fromPos, g]));
  const spans: Array<[number, number]> = []; // [phys, length]
  let need = 0;
  for (let pos = scan.readPos; pos < scan.writePos; ) {
    const g = gaps.get(pos);
    if (g) {
      pos = g.toPos;
      continue;
    }
    const phys = pos % D;
    if (D - phys < RECORD_HEADER_BYTES || recordKind(dv, phys) === KIND_WRAP) {
      pos += D - phys;
      continue;
    }
    const len = recordLength(dv, phys);
    spans.push([phys, len]);
    need += recordSpan(len);
    pos += recordSpan(len);
  }
  let newFileBytes = wantFileBytes;
  if (DATA_OFFSET + need > wantFileBytes) {
    newFileBytes = Math.ceil((DATA_OFFSET + need + 4096) / 4096) * 4096;
    log.warn("unsent records need more room than the configured buffer.maxBytes; the ring keeps them all and shrinks once they are sent", {
      path,
      configuredBytes: wantFileBytes,
      bytes: newFileBytes,
    });
  }
  const tmp = `${path}.tmp`;
  try {
    createRingFile(tmp, newFileBytes, scan.readSeq, h.epoch); // written as tmp.tmp, renamed to tmp
  } catch (e) {
    log.error("cannot resize the ring file; keeping it at its old size", { path, bytes: h.fileBytes, wantedBytes: wantFileBytes, error: e });
    map = null;
    return false;
  }
  let out: Uint8Array | null = mapFile(tmp);
  const outData = out.subarray(DATA_OFFSET);
  const ov = new DataView(outData.buffer, outData.byteOffset, outData.byteLength);
  let w = 0;
  let seq = scan.readSeq;
  for (const [phys, len] of spans) {
    const payload = data.subarray(phys + RECORD_HEADER_BYTES, phys + RECORD_HEADER_BYTES + len);
    outData.set(payload, w + RECORD_HEADER_BYTES);
    writeRecordHeader(ov, w, KIND_DATA, seq, len, payload, h.epoch);
    w += recordSpan(len);
    seq++;
  }
  const hh: RingHeader = { fileBytes: newFileBytes, generation: 1, readPos: 0, readSeq: scan.readSeq, writePos: w, nextSeq: seq, epoch: h.epoch, flags: FLAG_CLOSED };
  const ohv = new DataView(out.buffer, out.byteOffset, DATA_OFFSET);
  writeHeaderSlot(ohv, 0, hh);
  writeHeaderSlot(ohv, 1, { ...hh, generation: 0 });
  const fd = openSync(tmp, constants.O_RDWR);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  out = null;
  map = null;
  renameSync(tmp, path);
  fsyncDir(dirname(path));
  log.info("resized the ring file, keeping every unsent record", { path, fromBytes: h.fileBytes, toBytes: newFileBytes, records: spans.length });
  // Damage was dealt with during the copy; do not count it twice when the new file is scanned.
  return true;
}

function addCounts(counts: RecoveryCounts, scan: { skippedRecords: number; skippedBytes: number; cutRecords: number; cutBytes: number }, log: Logger, path: string): void {
  if (scan.skippedRecords || scan.skippedBytes) {
    log.warn("ring recovery skipped damaged records", { path, records: scan.skippedRecords, bytes: scan.skippedBytes });
  }
  if (scan.cutRecords || scan.cutBytes) {
    log.warn("ring recovery cut a torn tail", { path, records: scan.cutRecords, bytes: scan.cutBytes });
  }
  counts.skippedRecords += scan.skippedRecords;
  counts.skippedBytes += scan.skippedBytes;
  counts.cutRecords += scan.cutRecords;
  counts.cutBytes += scan.cutBytes;
}

class RingFile implements Ring {
  private map: Uint8Array | null;
  private readonly hv: DataView;
  private readonly data: Uint8Array;
  private readonly dv: DataView;
  private readonly D: number;
  private readonly fileBytes: number;
  private fd: number;
  /** Records are laid out here, then written to the file in one pwrite (see writeSome). */
  private readonly stage = new Uint8Array(STAGE_BYTES);
  private readonly stageView: DataView;
  /** The data region as a Buffer (same memory), handed out by readRanges. */
  private readonly dataBuffer: Buffer;
  private warnedWriteError = false;
  private readonly gcPacer = new GcPacer();
  private generation: number;
  private readonly epoch: number;

  private readPos: number;
  private readSeq: number;
  private durableReadPos: number;
  private syncedReadPos: number;
  private cursorPos: number;
  private cursorSeq: number;
  private writePos: number;
  private nextSeq: number;
  private durable: number;
  private readonly acked = new AckedRanges();
  private readonly gaps = new Map<number, Gap>();

  private closed = false;
  private syncing: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly durableListeners = new Set<(seq: number) => void>();
  private dataWaiter: { promise: Promise<void>; resolve: () => void } | null = null;
  private spaceWaiter: { promise: Promise<void>; resolve: () => void } | null = null;
  private pendingAppends = 0;
  private appendTail: Promise<unknown> = Promise.resolve();
  private blockedSince = 0;
  private gcBudget: number;

  // Counters.
  private appendedRecords = 0;
  private appendedBytes = 0;
  private ackedRecords = 0;
  private blockedMs = 0;
  private syncs = 0;
  private lastSyncMs = 0;
  private syncTotalMs = 0;

  static async open(path: string, opts: OpenRingOptions, log: Logger, counts: RecoveryCounts): Promise<RingFile> {
    const map = mapFile(path);
    const hv = new DataView(map.buffer, map.byteOffset, DATA_OFFSET);
    const picked = pickHeader(hv);
    if (picked.kind !== "valid") throw new RingError(`ring file ${path} lost its header while opening`);
    const h = picked.header;
    const D = dataBytesOf(h.fileBytes);
    const data = map.subarray(DATA_OFFSET, DATA_OFFSET + D);
    const scan = scanRing(data, D, h);
    addCounts(counts, scan, log, path);
    const ring = new RingFile(path, map, h, scan, opts, log, counts);
    if (scan.cutRecords || scan.cutBytes) ring.zeroTail(h);
    // Make what the scan found durable (after a SIGKILL it may sit in the page cache only) and
    // record the recovered positions, so that later opens see the same ring.
    ring.forceHeader = true;
    await ring.sync();
    log.info("ring opened", {
      path,
      bytes: h.fileBytes,
      records: scan.nextSeq - scan.readSeq - scan.gaps.reduce((n, g) => n + (g.toSeq - g.fromSeq), 0),
      usedBytes: scan.writePos - scan.readPos,
      readSeq: scan.readSeq,
      nextSeq: scan.nextSeq,
    });
    return ring;
  }

  private forceHeader = false;

  private constructor(
    readonly path: string,
    map: Uint8Array,
    h: RingHeader,
    scan: ReturnType<typeof scanRing>,
    private readonly opts: OpenRingOptions,
    private readonly log: Logger,
    private readonly recovery: RecoveryCounts,
  ) {
    this.map = map;
    this.hv = new DataView(map.buffer, map.byteOffset, DATA_OFFSET);
    this.fileBytes = h.fileBytes;
    this.D = dataBytesOf(h.fileBytes);
    this.data = map.subarray(DATA_OFFSET, DATA_OFFSET + this.D);
    this.dv = new DataView(this.data.buffer, this.data.byteOffset, this.D);
    this.dataBuffer = Buffer.from(this.data.buffer, this.data.byteOffset, this.D);
    this.fd = openSync(path, constants.O_RDWR);
    this.stageView = new DataView(this.stage.buffer);
    this.generation = h.generation;
    // After an unclean end, new records carry a higher epoch than anything left of the old tail.
    this.epoch = scan.unclean ? Math.min(h.epoch + 1, MAX_EPOCH) : h.epoch;
    this.readPos = this.durableReadPos = this.syncedReadPos = this.cursorPos = scan.readPos;
    this.readSeq = this.cursorSeq = scan.readSeq;
    this.writePos = scan.writePos;
    this.nextSeq = scan.nextSeq;
    this.durable = scan.readSeq - 1;
    for (const g of scan.gaps) {
      this.gaps.set(g.fromPos, g);
      this.acked.add(g.fromSeq, g.toSeq); // lost records count as acknowledged: nobody will send them
    }
    this.gcBudget = opts.gcEveryBytes ?? DEFAULT_GC_EVERY_BYTES;
  }

  /** After a cut, clears the bytes past the new end that an earlier write may have left. */
  private zeroTail(h: RingHeader): void {
    const end = Math.min(Math.max(h.writePos, this.writePos + RECORD_HEADER_BYTES), this.readPos + this.D);
    for (let p = this.writePos; p < end; ) {
      const phys = p % this.D;
      const n = Math.min(end - p, this.D - phys);
      this.data.fill(0, phys, phys + n);
      p += n;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Producer side.

  append(payloads: readonly Uint8Array[]): Promise<number> {
    return this.appendList({ count: payloads.length, at: (i) => payloads[i]!, lengthOf: (i) => payloads[i]!.length }, false);
  }

  appendPacked(records: PackedRecords): Promise<number> {
    const { bytes, ends } = records;
    const startOf = (i: number) => (i === 0 ? 0 : ends[i - 1]!);
    return this.appendList({ count: records.count, at: (i) => bytes.subarray(startOf(i), ends[i]!), lengthOf: (i) => ends[i]! - startOf(i) }, true);
  }

  /**
   * Writes what fits now; the rest waits for space in order behind earlier waiting appends.
   * `borrowed`: the caller may reuse the records' memory once this returns, so a waiting rest is copied.
   */
  private appendList(list: RecordList, borrowed: boolean): Promise<number> {
    if (this.closed) return Promise.reject(new RingClosedError());
    const D = this.D;
    for (let i = 0; i < list.count; i++) {
      const n = list.lengthOf(i);
      if (recordSpan(n) > D) return Promise.reject(new RingError(`a record of ${n} bytes cannot fit in a ring of ${D} bytes`));
    }
    let start = 0;
    if (this.pendingAppends === 0) {
      start = this.writeSome(list, 0);
      if (start === list.count) return Promise.resolve(this.nextSeq - 1);
    }
    const rest = borrowed ? copyRest(list, start) : list;
    const from = borrowed ? 0 : start;
    this.pendingAppends++;
    const p = this.appendTail.then(() => this.appendBlocking(rest, from));
    const done = p.finally(() => {
      this.pendingAppends--;
    });
    this.appendTail = done.catch(() => {});
    return done;
  }

  private async appendBlocking(list: RecordList, from: number): Promise<number> {
    let i = from;
    for (;;) {
      if (this.closed) throw new RingClosedError();
      i = this.writeSome(list, i);
      if (i === list.count) return this.nextSeq - 1;
      await this.waitForSpace();
    }
  }

  /**
   * Writes records [from..] while they fit; returns the index of the first one that did not.
   * Records are laid out in a staging buffer exactly as in the file and written with one pwrite
   * per contiguous run, not stored through the mapping: a store into a shared file mapping faults
   * every page in (and again after each writeback write-protects it), which cost 1.6–4× the CPU
   * of pwrite for the same bytes (bench/ring-write.bench.ts: 0.53 vs 0.26 CPU-s per M 560-byte records at 150 MB/s). The page cache is shared, so
   * readers see the records through the mapping as soon as the pwrite returns.
   */
  private writeSome(list: RecordList, from: number): number {
    const D = this.D;
    const stage = this.stage;
    const sv = this.stageView;
    let i = from;
    let wrote = false;
    let runPhys = 0; // where the staged run starts in the data region
    let runLen = 0;
    for (; i < list.count; i++) {
      const p = list.at(i);
      const span = recordSpan(p.length);
      let pos = this.writePos;
      let phys = pos % D;
      if (phys + span > D) {
        // Not enough room before the end of the lap: the record starts the next lap.
        const waste = D - phys;
        if (pos + waste - this.durableReadPos > D) break;
        this.flushStage(runPhys, runLen);
        if (waste >= RECORD_HEADER_BYTES) writeRecordHeader(this.dv, phys, KIND_WRAP, this.nextSeq, 0, null, this.epoch);
        if (this.readPos === pos) {
          // Nothing unacknowledged: the skipped bytes belong to no one (otherwise a record larger
          // than what is left before the end could wait forever on an empty ring).
          this.readPos = pos + waste;
          if (this.cursorPos === pos) this.cursorPos = this.readPos;
        }
        pos = this.writePos = pos + waste;
        phys = 0;
        runLen = 0;
        wrote = true;
      }
      if (pos + span - this.durableReadPos > D) break;
      if (span > stage.length) {
        // Larger than the staging buffer (a huge line): straight into the mapping.
        this.flushStage(runPhys, runLen);
        this.data.set(p, phys + RECORD_HEADER_BYTES);
        writeRecordHeader(this.dv, phys, KIND_DATA, this.nextSeq, p.length, p, this.epoch);
        runLen = 0;
      } else {
        // A run is contiguous in the file: it ends at a full staging buffer and at the end of a lap
        // (also when a record ends exactly there, so the next one starts at offset 0).
        if (runLen + span > stage.length || runPhys + runLen !== phys) {
          this.flushStage(runPhys, runLen);
          runLen = 0;
        }
        if (runLen === 0) runPhys = phys;
        stage.set(p, runLen + RECORD_HEADER_BYTES);
        writeRecordHeader(sv, runLen, KIND_DATA, this.nextSeq, p.length, p, this.epoch);
        const end = runLen + RECORD_HEADER_BYTES + p.length;
        if (end < runLen + span) stage.fill(0, end, runLen + span); // padding: zeros, not stale bytes
        runLen += span;
      }
      this.writePos = pos + span;
      this.nextSeq++;
      this.appendedRecords++;
      this.appendedBytes += p.length;
      this.gcBudget -= p.length;
      wrote = true;
    }
    this.flushStage(runPhys, runLen);
    if (wrote) {
      this.armTimer();
      if (this.dataWaiter) {
        const w = this.dataWaiter;
        this.dataWaiter = null;
        w.resolve();
      }
      if (this.gcBudget <= 0) this.paceGc();
    }
    return i;
  }

  /** Writes the staged run of `len` bytes at data-region offset `phys` (pwrite; the mapping sees it). */
  private flushStage(phys: number, len: number): void {
    if (len === 0) return;
    let done = 0;
    try {
      while (done < len) done += writeSync(this.fd, this.stage, done, len - done, DATA_OFFSET + phys + done);
    } catch (err) {
      // The space is allocated, so this is an I/O error. Storing through the mapping is what the
      // ring did before staging; it keeps the ring's state and the bytes consistent.
      if (!this.warnedWriteError) this.log.warn("pwrite to the ring file failed; writing through the mapping", { path: this.path, error: describe(err) });
      this.warnedWriteError = true;
      this.data.set(this.stage.subarray(done, len), phys + done);
    }
  }

  private waitForSpace(): Promise<void> {
    if (!this.blockedSince) this.blockedSince = performance.now();
    // Acked space becomes writable once a header saying so is on disk: sync now rather than at
    // the next tick of the interval.
    if (this.durableReadPos < this.readPos) this.syncSoon();
    if (!this.spaceWaiter) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.spaceWaiter = { promise, resolve };
    }
    return this.spaceWaiter.promise;
  }

  private wakeAppenders(): void {
    if (this.blockedSince) {
      this.blockedMs += performance.now() - this.blockedSince;
      this.blockedSince = 0;
    }
    if (this.spaceWaiter) {
      const w = this.spaceWaiter;
      this.spaceWaiter = null;
      w.resolve();
    }
  }

  lastSeq(): number {
    return this.nextSeq - 1;
  }

  // ------------------------------------------------------------------------------------------
  // Consumer side.

  read(maxRecords: number, maxBytes: number): RingReadBatch | null {
    const r = this.readRanges(maxRecords, maxBytes);
    if (!r) return null;
    const payloads: Uint8Array[] = new Array(r.count);
    for (let i = 0; i < r.count; i++) payloads[i] = this.data.subarray(r.offsets[2 * i]!, r.offsets[2 * i + 1]!);
    return { firstSeq: r.firstSeq, payloads, bytes: r.bytes };
  }

  readRanges(maxRecords: number, maxBytes: number): RingRanges | null {
    if (this.closed || this.cursorSeq >= this.nextSeq) return null;
    const D = this.D;
    const dv = this.dv;
    // Sized for the records available (bounded by maxRecords); trimmed below when fewer are taken.
    let offsets = new Uint32Array(2 * Math.min(maxRecords, this.nextSeq - this.cursorSeq));
    let count = 0;
    let bytes = 0;
    let firstSeq = 0;
    while (this.cursorSeq < this.nextSeq && count < maxRecords) {
      const pos = this.cursorPos;
      if (this.gaps.size) {
        const g = this.gaps.get(pos);
        if (g) {
          if (count) break; // a batch is consecutive: stop before the hole
          this.cursorPos = g.toPos;
          this.cursorSeq = g.toSeq;
          continue;
        }
      }
      const phys = pos % D;
      if (D - phys < RECORD_HEADER_BYTES || recordKind(dv, phys) === KIND_WRAP) {
        this.cursorPos = pos + (D - phys);
        continue;
      }
      const len = recordLength(dv, phys);
      if (count && bytes + len > maxBytes) break;
      if (!count) firstSeq = this.cursorSeq;
      offsets[2 * count] = phys + RECORD_HEADER_BYTES;
      offsets[2 * count + 1] = phys + RECORD_HEADER_BYTES + len;
      count++;
      bytes += len;
      this.cursorPos = pos + recordSpan(len);
      this.cursorSeq++;
    }
    if (!count) return null;
    if (2 * count < offsets.length) offsets = offsets.subarray(0, 2 * count);
    this.gcBudget -= bytes;
    if (this.gcBudget <= 0) this.paceGc();
    return { firstSeq, count, bytes, data: this.dataBuffer, offsets };
  }

  waitForData(): Promise<void> {
    if (this.closed || this.cursorSeq < this.nextSeq) return Promise.resolve();
    if (!this.dataWaiter) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.dataWaiter = { promise, resolve };
    }
    return this.dataWaiter.promise;
  }

  ack(firstSeq: number, count: number): void {
    if (this.closed) return;
    if (!(count > 0)) return;
    const end = firstSeq + count;
    if (!Number.isSafeInteger(firstSeq) || !Number.isSafeInteger(end) || firstSeq < 1 || end > this.nextSeq) {
      throw new RangeError(`ack(${firstSeq}, ${count}) covers records never appended (last is ${this.nextSeq - 1})`);
    }
    const start = Math.max(firstSeq, this.readSeq);
    if (start >= end) return;
    let target: number;
    if (start === this.readSeq && this.acked.rangeCount === 0) {
      this.ackedRecords += end - start;
      target = end;
    } else {
      this.ackedRecords += this.acked.add(start, end);
      target = this.acked.takePrefix(this.readSeq);
      // Ranges may chain: a gap range can follow directly.
      for (let t = this.acked.takePrefix(target); t !== target; t = this.acked.takePrefix(target)) target = t;
    }
    if (target > this.readSeq) {
      this.advanceRead(target);
      this.armTimer();
      if (this.blockedSince) this.syncSoon();
    }
  }

  /** Moves the read position over records up to (not including) sequence number `to`. */
  private advanceRead(to: number): void {
    const D = this.D;
    const dv = this.dv;
    let pos = this.readPos;
    let seq = this.readSeq;
    while (seq < to) {
      if (this.gaps.size) {
        const g = this.gaps.get(pos);
        if (g) {
          this.gaps.delete(pos);
          pos = g.toPos;
          seq = g.toSeq;
          continue;
        }
      }
      const phys = pos % D;
      if (D - phys < RECORD_HEADER_BYTES || recordKind(dv, phys) === KIND_WRAP) {
        pos += D - phys;
        continue;
      }
      pos += recordSpan(recordLength(dv, phys));
      seq++;
    }
    // Caught up with the writer: what lies between is at most a skipped lap end, which belongs to
    // no record. Release it too, or a record that waits for it would wait forever.
    if (seq === this.nextSeq) {
      pos = this.writePos;
      this.gaps.clear();
    }
    this.readPos = pos;
    this.readSeq = seq;
    if (this.cursorSeq <= seq) {
      // The cursor never lags the read position (the bytes behind it may be rewritten).
      this.cursorSeq = seq;
      this.cursorPos = pos;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Durability.

  durableSeq(): number {
    return this.durable;
  }

  onDurable(listener: (seq: number) => void): () => void {
    this.durableListeners.add(listener);
    return () => this.durableListeners.delete(listener);
  }

  private dirty(): boolean {
    return this.nextSeq - 1 > this.durable || this.readPos !== this.syncedReadPos || this.forceHeader;
  }

  private armTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sync().catch((e) => this.log.error("ring sync failed", { path: this.path, error: e }));
    }, this.opts.syncIntervalMs);
    this.timer.unref?.();
  }

  private syncSoon(): void {
    if (this.syncing) {
      this.syncAgain = true; // run another as soon as this one is done
      return;
    }
    this.sync().catch((e) => this.log.error("ring sync failed", { path: this.path, error: e }));
  }
  private syncAgain = false;

  sync(): Promise<void> {
    if (this.fd < 0) return Promise.resolve();
    if (this.syncing) return this.syncing.then(() => (this.dirty() ? this.sync() : undefined));
    if (!this.dirty()) return Promise.resolve();
    const p = this.doSync().finally(() => {
      this.syncing = null;
      if (this.syncAgain) {
        this.syncAgain = false;
        if (!this.closed) this.syncSoon();
      }
    });
    this.syncing = p;
    return p;
  }

  /**
   * Keeps logical positions far below 2^53: subtracts a whole number of laps from all of them
   * (physical offsets, `pos % D`, do not change). Runs only between syncs.
   */
  private rebase(): void {
    if (this.durableReadPos < (this.opts.rebaseAtBytes ?? REBASE_AT_BYTES)) return;
    const base = Math.floor(this.durableReadPos / this.D) * this.D;
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

  private async doSync(): Promise<void> {
    this.rebase();
    const seq = this.nextSeq - 1;
    const readPos = this.readPos;
    this.forceHeader = false;
    this.generation++;
    writeHeaderSlot(this.hv, (this.generation % 2) as 0 | 1, {
      fileBytes: this.fileBytes,
      generation: this.generation,
      readPos,
      readSeq: this.readSeq,
      writePos: this.writePos,
      nextSeq: this.nextSeq,
      epoch: this.epoch,
      // Only the final sync of close() says "closed": appends are refused from then on.
      flags: this.closed ? FLAG_CLOSED : 0,
    });
    const t0 = performance.now();
    try {
      await fdatasyncAsync(this.fd); // on Linux this writes back the pages dirtied through the mapping
    } catch (e) {
      // Not durable. Write the next header into this same slot again, so the other slot keeps the
      // last header known to be on disk.
      this.generation--;
      this.forceHeader = true;
      throw new RingError(`fdatasync of the ring file ${this.path} failed: ${describe(e)}`);
    }
    const ms = performance.now() - t0;
    this.syncs++;
    this.lastSyncMs = ms;
    this.syncTotalMs += ms;
    this.syncedReadPos = readPos;
    if (readPos > this.durableReadPos) this.durableReadPos = readPos;
    if (seq > this.durable) {
      this.durable = seq;
      for (const l of this.durableListeners) {
        try {
          l(seq);
        } catch (e) {
          this.log.error("durable listener threw", { error: e });
        }
      }
    }
    if (this.dirty()) this.armTimer();
    this.wakeAppenders(); // a waiting appender that still finds no room asks for another sync
  }

  private paceGc(): void {
    this.gcBudget = this.opts.gcEveryBytes ?? DEFAULT_GC_EVERY_BYTES;
    if (!(this.gcBudget > 0)) {
      this.gcBudget = Number.POSITIVE_INFINITY;
      return;
    }
    collectGarbage(this.gcPacer.full(procStatusBytes("RssAnon")));
  }

  // ------------------------------------------------------------------------------------------

  stats(): RingStats & RingExtraStats {
    const blockedNow = this.blockedSince ? performance.now() - this.blockedSince : 0;
    return {
      capacityBytes: this.D,
      usedBytes: this.writePos - this.readPos,
      records: this.nextSeq - this.readSeq - this.pendingGapRecords(),
      nextSeq: this.nextSeq,
      readSeq: this.readSeq,
      durableSeq: this.durable,
      appendedRecords: this.appendedRecords,
      ackedRecords: this.ackedRecords,
      recoverySkippedRecords: this.recovery.skippedRecords,
      recoverySkippedBytes: this.recovery.skippedBytes,
      recoveryCutBytes: this.recovery.cutBytes,
      recoveryCutRecords: this.recovery.cutRecords,
      recoveryMovedAsideFiles: this.recovery.movedAsideFiles,
      recoveryMovedAsideBytes: this.recovery.movedAsideBytes,
      blockedMs: this.blockedMs + blockedNow,
      full: this.blockedSince !== 0,
      lastSyncMs: this.lastSyncMs,
      syncs: this.syncs,
      syncTotalMs: this.syncTotalMs,
      fileBytes: this.fileBytes,
      appendedBytes: this.appendedBytes,
      path: this.path,
    };
  }

  private pendingGapRecords(): number {
    let n = 0;
    for (const g of this.gaps.values()) n += g.toSeq - g.fromSeq;
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) {
      if (this.syncing) await this.syncing.catch(() => {});
      return;
    }
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.wakeAppenders(); // they see `closed` and reject
    if (this.dataWaiter) {
      this.dataWaiter.resolve();
      this.dataWaiter = null;
    }
    try {
      if (this.syncing) await this.syncing.catch(() => {});
      this.forceHeader = true; // the header that says "closed cleanly, nothing after this"
      await this.sync();
    } finally {
      closeSync(this.fd);
      this.fd = -1;
      this.map = null; // unmapped when collected
    }
  }
}

