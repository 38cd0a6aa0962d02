// A tap on the consumer side of the ring, between the ring and the sender. It passes calls
// through and, per read chunk (never per event), keeps what the operations side needs:
//   - the sender loop's heartbeat: when it last asked for records, and whether records are
//     waiting that it has not taken;
//   - end-to-end latency: the line timestamps of the first and last record of every chunk
//     handed out (parsed from the record's `"timestamp"` field), observed when acknowledged;
//   - per-process accounting: acknowledged records split into those appended by this process
//     and those replayed from the ring file left by an earlier one;
//   - hand-over: records handed out and not acknowledged stay valid in the mapping until
//     acknowledged, so when a sender is replaced (SIGHUP with new messenger settings) rewind()
//     hands them again to its successor, before anything new.
import { type CompactHead, readCompactHead } from "../buffer/compact-record.ts";
import type { Ring, RingRanges } from "../buffer/types.ts";

export type ConsumerRing = Pick<Ring, "readRanges" | "waitForData" | "ack">;

interface Chunk {
  firstSeq: number;
  ranges: RingRanges;
  /** acked[i] = 1 once firstSeq + i is acknowledged. */
  acked: Uint8Array;
  left: number;
}

/** Record i of a range set, as a view (for the few records the tap samples). */
function view(r: RingRanges, i: number): Uint8Array {
  return r.data.subarray(r.offsets[2 * i]!, r.offsets[2 * i + 1]!);
}

export interface RingTapCounters {
  /** Acknowledged records appended by this process / found in the ring file at start. */
  ackedOwn: number;
  ackedReplayed: number;
  /** Records handed out again to a replacement sender. */
  rehanded: number;
  /** Sampled records whose timestamp could not be parsed (no latency observed). */
  latencyUnparsed: number;
}

export class RingTap implements ConsumerRing {
  readonly counters: RingTapCounters = { ackedOwn: 0, ackedReplayed: 0, rehanded: 0, latencyUnparsed: 0 };
  /** Epoch ms of the last readRanges() call (the sender loop's heartbeat). */
  lastReadAt: number;
  /** Highest sequence number ever handed out. */
  highestHandedOut: number;
  private chunks: Chunk[] = [];
  private replay: RingRanges[] = [];
  /** Line timestamp (epoch ms) of sampled records, by sequence number, until acknowledged. */
  private readonly samples = new Map<number, number>();

  constructor(
    private readonly ring: Pick<Ring, "readRanges" | "waitForData" | "ack" | "stats">,
    /** Records with a lower sequence number were appended by an earlier process. */
    readonly firstOwnSeq: number,
    /** Observes one end-to-end latency sample, in seconds. */
    private readonly observeLatency: (seconds: number) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.lastReadAt = now();
    this.highestHandedOut = ring.stats().readSeq - 1;
  }

  readRanges(maxRecords: number, maxBytes: number): RingRanges | null {
    this.lastReadAt = this.now();
    const r = this.replay.length ? this.takeReplay(maxRecords, maxBytes) : this.ring.readRanges(maxRecords, maxBytes);
    if (!r || r.count === 0) return r;
    const n = r.count;
    const last = r.firstSeq + n - 1;
    if (last > this.highestHandedOut) this.highestHandedOut = last;
    this.chunks.push({ firstSeq: r.firstSeq, ranges: r, acked: new Uint8Array(n), left: n });
    this.sample(r.firstSeq, view(r, 0));
    if (n > 1) this.sample(last, view(r, n - 1));
    return r;
  }

  waitForData(): Promise<void> {
    return this.replay.length ? Promise.resolve() : this.ring.waitForData();
  }

