// Crash-only recovery: the scan run on every open (docs/ring-format.md). Pure over the mapped data region.
//
// From the header's read position, accept records with a valid CRC *and* the next sequence number.
// A record from an earlier lap has a valid CRC but an older sequence number: it marks the end.
// The header's (nextSeq, writePos) were written by the last completed sync, so every sequence
// number below nextSeq was durable: if one of those is unreadable, the damage is in the middle and
// we resynchronise on the next valid record that continues the sequence (skipping, counted). Past
// the last sync, a record with our sequence number but a bad checksum is a torn write: cut.
//
// Epochs: unless the file was closed cleanly (the header written by close() and the end exactly
// where it says), records appended after the last sync may survive beyond the end the scan found
// (a page written back, the one before it not). The open raises the epoch and new records carry
// it. The scan accepts epochs that never decrease (and never exceed the header's), so a record of
// such an abandoned tail, even with a good checksum and a fitting sequence number, is never taken
// for one written after it.
//
// Acknowledged ranges: records the header lists as acknowledged (beyond its read position) are
// checked like the rest but handed to nobody: they become holes, as damage does, without counting
// as damage.
import {
  FLAG_CLOSED,
  KIND_WRAP,
  RECORD_ALIGN,
  RECORD_HEADER_BYTES,
  RECORD_SYNC,
  recordEpoch,
  recordKind,
  recordLength,
  recordSeq,
  recordSpan,
  recordSync,
  validRecordSpan,
  type RingHeader,
} from "./format.ts";

/** Records nobody will read: damage, or records already acknowledged. */
export interface Gap {
  /** Logical position where the hole starts and the first sequence number it swallowed. */
  fromPos: number;
  fromSeq: number;
  /** Where the next valid record (or wrap marker) is, and its sequence number. */
  toPos: number;
  toSeq: number;
}

export interface ScanResult {
  readPos: number;
  readSeq: number;
  writePos: number;
  nextSeq: number;
  records: number;
  gaps: Gap[];
  skippedRecords: number;
  skippedBytes: number;
  cutRecords: number;
  cutBytes: number;
  /** Records the header lists as acknowledged, found intact (part of `gaps`, not damage). */
  ackedRecords: number;
  /** The end is not where the header said: records past the last sync were found or lost. */
  unclean: boolean;
}

/** Extends the last hole when it ends at `fromSeq` (lap-end bytes between belong to no record), else opens one. */
function addGap(gaps: Gap[], fromPos: number, fromSeq: number, toPos: number, toSeq: number): void {
  const last = gaps[gaps.length - 1];
  if (last && last.toSeq === fromSeq) {
    last.toPos = toPos;
    last.toSeq = toSeq;
  } else gaps.push({ fromPos, fromSeq, toPos, toSeq });
}

