// The ring as tests and benchmarks like to use it: records as an array of payloads. Production
// appends packed records (the router's encoding) and reads ranges of the data region (the sender
// copies them into a body); these helpers go through exactly those calls.
import type { PackedRecords, Ring, RingRanges } from "../../src/buffer/types.ts";

/** Records read back: views into the mapping, valid only until acknowledged. */
export interface PayloadBatch {
  /** Sequence number of payloads[0]; the rest follow consecutively. */
  firstSeq: number;
  payloads: Uint8Array[];
  /** Sum of payload lengths. */
  bytes: number;
}

/** The payloads packed back to back in one buffer, as the router hands them to the ring. */
export function pack(payloads: readonly Uint8Array[]): PackedRecords {
  let total = 0;
  for (const p of payloads) total += p.length;
  const bytes = new Uint8Array(total);
  const ends = new Uint32Array(payloads.length);
  let at = 0;
  payloads.forEach((p, i) => {
    bytes.set(p, at);
    at += p.length;
    ends[i] = at;
  });
  return { bytes, ends, count: payloads.length };
}

/** Appends the payloads in order; resolves with the sequence number of the last one. */
export function appendPayloads(ring: Pick<Ring, "appendPacked">, payloads: readonly Uint8Array[]): Promise<number> {
  return ring.appendPacked(pack(payloads));
}

/** Record i of a range set, as a view. */
export function rangeView(r: RingRanges, i: number): Uint8Array {
  return r.data.subarray(r.offsets[2 * i]!, r.offsets[2 * i + 1]!);
}

/** readRanges, with one view per record. */
export function readPayloads(ring: Pick<Ring, "readRanges">, maxRecords: number, maxBytes: number): PayloadBatch | null {
  const r = ring.readRanges(maxRecords, maxBytes);
  if (!r) return null;
  return { firstSeq: r.firstSeq, payloads: Array.from({ length: r.count }, (_, i) => rangeView(r, i)), bytes: r.bytes };
}
