// Both header copies unreadable (docs/ring-format.md, Recovery step 1): the records still say where
// the ring stood. Pure over the data region: finds the newest run of records, from which the open
// rebuilds a header (ring-files.ts) and then recovers as usual (recovery.ts).
//
// Every record carries its sequence number and epoch and is checksummed, and the writer goes round
// the data region in order. So the newest record is the one with the highest (epoch, sequence
// number), and the ring's content is the run that ends there: going back from it — down through
// the region, then from its end down to where the newest record ended — each record's predecessor
// (sequence number one lower, epoch no newer) lies further back. The run goes back to the oldest
// record it reaches; it may include records acknowledged before the headers were lost (those are
// sent again: at least once).
//
// Damage inside the run: when the predecessor is missing, the run continues at the next lower
// sequence number found further back (the recovery scan then skips and counts the hole, as for any
// damage), if the missing records fit in the bytes between (24 bytes each at least). The highest
// number wins, not the nearest record: the unused end of a lap may hold an older lap's record.
import {
  KIND_DATA,
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
} from "./format.ts";

export interface RecoveredRun {
  /** Logical positions: the oldest record of the run, and the end of the newest (one lap later when the run wraps). */
  readPos: number;
  readSeq: number;
  writePos: number;
  nextSeq: number;
  /** The newest record's epoch: no record of the run is newer. */
  epoch: number;
  /** Records in the run (holes excluded). */
  records: number;
}

/** Every valid data record in the region, in physical order: where it starts and its sequence number. */
interface Found {
  count: number;
  phys: Float64Array;
  seq: Float64Array;
}

function findRecords(data: Uint8Array, v: DataView, D: number): Found {
  // Typed and grown by doubling: 16 bytes a record (a 500 MB ring of 300-byte records: ~27 MB).
  let phys = new Float64Array(1024);
  let seq = new Float64Array(1024);
  let count = 0;
  for (let p = 0; p + RECORD_HEADER_BYTES <= D; ) {
    if (recordSync(v, p) === RECORD_SYNC) {
      const span = validRecordSpan(v, data, p, D);
      if (span > 0) {
        if (recordKind(v, p) === KIND_DATA) {
          if (count === phys.length) {
            const grow = (a: Float64Array) => {
              const b = new Float64Array(a.length * 2);
              b.set(a);
              return b;
            };
            phys = grow(phys);
            seq = grow(seq);
          }
          phys[count] = p;
          seq[count++] = recordSeq(v, p);
        }
        p += span;
        continue;
      }
    }
    p += RECORD_ALIGN;
  }
  return { count, phys, seq };
}

/**
 * Candidates looked at, further back, for a missing predecessor: the records between are at most
 * a few stale ones in the unused end of a lap (a hole's damage holds none).
 */
const HOLE_WINDOW = 64;

/** The newest run of records in a data region of D bytes, or null when it holds no valid record. */
export function findNewestRun(data: Uint8Array, D: number): RecoveredRun | null {
  const v = new DataView(data.buffer, data.byteOffset, D);
  const { count: n, phys, seq } = findRecords(data, v, D);
  if (n === 0) return null;
  const epochOf = (i: number) => recordEpoch(v, phys[i]!);
  const endOf = (i: number) => phys[i]! + recordSpan(recordLength(v, phys[i]!));
  let newest = 0;
  for (let i = 1; i < n; i++) {
    const e = epochOf(i);
    const en = epochOf(newest);
    if (e > en || (e === en && seq[i]! > seq[newest]!)) newest = i;
  }
  const end = endOf(newest);
  /** Candidate k places back from the newest, in the order the region is walked back (k < n). */
  const at = (k: number) => (newest - k + n) % n;
  let oldest = 0; // in places back
  let records = 1;
  for (;;) {
    const o = at(oldest);
    const c = seq[o]!;
    const epoch = epochOf(o);
    let found = -1;
    for (let k = oldest + 1; k < n && k <= oldest + HOLE_WINDOW; k++) {
      const i = at(k);
      const s = seq[i]!;
      if (s >= c || epochOf(i) > epoch) continue; // an abandoned tail's survivor, or not this history
      if (s === c - 1) {
        found = k;
        break;
      }
      // A hole: the missing records must fit in the bytes between (24 each at least).
      const between = (phys[o]! - endOf(i) + D) % D;
      if ((c - s - 1) * RECORD_HEADER_BYTES <= between && (found < 0 || s > seq[at(found)]!)) found = k;
    }
    if (found < 0) break;
    oldest = found;
    records++;
  }
  const o = at(oldest);
  const readPos = phys[o]!;
  return { readPos, readSeq: seq[o]!, writePos: readPos < end ? end : end + D, nextSeq: seq[newest]! + 1, epoch: epochOf(newest), records };
}