export function scanRing(data: Uint8Array, dataBytes: number, h: RingHeader): ScanResult {
  const v = new DataView(data.buffer, data.byteOffset, dataBytes);
  const D = dataBytes;
  const limit = h.readPos + D; // the scan never goes more than one lap
  const maxRecordsPerLap = Math.floor(D / RECORD_HEADER_BYTES) + 1;
  let pos = h.readPos;
  let seq = h.readSeq;
  let records = 0;
  const gaps: Gap[] = [];
  let skippedRecords = 0;
  let skippedBytes = 0;
  let cutRecords = 0;
  let cutBytes = 0;
  let epoch = 0; // of the last accepted record
  const acked = h.acked;
  let ai = 0; // acked[ai] is the start of the first acknowledged range not below `seq`
  let ackedRecords = 0;

  while (pos < limit) {
    const phys = pos % D;
    if (D - phys < RECORD_HEADER_BYTES) {
      // Too little room for a header at the end of the lap: the writer wrapped implicitly.
      pos += D - phys;
      continue;
    }
    const span = validRecordSpan(v, data, phys, D);
    if (span > 0 && recordSeq(v, phys) === seq && recordEpoch(v, phys) >= epoch && recordEpoch(v, phys) <= h.epoch) {
      epoch = recordEpoch(v, phys);
      if (recordKind(v, phys) === KIND_WRAP) {
        pos += D - phys;
        continue;
      }
      if (pos + span > limit) break;
      while (ai < acked.length && acked[ai + 1]! <= seq) ai += 2;
      if (ai < acked.length && acked[ai]! <= seq) {
        addGap(gaps, pos, seq, pos + span, seq + 1);
        ackedRecords++;
      }
      pos += span;
      seq++;
      records++;
      continue;
    }
    // Anomaly at `pos` where record `seq` was expected.
    if (seq >= h.nextSeq) {
      // Past the last sync. Zeros, an earlier lap's record or an abandoned tail's: the end. A header
      // carrying our sequence number (and no older epoch) but failing its checks: a torn write, cut,
      // unless close() wrote the header: then the end is exactly there, and whatever follows is not ours.
      if (
        span === 0 &&
        !(h.flags & FLAG_CLOSED && seq === h.nextSeq) &&
        recordSync(v, phys) === RECORD_SYNC &&
        recordSeq(v, phys) === seq &&
        recordEpoch(v, phys) >= epoch
      ) {
        cutRecords = 1;
        cutBytes = Math.min(recordSpan(recordLength(v, phys)), D - phys);
      }
      break;
    }
    // From `pos` itself: a valid record there may continue the sequence past a hole that took no
    // bytes (records lost with the end of a lap; seen with a header rebuilt from the records).
    const found = resync({ v, data, D, limit, maxRecordsPerLap, maxEpoch: h.epoch }, pos, seq, epoch);
    if (!found) {
      cutRecords = h.nextSeq - seq;
      cutBytes = Math.max(RECORD_HEADER_BYTES, Math.min(h.writePos, limit) - pos);
      break;
    }
    addGap(gaps, pos, seq, found.pos, found.seq);
    skippedRecords += found.seq - seq;
    skippedBytes += found.pos - pos;
    pos = found.pos;
    seq = found.seq;
  }
  const unclean = !(h.flags & FLAG_CLOSED) || pos !== h.writePos || seq !== h.nextSeq || cutBytes > 0 || skippedBytes > 0 || skippedRecords > 0;
  return { readPos: h.readPos, readSeq: h.readSeq, writePos: pos, nextSeq: seq, records, gaps, skippedRecords, skippedBytes, cutRecords, cutBytes, ackedRecords, unclean };
}

interface Region {
  v: DataView;
  data: Uint8Array;
  D: number;
  /** The scan never goes past this logical position (one lap from the read position). */
  limit: number;
  maxRecordsPerLap: number;
  /** The header's epoch: no record is newer. */
  maxEpoch: number;
}

/**
 * The first valid record or wrap marker at or after `from` whose sequence number continues ours
 * (`expect` or a little beyond) with an epoch no older than `epoch`.
 */
function resync(r: Region, from: number, expect: number, epoch: number): { pos: number; seq: number; epoch: number } | null {
  const { v, data, D, limit } = r;
  let p = from;
  while (p < limit) {
    const phys = p % D;
    if (D - phys < RECORD_HEADER_BYTES) {
      p += D - phys;
      continue;
    }
    if (recordSync(v, phys) === RECORD_SYNC) {
      const span = validRecordSpan(v, data, phys, D);
      if (span > 0) {
        const s = recordSeq(v, phys);
        const e = recordEpoch(v, phys);
        const isWrap = recordKind(v, phys) === KIND_WRAP;
        if (s >= expect && s < expect + r.maxRecordsPerLap && e >= epoch && e <= r.maxEpoch && (isWrap || p + span <= limit)) return { pos: p, seq: s, epoch: e };
        p += span; // a valid record of an earlier lap: step over it whole
        continue;
      }
    }
    p += RECORD_ALIGN;
  }
  return null;
}
