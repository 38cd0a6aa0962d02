// Between the ring (through its tap) and the batch assembler: resolves compact records to their
// full JSON (docs/ring-format.md "Compact records"). Nothing is copied here: each chunk says which
// prefix goes before which stored suffix, and the batch splices both into its body (batch.ts), so
// the wire format is the full record, byte for byte. Chunks are cut to the byte budget counted in
// full records. A compact record whose prefix the table does not hold (a damaged or lost table)
// is handed to `unresolved` (which dead-letters and acknowledges it) and never blocks the ring.
import { COMPACT_TAG, type CompactHead, readCompactHead } from "../buffer/compact-record.ts";
import type { PrefixLookup } from "../buffer/prefix-table.ts";
import type { Ring, RingRanges } from "../buffer/types.ts";

/**
 * Ranges of full records: record i is prefixes[i] (when not null) followed by the stored bytes
 * data[offsets[2i], offsets[2i + 1]); `bytes` counts full records. prefixes is null when no record
 * of the chunk has one.
 */
export interface RecordRanges extends RingRanges {
  prefixes: (Uint8Array | null)[] | null;
}

/** A record that cannot be expanded: its sequence number, its stored bytes (a copy), why. */
export interface UnresolvedRecord {
  seq: number;
  stored: Uint8Array;
  reason: string;
}

const NO_PREFIXES: PrefixLookup = { prefix: () => undefined };

export class RecordExpander {
  /** Records handed out by the ring that did not fit the last chunk: they start the next one. */
  #left: RingRanges | null = null;
  readonly #head: CompactHead = { id: 0, length: 0 };

  constructor(
    private readonly ring: Pick<Ring, "readRanges" | "waitForData">,
    private readonly prefixes: PrefixLookup = NO_PREFIXES,
    private readonly unresolved: (r: UnresolvedRecord) => void,
  ) {}

  /** As Ring.readRanges, with maxBytes and `bytes` counted in full records. */
  readRanges(maxRecords: number, maxBytes: number): RecordRanges | null {
    for (;;) {
      const src = this.#left ?? this.ring.readRanges(maxRecords, maxBytes);
      this.#left = null;
      if (!src) return null;
      const out = this.#take(src, maxRecords, maxBytes);
      if (out) return out;
    }
  }

  waitForData(): Promise<void> {
    return this.#left ? Promise.resolve() : this.ring.waitForData();
  }

  /**
   * The records of src that fit (at least one), the rest kept for the next call; null when the
   * first record could not be expanded (reported; the rest kept).
   */
  #take(src: RingRanges, maxRecords: number, maxBytes: number): RecordRanges | null {
    const { data } = src;
    const o = src.offsets;
    const head = this.#head;
    const n = Math.min(src.count, maxRecords);
    let prefixes: (Uint8Array | null)[] | null = null;
    // A copy once a record is compact: the ring's offsets stay as it handed them out (the tap
    // hands them out again to a replacement sender).
    let offsets = o;
    let bytes = 0;
    let stored = 0;
    let count = 0;
    for (; count < n; count++) {
      const s = o[2 * count] as number;
      const e = o[2 * count + 1] as number;
      let len = e - s;
      let prefix: Uint8Array | undefined;
      if (data[s] === COMPACT_TAG) {
        prefix = readCompactHead(data, s, e, head) ? this.prefixes.prefix(head.id) : undefined;
        if (!prefix) {
          if (count > 0) break; // it starts the next chunk
          this.#report(src, head.id);
          return null;
        }
        len += prefix.length - head.length;
      }
      if (count > 0 && bytes + len > maxBytes) break;
      if (prefix) {
        if (prefixes === null) {
          prefixes = new Array<Uint8Array | null>(n).fill(null);
          offsets = o.slice(0, 2 * n);
        }
        prefixes[count] = prefix;
        offsets[2 * count] = s + head.length;
      }
      bytes += len;
      stored += e - s;
    }
    if (count < src.count) this.#left = rest(src, count, stored);
    if (2 * count < offsets.length) offsets = offsets.subarray(0, 2 * count);
    return { firstSeq: src.firstSeq, count, bytes, data, offsets, prefixes };
  }

  #report(src: RingRanges, id: number): void {
    const s = src.offsets[0] as number;
    const e = src.offsets[1] as number;
    if (src.count > 1) this.#left = rest(src, 1, e - s);
    const reason = id > 0 ? `its prefix ${id} is not in the prefix table` : "its compact head is malformed";
    this.unresolved({ seq: src.firstSeq, stored: Uint8Array.from(src.data.subarray(s, e)), reason });
  }
}

/** Records [k, count) of a chunk; `storedBefore`: the stored bytes of records [0, k). */
function rest(r: RingRanges, k: number, storedBefore: number): RingRanges {
  return { firstSeq: r.firstSeq + k, count: r.count - k, bytes: r.bytes - storedBefore, data: r.data, offsets: r.offsets.subarray(2 * k) };
}
