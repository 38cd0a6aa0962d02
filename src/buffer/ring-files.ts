// Whole-file operations on the ring's storage, at open time: creating a fresh ring file atomically,
// restoring the length of a truncated one, rebuilding lost headers from the records, moving an
// unusable file aside, and resizing to a new buffer.maxBytes without losing a record.
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { errnoName } from "../platform/ffi.ts";
import type { Clock } from "../platform/types.ts";
import { RingError, RingOpenError } from "./errors.ts";
import {
  DATA_OFFSET,
  FLAG_CLOSED,
  KIND_DATA,
  RECORD_HEADER_BYTES,
  dataBytesOf,
  lapEndAt,
  pickHeader,
  recordLength,
  recordSpan,
  writeHeaderSlot,
  writeRecordHeader,
  type RingHeader,
} from "./format.ts";
import { findNewestRun } from "./header-rebuild.ts";
import { type ScanResult, scanRing } from "./recovery.ts";
import type { RingFileHandle, RingStorage } from "./types.ts";

const EINVAL = 22;
const ENOSPC = 28;
const EOPNOTSUPP = 95;
const EDQUOT = 122;

/** Allocates real blocks for the whole file (not sparse): a full disk shows now, clearly. */
export function preallocate(file: RingFileHandle, bytes: number, path: string): void {
  const rc = file.allocate(0, bytes);
  if (rc === 0) return;
  if (rc === EOPNOTSUPP || rc === EINVAL) {
    // The file system cannot fallocate: write zeros, which allocates just the same.
    const chunk = new Uint8Array(1 << 20);
    for (let off = file.size(); off < bytes; ) {
      const n = Math.min(chunk.length, bytes - off);
      off += file.write(chunk, 0, n, off);
    }
    return;
  }
  const hint = rc === ENOSPC || rc === EDQUOT ? "; free disk space or lower buffer.maxBytes" : "";
  throw new RingOpenError(`cannot allocate ${bytes} bytes for the ring file ${path}: ${errnoName(rc)}${hint}`);
}

/** Writes a fresh, empty ring file `name` atomically (tmp file, sync, rename, sync of the directory). */
export function createRingFile(storage: RingStorage, name: string, fileBytes: number, readSeq: number, epoch = 1): void {
  const tmp = `${name}.tmp`;
  if (storage.exists(tmp)) storage.remove(tmp);
  const file = storage.open(tmp, true);
  try {
    preallocate(file, fileBytes, join(storage.dir, name));
    const head = new Uint8Array(DATA_OFFSET);
    const v = new DataView(head.buffer);
    const h: RingHeader = { fileBytes, generation: 0, readPos: 0, readSeq, writePos: 0, nextSeq: readSeq, epoch, flags: FLAG_CLOSED, acked: [] };
    writeHeaderSlot(v, 0, h);
    writeHeaderSlot(v, 1, h);
    file.write(head, 0, head.length, 0);
    file.sync();
  } catch (e) {
    file.close();
    try {
      storage.remove(tmp);
    } catch {}
    throw e;
  }
  file.close();
  storage.rename(tmp, name);
  storage.syncDir();
}

/** Renames an unusable ring file out of the way (kept for inspection); returns the new name. */
export function moveAside(storage: RingStorage, name: string, reason: string, clock: Clock, log: Logger): string {
  const aside = asideName(name, clock);
  storage.rename(name, aside);
  storage.syncDir();
  log.error("ring file is not usable; moved it aside and started an empty ring", { path: join(storage.dir, name), movedTo: join(storage.dir, aside), reason });
  return aside;
}

/** The name an unusable file, or the unreadable headers of one, is kept under for inspection. */
function asideName(name: string, clock: Clock, suffix = ""): string {
  return `${name}.invalid-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}${suffix}`;
}

/**
 * Both header copies of `name` are unreadable (`reason`): finds the newest run of records in its
 * data region (header-rebuild.ts) and writes a header for it into both slots, keeping the
 * unreadable headers in a file of their own. The data region is left as it is: the usual scan
 * then recovers the records (skipping damage), and the open raises the epoch (the header is not a
 * closing one). Returns the bytes set aside, or 0 when no record was found (nothing rebuilt).
 * The capacity comes from the file's size (rounded up to 4 KiB; a resize to buffer.maxBytes follows if it differs).
 */
