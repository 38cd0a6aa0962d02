// The counting sink's ledger: what arrived, counted from the request bodies themselves. It does not
// zod-validate or JSON.parse every record (that would cost more CPU than the collector it measures):
// it checks that a body is a JSON array of objects and scans each record's
// `"message":"seq=<stream>:<n> ` and (with latency on) `"timestamp":"…"`. Sequence numbers are kept
// in a bitmap per stream: distinct, duplicated, and — against the expectation the runner posts —
// missing. Every figure is timed by the body's arrival, not by when it was counted, so a ledger may
// lag behind the HTTP front (counting-sink.ts) without changing what it reports.

const MESSAGE_MARK = '"message":"seq=';
const TS_MARK = '"timestamp":"';
const LAT_BUCKETS = 120_000; // 1 ms buckets up to 120 s

export interface LedgerControl {
  expected?: number[];
  latency?: boolean;
  /** The text every record begins with, to count records without a seq mark (default `{"orgUUID"`). */
  recordStart?: string;
}

export interface LedgerStats {
  /** Records in bodies that were accepted, duplicates included. */
  events: number;
  distinct: number;
  duplicates: number;
  /** Expected − distinct, over the streams posted in `expected` (null when none was posted). */
  missing: number | null;
  /** Records whose message has no `seq=` mark, or a stream/number outside the expectation. */
  foreign: number;
  /** Bodies answered 2xx before they were counted that then proved not to be a gzip'd JSON array (counted nothing). */
  invalidBodies: number;
  bytesRaw: number;
  /** Epoch ms of the arrival of the first record, and of the last record that was new. */
  firstAt: number | null;
  lastNewAt: number | null;
  /** Epoch ms of the arrival that brought distinct to the expected total (null before). */
  completeAt: number | null;
  latency: { count: number; p50: number; p99: number; max: number } | null;
}

class SeqSet {
  private bits = new Uint8Array(1 << 13);
  /** Marks n; returns false when it was already there. */
  add(n: number): boolean {
    const byte = n >>> 3;
    if (byte >= this.bits.length) {
      let len = this.bits.length;
      while (len <= byte) len *= 2;
      const next = new Uint8Array(len);
      next.set(this.bits);
      this.bits = next;
    }
    const mask = 1 << (n & 7);
    if (this.bits[byte]! & mask) return false;
    this.bits[byte]! |= mask;
    return true;
  }
  /** Distinct numbers below `limit`. */
  countBelow(limit: number): number {
    let c = 0;
    for (let n = 0; n < limit; n++) if ((this.bits[n >>> 3] ?? 0) & (1 << (n & 7))) c++;
    return c;
  }
}

function parseDigits(s: string, at: number): [number, number] {
  let v = 0;
  let i = at;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  return [i === at ? -1 : v, i];
}

/** Epoch ms of an RFC 3339 timestamp with up to 9 fraction digits (sub-ms digits kept). */
function parseTimestampMs(s: string, at: number, end: number): number {
  const t = s.slice(at, end);
  const dot = t.indexOf(".");
  if (dot < 0) return Date.parse(t);
  let fracEnd = dot + 1;
  while (fracEnd < t.length && t.charCodeAt(fracEnd) >= 48 && t.charCodeAt(fracEnd) <= 57) fracEnd++;
  const frac = t.slice(dot + 1, fracEnd);
  const whole = Date.parse(t.slice(0, dot) + t.slice(fracEnd));
  return whole + Number(`0.${frac}`) * 1000;
}

function blankCounts() {
  return { events: 0, distinct: 0, duplicates: 0, foreign: 0, invalidBodies: 0, bytesRaw: 0, firstAt: null as number | null, lastNewAt: null as number | null, completeAt: null as number | null };
}

export class SinkLedger {
  #sets: SeqSet[] = [];
  #expected: number[] | null = null;
  #expectedTotal = 0;
  #latencyOn: boolean;
  #recordStart = '{"orgUUID"';
  #c = blankCounts();
  #lat = new Uint32Array(LAT_BUCKETS + 1);
  #latMax = 0;
  readonly #decoder = new TextDecoder();

  constructor(opts: { latency?: boolean } = {}) {
    this.#latencyOn = opts.latency ?? false;
  }

  control(c: LedgerControl): void {
    if (typeof c.recordStart === "string" && c.recordStart) this.#recordStart = c.recordStart;
    if (c.expected) {
      this.#expected = c.expected;
      this.#expectedTotal = c.expected.reduce((a, b) => a + b, 0);
    }
    if (typeof c.latency === "boolean") this.#latencyOn = c.latency;
  }

  /** Forgets every record and figure (the expectation stays). */
  reset(): void {
    this.#sets = [];
    this.#c = blankCounts();
    this.#lat = new Uint32Array(LAT_BUCKETS + 1);
    this.#latMax = 0;
  }

