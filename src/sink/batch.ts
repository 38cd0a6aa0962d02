// Batch bodies spliced from the ring's serialised records: `[` p0 `,` p1 ... `]`, copied once,
// never parsed. A batch remembers where each record sits so that a refused batch can be split
// into halves (bisection) by slicing the same bytes.
//
// The sender splices into reusable buffers (BatchPool): a fresh ~0.5 MB body per batch cost
// page faults and kept anonymous memory growing with delivery volume until the GC caught up
// (bench/sink-memory.ts). A pooled buffer goes back only when its batch is finished (acknowledged,
// dead-lettered or abandoned), after every request that read it has settled.

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
const EMPTY = new Uint8Array(0);

/** Memory for bodies; in a SharedArrayBuffer when a worker is to use it in place (typed as the
 * ArrayBuffer kind: fetch, gzip and file writes take either). */
function allocate(length: number, shared: boolean): Uint8Array<ArrayBuffer> {
  return (shared ? new Uint8Array(new SharedArrayBuffer(length)) : new Uint8Array(length)) as Uint8Array<ArrayBuffer>;
}

/** The largest gzip output of `n` bytes (deflate's stored blocks: 5 bytes per 16 KiB, plus the gzip header and trailer). */
export function gzipBound(n: number): number {
  return n + 5 * Math.ceil(n / 16384) + 64;
}

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

/**
 * A batch filled in place: records are copied in as they are read from the ring (the ring's
 * views are valid only until acknowledged), then finish() closes the array. Reusable: reset()
 * starts a new batch in the same memory. A batch larger than the buffer (one record above the
 * byte budget) gets memory of its own for that batch only, so the pool never keeps it.
 */
export class BatchBuffer implements Batch {
  firstSeq = 0;
  count = 0;
  /** Payload bytes so far (without brackets and commas). */
  payloadBytes = 0;
  body: Uint8Array<ArrayBuffer>;
  starts: Uint32Array;
  ends: Uint32Array;
  readonly #ownBody: Uint8Array<ArrayBuffer>;
  readonly #ownStarts: Uint32Array;
  readonly #ownEnds: Uint32Array;
  #buf: Uint8Array<ArrayBuffer>;
  #at = 1;
  #wire: Uint8Array<ArrayBuffer> | null = null;

  /**
   * bodyBytes: the largest body this buffer holds without a one-off allocation; maxRecords likewise.
   * shared: body and wire memory in SharedArrayBuffers, which the gzip worker reads and writes in place.
   */
  constructor(
    bodyBytes: number,
    maxRecords: number,
    readonly shared = false,
  ) {
    // Pages are only touched as batches fill them: an unused tail costs address space, not memory.
    this.#ownBody = this.#buf = allocate(Math.max(2, bodyBytes), shared);
    this.#ownStarts = this.starts = new Uint32Array(Math.max(1, maxRecords));
    this.#ownEnds = this.ends = new Uint32Array(Math.max(1, maxRecords));
    this.body = EMPTY;
  }

  /** Starts an empty batch whose first record will be firstSeq. */
  reset(firstSeq: number): this {
    this.firstSeq = firstSeq;
    this.count = 0;
    this.payloadBytes = 0;
    this.#buf = this.#ownBody;
    this.starts = this.#ownStarts;
    this.ends = this.#ownEnds;
    this.#buf[0] = OPEN;
    this.#at = 1;
    this.body = EMPTY;
    return this;
  }

  /** True while the memory is the pool's own (no one-off growth for an oversize batch). */
  get pooledMemory(): boolean {
    return this.#buf === this.#ownBody;
  }

  /** Copies payloads in (they follow the records already in the batch). */
  add(payloads: readonly Uint8Array[], bytes?: number): void {
    const n = payloads.length;
    if (n === 0) return;
    if (bytes === undefined) {
      bytes = 0;
      for (let i = 0; i < n; i++) bytes += payloads[i]!.length;
    }
    this.#reserve(this.count + n, this.#at + bytes + n + 1);
    const buf = this.#buf;
    const starts = this.starts;
    const ends = this.ends;
    let at = this.#at;
    let c = this.count;
    for (let i = 0; i < n; i++) {
      if (c > 0) buf[at++] = COMMA;
      const p = payloads[i]!;
      starts[c] = at;
      buf.set(p, at);
      at += p.length;
      ends[c++] = at;
    }
    this.#at = at;
    this.count = c;
    this.payloadBytes += bytes;
  }