export function rebuildHeader(storage: RingStorage, name: string, reason: string, clock: Clock, log: Logger): number {
  const path = join(storage.dir, name);
  const file = storage.open(name);
  try {
    const fileBytes = Math.max(DATA_OFFSET + 4096, Math.ceil(file.size() / 4096) * 4096);
    if (file.size() < fileBytes) {
      preallocate(file, fileBytes, path);
      file.sync();
    }
    const map = file.map();
    const D = dataBytesOf(fileBytes);
    const run = findNewestRun(map.subarray(DATA_OFFSET, DATA_OFFSET + D), D);
    if (!run) return 0;
    const aside = asideName(name, clock, ".headers");
    const out = storage.open(aside, true);
    try {
      out.write(map.slice(0, DATA_OFFSET), 0, DATA_OFFSET, 0);
      out.sync();
    } finally {
      out.close();
    }
    storage.syncDir();
    const head = new Uint8Array(DATA_OFFSET);
    const v = new DataView(head.buffer);
    const { readPos, readSeq, writePos, nextSeq, epoch } = run;
    const h: RingHeader = { fileBytes, generation: 1, readPos, readSeq, writePos, nextSeq, epoch, flags: 0, acked: [] };
    writeHeaderSlot(v, 1, h);
    writeHeaderSlot(v, 0, { ...h, generation: 0 });
    file.write(head, 0, DATA_OFFSET, 0);
    file.sync();
    log.error("both ring header copies are unreadable; rebuilt the header from the records found (they are delivered again, some perhaps twice)", {
      path,
      reason,
      headersMovedTo: join(storage.dir, aside),
      records: run.records,
      readSeq: run.readSeq,
      nextSeq: run.nextSeq,
    });
    return DATA_OFFSET;
  } finally {
    file.close();
  }
}

/** Damage a scan found, for the open's statistics and its log lines. */
export interface ScanCounts {
  skippedRecords: number;
  skippedBytes: number;
  cutRecords: number;
  cutBytes: number;
}

/** Adds what a scan found to `counts` and logs it. */
export function noteScan(counts: ScanCounts, scan: ScanCounts, log: Logger, path: string): void {
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

/** [physical offset, payload length] of every record a scan accepted, oldest first, and their total span. */
function survivingRecords(dv: DataView, D: number, scan: ScanResult): { spans: Array<[number, number]>; need: number } {
  const gaps = new Map(scan.gaps.map((g) => [g.fromPos, g]));
  const spans: Array<[number, number]> = [];
  let need = 0;
  for (let pos = scan.readPos; pos < scan.writePos; ) {
    const g = gaps.get(pos);
    if (g) {
      gaps.delete(pos); // a hole may take no bytes
      pos = g.toPos;
      continue;
    }
    const lapEnd = lapEndAt(dv, D, pos);
    if (lapEnd) {
      pos += lapEnd;
      continue;
    }
    const phys = pos % D;
    const len = recordLength(dv, phys);
    spans.push([phys, len]);
    need += recordSpan(len);
    pos += recordSpan(len);
  }
  return { spans, need };
}

/**
 * Copies every unacknowledged record into a new file of the configured size, keeping their order
 * and renumbering them consecutively from the read sequence number. Never drops a record: when they
 * need more room than configured, the new file is as large as they need (it shrinks on a later
 * start, once drained). Returns false (keeping the old file) when the new one cannot be allocated.
 * Damage is dealt with during the copy and counted here, not again when the new file is scanned.
 */
export function resizeRingFile(storage: RingStorage, name: string, wantFileBytes: number, log: Logger, counts: ScanCounts): boolean {
  const path = join(storage.dir, name);
  const old = storage.open(name);
  const map = old.map();
  old.close();
  const picked = pickHeader(new DataView(map.buffer, map.byteOffset, DATA_OFFSET));
  if (picked.kind !== "valid") throw new RingError("ring header changed while resizing");
  const h = picked.header;
  const D = dataBytesOf(h.fileBytes);
  const data = map.subarray(DATA_OFFSET, DATA_OFFSET + D);
  const scan = scanRing(data, D, h);
  noteScan(counts, scan, log, path);
  const { spans, need } = survivingRecords(new DataView(data.buffer, data.byteOffset, D), D, scan);
  let newFileBytes = wantFileBytes;
  if (DATA_OFFSET + need > wantFileBytes) {
    newFileBytes = Math.ceil((DATA_OFFSET + need + 4096) / 4096) * 4096;
    log.warn("unsent records need more room than the configured buffer.maxBytes; the ring keeps them all and shrinks once they are sent", {
      path,
      configuredBytes: wantFileBytes,
      bytes: newFileBytes,
    });
  }
  const tmp = `${name}.tmp`;
  try {
    createRingFile(storage, tmp, newFileBytes, scan.readSeq, h.epoch); // written as tmp.tmp, renamed to tmp
  } catch (e) {
    log.error("cannot resize the ring file; keeping it at its old size", { path, bytes: h.fileBytes, wantedBytes: wantFileBytes, error: e });
    return false;
  }
  const out = storage.open(tmp);
  try {
    const outMap = out.map();
    const outData = outMap.subarray(DATA_OFFSET);
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
    const hh: RingHeader = { fileBytes: newFileBytes, generation: 1, readPos: 0, readSeq: scan.readSeq, writePos: w, nextSeq: seq, epoch: h.epoch, flags: FLAG_CLOSED, acked: [] };
    const ohv = new DataView(outMap.buffer, outMap.byteOffset, DATA_OFFSET);
    writeHeaderSlot(ohv, 0, hh);
    writeHeaderSlot(ohv, 1, { ...hh, generation: 0 });
    out.sync();
  } finally {
    out.close();
  }
  storage.rename(tmp, name);
  storage.syncDir();
  log.info("resized the ring file, keeping every unsent record", { path, fromBytes: h.fileBytes, toBytes: newFileBytes, records: spans.length });
  return true;
}
