// Batch bodies spliced from the ring's serialised records: `[` p0 `,` p1 ... `]`, copied once,
// never parsed. A batch remembers where each record sits so that a refused batch can be split
// into halves (bisection) by slicing the same bytes.

export interface Batch {
  /** Ring sequence number of record 0. */
  firstSeq: number;
  count: number;
  /** The whole JSON array. */
  body: Uint8Array<ArrayBuffer>;
  /** Byte offset in body where record i starts / ends (exclusive). */
  starts: Uint32Array;
  ends: Uint32Array;
}

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c; // ,

/** Size of the JSON array holding records of these total payload bytes. */
export function bodySize(count: number, payloadBytes: number): number {
  return count === 0 ? 2 : payloadBytes + count + 1; // brackets + (count - 1) commas
}

/**
 * The payload bytes to ask the ring for so that the spliced body stays within maxBodyBytes
 * whatever the number of records (at most maxEvents): brackets and commas are reserved.
 * Never below half the cap (records are hundreds of bytes, so separators are ~1 % of a body).
 */
export function payloadBudget(maxEvents: number, maxBodyBytes: number): number {
  return Math.max(Math.floor(maxBodyBytes / 2), maxBodyBytes - maxEvents - 1);
}

/** Splices payloads into one JSON array body. */
export function spliceBatch(firstSeq: number, payloads: readonly Uint8Array[]): Batch {
  let total = 0;
  for (const p of payloads) total += p.length;
  const count = payloads.length;
  const body = new Uint8Array(bodySize(count, total));
  const starts = new Uint32Array(count);
  const ends = new Uint32Array(count);
  body[0] = OPEN;
  let at = 1;
  for (let i = 0; i < count; i++) {
    if (i > 0) body[at++] = COMMA;
    const p = payloads[i]!;
    starts[i] = at;
    body.set(p, at);
    at += p.length;
    ends[i] = at;
  }
  body[at] = CLOSE;
  return { firstSeq, count, body, starts, ends };
}

/** The body of records [from, to) of a batch (a copy only when it is not the whole batch). */
export function sliceBody(batch: Batch, from: number, to: number): Uint8Array<ArrayBuffer> {
  if (from === 0 && to === batch.count) return batch.body;
  if (from >= to) throw new RangeError(`empty slice ${from}..${to}`);
  const inner = batch.body.subarray(batch.starts[from]!, batch.ends[to - 1]!);
  const out = new Uint8Array(inner.length + 2);
  out[0] = OPEN;
  out.set(inner, 1);
  out[out.length - 1] = CLOSE;
  return out;
}

/** One record's bytes (a view). */
export function recordBytes(batch: Batch, i: number): Uint8Array {
  return batch.body.subarray(batch.starts[i]!, batch.ends[i]!);
}

/** Bisection: the two halves of [from, to) to retry after a refusal (the first half the larger). */
export function splitRange(from: number, to: number): [[number, number], [number, number]] {
  if (to - from < 2) throw new RangeError(`cannot split a range of ${to - from} record(s)`);
  const mid = from + Math.ceil((to - from) / 2);
  return [
    [from, mid],
    [mid, to],
  ];
}