  /**
   * Copies records given as ranges of the ring's data region (they follow the records already in
   * the batch), each after its prefix when it has one (a compact record: record-expander.ts), so
   * the body holds full records. Buffer.copy takes offsets, so no view object is made per record.
   * `bytes`: the records' full length.
   */
  addRanges(r: { count: number; bytes: number; data: Buffer; offsets: Uint32Array; prefixes?: (Uint8Array | null)[] | null }): void {
    const n = r.count;
    if (n === 0) return;
    this.#reserve(this.count + n, this.#at + r.bytes + n + 1);
    const buf = this.#buf;
    const starts = this.starts;
    const ends = this.ends;
    const data = r.data;
    const o = r.offsets;
    const prefixes = r.prefixes ?? null;
    let at = this.#at;
    let c = this.count;
    for (let i = 0; i < n; i++) {
      if (c > 0) buf[at++] = COMMA;
      starts[c] = at;
      const prefix = prefixes === null ? null : (prefixes[i] as Uint8Array | null);
      if (prefix !== null) {
        buf.set(prefix, at);
        at += prefix.length;
      }
      at += data.copy(buf, at, o[2 * i]!, o[2 * i + 1]!);
      ends[c++] = at;
    }
    this.#at = at;
    this.count = c;
    this.payloadBytes += r.bytes;
  }

  /** Closes the array; body is then the whole JSON array. */
  finish(): this {
    this.#buf[this.#at] = CLOSE;
    this.body = this.#buf.subarray(0, this.#at + 1);
    return this;
  }

  /**
   * Keeps a copy of the encoded (compressed) body in memory reused by the batches of this buffer,
   * so that the encoder's fresh output dies at once instead of living as long as the batch's requests.
   */
  keepWire(encoded: Uint8Array): Uint8Array<ArrayBuffer> {
    const wire = this.wireMemory(encoded.length);
    wire.set(encoded);
    return wire.subarray(0, encoded.length);
  }

  /**
   * This buffer's memory for its encoded body, at least `minBytes` long (shared when the buffer is):
   * grown to the largest seen, at most the body's size plus gzip's framing (pages touched lazily).
   */
  wireMemory(minBytes: number): Uint8Array<ArrayBuffer> {
    if (this.#wire === null || this.#wire.length < minBytes) {
      this.#wire = allocate(Math.max(minBytes, Math.min(gzipBound(this.#ownBody.length), minBytes * 2)), this.shared);
    }
    return this.#wire;
  }

  #reserve(records: number, bodyBytes: number): void {
    if (records > this.starts.length) {
      const len = Math.max(records, this.starts.length * 2);
      const s = new Uint32Array(len);
      const e = new Uint32Array(len);
      s.set(this.starts.subarray(0, this.count));
      e.set(this.ends.subarray(0, this.count));
      this.starts = s;
      this.ends = e;
    }
    if (bodyBytes > this.#buf.length) {
      const b = new Uint8Array(Math.max(bodyBytes, this.#buf.length * 2));
      b.set(this.#buf.subarray(0, this.#at));
      this.#buf = b;
    }
  }
}

/**
 * Reusable batch buffers, at most `limit` of them (the sender's bound on batches outstanding):
 * taking one more than the limit is a bug, not a reason to allocate.
 */
export class BatchPool {
  readonly #free: BatchBuffer[] = [];
  #created = 0;
  #inUse = 0;

  constructor(
    readonly limit: number,
    readonly bodyBytes: number,
    readonly maxRecords: number,
    /** Buffers in shared memory (BatchBuffer's `shared`). */
    readonly shared = false,
  ) {}

  take(firstSeq: number): BatchBuffer {
    let b = this.#free.pop();
    if (!b) {
      if (this.#created >= this.limit) throw new Error(`batch pool exhausted: ${this.#inUse} of ${this.limit} buffers in use`);
      b = new BatchBuffer(this.bodyBytes, this.maxRecords, this.shared);
      this.#created++;
    }
    this.#inUse++;
    return b.reset(firstSeq);
  }

  /** Returns a buffer once nothing reads its batch any more (every request for it settled). */
  give(b: BatchBuffer): void {
    if (this.#free.includes(b)) throw new Error("batch buffer returned twice");
    this.#inUse--;
    b.reset(0); // drops a one-off oversize body now rather than at the next take
    this.#free.push(b);
  }

  /** Buffers ever created (≤ limit), handed out now, and free. */
  stats(): { created: number; inUse: number; free: number; limit: number } {
    return { created: this.#created, inUse: this.#inUse, free: this.#free.length, limit: this.limit };
  }
}

/** Splices payloads into one JSON array body (memory of its own: tests, benchmarks, one-offs). */
export function spliceBatch(firstSeq: number, payloads: readonly Uint8Array[]): Batch {
  let total = 0;
  for (const p of payloads) total += p.length;
  const b = new BatchBuffer(bodySize(payloads.length, total), payloads.length).reset(firstSeq);
  b.add(payloads, total);
  return b.finish();
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