  ack(firstSeq: number, count: number): void {
    this.ring.ack(firstSeq, count);
    const end = firstSeq + count;
    const own = Math.max(0, end - Math.max(firstSeq, this.firstOwnSeq));
    this.counters.ackedOwn += own;
    this.counters.ackedReplayed += count - own;
    if (this.samples.size) {
      const t = this.now();
      for (const [seq, ts] of this.samples) {
        if (seq >= firstSeq && seq < end) {
          this.observeLatency(Math.max(0, (t - ts) / 1000));
          this.samples.delete(seq);
        }
      }
    }
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i] as Chunk;
      const from = Math.max(firstSeq, c.firstSeq);
      const to = Math.min(end, c.firstSeq + c.ranges.count);
      for (let s = from; s < to; s++) {
        const k = s - c.firstSeq;
        if (c.acked[k] === 0) {
          c.acked[k] = 1;
          c.left--;
        }
      }
      if (c.left === 0) this.chunks.splice(i--, 1);
    }
  }

  /** Records waiting to be handed again to a replacement reader. */
  get replayPending(): boolean {
    return this.replay.length > 0;
  }

  /** Records handed out and not acknowledged. */
  outstandingRecords(): number {
    let n = 0;
    for (const c of this.chunks) n += c.left;
    return n;
  }

  /**
   * The previous reader is gone (stopped and settled): hand everything it held unacknowledged
   * to the next reader, in sequence order, before new records.
   */
  rewind(): void {
    const runs: Array<{ firstSeq: number; data: RingRanges["data"]; offsets: number[]; bytes: number }> = [];
    const all = this.chunks.sort((a, b) => a.firstSeq - b.firstSeq);
    for (const c of all) {
      const o = c.ranges.offsets;
      for (let k = 0; k < c.ranges.count; k++) {
        if (c.acked[k] === 1) continue;
        const seq = c.firstSeq + k;
        const [from, to] = [o[2 * k]!, o[2 * k + 1]!];
        const prev = runs[runs.length - 1];
        if (prev && prev.firstSeq + prev.offsets.length / 2 === seq) {
          prev.offsets.push(from, to);
          prev.bytes += to - from;
        } else runs.push({ firstSeq: seq, data: c.ranges.data, offsets: [from, to], bytes: to - from });
        this.counters.rehanded++;
      }
    }
    this.chunks = [];
    const replay = runs.map((r) => ({ firstSeq: r.firstSeq, count: r.offsets.length / 2, bytes: r.bytes, data: r.data, offsets: Uint32Array.from(r.offsets) }));
    this.replay = [...replay, ...this.replay];
  }

  private takeReplay(maxRecords: number, maxBytes: number): RingRanges {
    const head = this.replay[0] as RingRanges;
    let n = 0;
    let bytes = 0;
    while (n < head.count && n < maxRecords) {
      const len = head.offsets[2 * n + 1]! - head.offsets[2 * n]!;
      if (n > 0 && bytes + len > maxBytes) break;
      bytes += len;
      n++;
    }
    if (n === head.count) {
      this.replay.shift();
      return head;
    }
    const out: RingRanges = { firstSeq: head.firstSeq, count: n, bytes, data: head.data, offsets: head.offsets.subarray(0, 2 * n) };
    this.replay[0] = { firstSeq: head.firstSeq + n, count: head.count - n, bytes: head.bytes - bytes, data: head.data, offsets: head.offsets.subarray(2 * n) };
    return out;
  }

  private sample(seq: number, payload: Uint8Array): void {
    if (this.samples.has(seq)) return; // handed out again: keep the first sample
    const ms = recordTimestampMs(payload);
    if (ms === null) this.counters.latencyUnparsed++;
    else this.samples.set(seq, ms);
  }
}

const KEY = new TextEncoder().encode('"timestamp":"');
const head: CompactHead = { id: 0, length: 0 };
const decoder = new TextDecoder();
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$/;

/**
 * The epoch ms of a serialised record's `"timestamp"` (RFC 3339, nanoseconds allowed); null if none.
 * A compact record (docs/ring-format.md) starts with the timestamp's value, after its prefix id.
 */
export function recordTimestampMs(payload: Uint8Array): number | null {
  let start: number;
  if (readCompactHead(payload, 0, payload.length, head)) {
    if (payload[head.length] !== 0x22) return null;
    start = head.length + 1;
  } else {
    const at = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).indexOf(KEY);
    if (at < 0) return null;
    start = at + KEY.length;
  }
  const end = payload.indexOf(0x22, start);
  if (end < 0 || end - start > 40) return null;
  return parseRfc3339Ms(decoder.decode(payload.subarray(start, end)));
}

/** RFC 3339 to epoch milliseconds (fraction beyond ms truncated); null when malformed. */
export function parseRfc3339Ms(s: string): number | null {
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [, y, mo, d, h, mi, sec, frac, zone] = m as unknown as string[];
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec));
  if (frac) ms += Number((frac + "00").slice(0, 3));
  if (zone && zone !== "Z" && zone !== "z") {
    const sign = zone[0] === "-" ? -1 : 1;
    ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
  }
  return Number.isFinite(ms) ? ms : null;
}