  /**
   * Counts one accepted body that arrived at `arrivedAt` (epoch ms). Returns why it is not a
   * (gzip'd) JSON array of objects, counting nothing, or null. `countInvalid`: the body was already
   * answered 2xx, so a bad one is counted in invalidBodies.
   */
  ingest(wire: Uint8Array, gzipped: boolean, arrivedAt: number, countInvalid = false): string | null {
    let raw = wire;
    if (gzipped) {
      try {
        // libdeflate: ~0.3 µs per event against node:zlib's ~0.7 (batch of 1024 records; the same bytes).
        raw = Bun.gunzipSync(wire as Uint8Array<ArrayBuffer>, { library: "libdeflate" });
      } catch {
        return this.#invalid("bad gzip", countInvalid);
      }
    }
    const err = this.#count(this.#decoder.decode(raw), arrivedAt);
    if (err) return this.#invalid(err, countInvalid);
    this.#c.bytesRaw += raw.length;
    return null;
  }

  stats(): LedgerStats {
    let missing: number | null = null;
    const expected = this.#expected;
    if (expected) {
      missing = 0;
      for (let s = 0; s < expected.length; s++) missing += expected[s]! - (this.#sets[s] ? this.#sets[s]!.countBelow(expected[s]!) : 0);
    }
    let count = 0;
    for (let i = 0; i <= LAT_BUCKETS; i++) count += this.#lat[i]!;
    return {
      ...this.#c,
      missing,
      latency: count ? { count, p50: this.#percentile(0.5, count), p99: this.#percentile(0.99, count), max: Math.round(this.#latMax) } : null,
    };
  }

  #invalid(why: string, countInvalid: boolean): string {
    if (countInvalid) this.#c.invalidBodies++;
    return why;
  }

  #count(text: string, now: number): string | null {
    let a = 0;
    while (a < text.length && text.charCodeAt(a) <= 32) a++;
    let z = text.length - 1;
    while (z >= 0 && text.charCodeAt(z) <= 32) z--;
    if (text[a] !== "[" || text[z] !== "]") return "body is not a JSON array";
    if (z - a > 1 && text[a + 1] !== "{") return "array elements must be objects";
    const c = this.#c;
    const expected = this.#expected;
    let pos = a;
    let records = 0;
    for (;;) {
      const m = text.indexOf(MESSAGE_MARK, pos);
      if (m < 0) break;
      records++;
      const [stream, p1] = parseDigits(text, m + MESSAGE_MARK.length);
      const [n, p2] = text.charCodeAt(p1) === 58 ? parseDigits(text, p1 + 1) : [-1, p1];
      pos = p2;
      if (stream < 0 || n < 0 || (expected && (stream >= expected.length || n >= expected[stream]!))) {
        c.foreign++;
        continue;
      }
      const set = (this.#sets[stream] ??= new SeqSet());
      if (set.add(n)) {
        c.distinct++;
        c.lastNewAt = now;
      } else c.duplicates++;
      if (this.#latencyOn) this.#timeRecord(text, m, now);
    }
    // Records without a seq mark (not ours) still count as events received.
    const objects = this.#countObjects(text, a, z);
    c.foreign += Math.max(0, objects - records);
    c.events += objects;
    if (objects > 0 && c.firstAt === null) c.firstAt = now;
    if (expected && c.completeAt === null && c.distinct >= this.#expectedTotal) c.completeAt = now;
    return null;
  }

  /** The record's own timestamp precedes its message (the contract's field order). */
  #timeRecord(text: string, messageAt: number, now: number): void {
    const t = text.lastIndexOf(TS_MARK, messageAt);
    if (t < 0) return;
    const ts = t + TS_MARK.length;
    const ms = now - parseTimestampMs(text, ts, text.indexOf('"', ts));
    if (!Number.isFinite(ms)) return;
    this.#lat[Math.min(LAT_BUCKETS, Math.max(0, Math.round(ms)))]!++;
    if (ms > this.#latMax) this.#latMax = ms;
  }

  /** Top-level objects of the array: recordStart (`{"orgUUID"`) starts every record the collector sends. */
  #countObjects(text: string, a: number, z: number): number {
    let n = 0;
    let pos = a;
    for (;;) {
      const i = text.indexOf(this.#recordStart, pos);
      if (i < 0 || i > z) break;
      n++;
      pos = i + this.#recordStart.length;
    }
    return n;
  }

  #percentile(q: number, count: number): number {
    const target = Math.ceil(q * count);
    let acc = 0;
    for (let i = 0; i <= LAT_BUCKETS; i++) {
      acc += this.#lat[i]!;
      if (acc >= target) return i;
    }
    return LAT_BUCKETS;
  }
}
