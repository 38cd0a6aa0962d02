// The benchmark's counting sink: a fast stand-in for the Pipekit messenger, run as its own
// process on 127.0.0.1 so that its work does not share the collector's CPU accounting.
//
// It speaks the messenger's real wire contract (src/sink/wire.ts): POST /api/messenger/v1/logs/ingest/batch,
// X-PIPEKIT-API-KEY (401 when wrong), a JSON array body, optionally `Content-Encoding: gzip`.
// Unlike src/dev/mock-messenger.ts it does NOT zod-validate or JSON.parse every record (that
// would cost more CPU than the collector it measures): it checks that the body is a JSON array
// and scans each record's `"message":"seq=<stream>:<n> ` and (with --latency) `"timestamp":"…"`.
// Sequence numbers are tracked in a bitmap per stream: distinct, duplicated, and — against the
// expectation the runner posts — missing.
//
//   bun bench/lib/counting-sink.ts --port 0 --api-key K [--fail-rate 0.2] [--latency] [--seed 1]
//   → prints `counting sink listening on http://127.0.0.1:PORT`
//   GET /stats · POST /control {"expected":[n per stream],"failRate":0.2,"latency":true,"recordStart":"{\"timestamp\""} · POST /reset
//
// recordStart: the text every record begins with, to count records without a seq mark (default
// `{"orgUUID"`, the collector's first field; Fluent Bit's http output begins with its date key).
import { parseArgs } from "node:util";
import { API_KEY_HEADER, INGEST_PATH } from "../../src/sink/wire.ts";

const MESSAGE_MARK = '"message":"seq=';
const TS_MARK = '"timestamp":"';
const LAT_BUCKETS = 120_000; // 1 ms buckets up to 120 s

export interface SinkStats {
  requests: number;
  byStatus: Record<string, number>;
  /** Records accepted (2xx), duplicates included. */
  events: number;
  distinct: number;
  duplicates: number;
  /** Expected − distinct, over the streams posted in `expected` (null when none was posted). */
  missing: number | null;
  /** Records whose message has no `seq=` mark, or a stream/number outside the expectation. */
  foreign: number;
  bytesWire: number;
  bytesRaw: number;
  gzipRequests: number;
  /** Epoch ms of the first accepted record and of the last record that was new. */
  firstAt: number | null;
  lastNewAt: number | null;
  /** Epoch ms when distinct reached the expected total (null before). */
  completeAt: number | null;
  latency: { count: number; p50: number; p99: number; max: number } | null;
}

class SeqSet {
  private bits = new Uint8Array(1 << 13);
  distinct = 0;
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
    this.distinct++;
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

export function createCountingSink(opts: { apiKey: string; failRate?: number; latency?: boolean; seed?: number }) {
  let failRate = opts.failRate ?? 0;
  let latency = opts.latency ?? false;
  let rng = opts.seed ?? 1;
  const random = () => {
    // xorshift32: deterministic failures for a given seed and request order
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    return (rng >>> 0) / 4294967296;
  };
  let sets: SeqSet[] = [];
  let expected: number[] | null = null;
  let expectedTotal = 0;
  let st = blank();
  let lat = new Uint32Array(LAT_BUCKETS + 1);
  let latMax = 0;
  const decoder = new TextDecoder();
  let recordStart = '{"orgUUID"';

  function blank() {
    return { requests: 0, byStatus: {} as Record<string, number>, events: 0, distinct: 0, duplicates: 0, foreign: 0, bytesWire: 0, bytesRaw: 0, gzipRequests: 0, firstAt: null as number | null, lastNewAt: null as number | null, completeAt: null as number | null };
  }

  function answer(status: number, body = ""): Response {
    st.byStatus[status] = (st.byStatus[status] ?? 0) + 1;
    return new Response(body, { status, headers: body ? { "content-type": "application/json" } : {} });
  }

  /** Counts one body's records; returns an error message when it is not a JSON array of objects. */
  function ingest(text: string, now: number): string | null {
    let a = 0;
    while (a < text.length && text.charCodeAt(a) <= 32) a++;
    let z = text.length - 1;
    while (z >= 0 && text.charCodeAt(z) <= 32) z--;
    if (text[a] !== "[" || text[z] !== "]") return "body is not a JSON array";
    if (z - a > 1 && text[a + 1] !== "{") return "array elements must be objects";
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
        st.foreign++;
        continue;
      }
      const set = (sets[stream] ??= new SeqSet());
      if (set.add(n)) {
        st.distinct++;
        st.lastNewAt = now;
      } else st.duplicates++;
      if (latency) {
        // The record's own timestamp precedes its message (the contract's field order).
        const t = text.lastIndexOf(TS_MARK, m);
        if (t >= 0) {
          const ts = t + TS_MARK.length;
          const ms = now - parseTimestampMs(text, ts, text.indexOf('"', ts));
          if (Number.isFinite(ms)) {
            lat[Math.min(LAT_BUCKETS, Math.max(0, Math.round(ms)))]!++;
            if (ms > latMax) latMax = ms;
          }
        }
      }
    }
    // Records without a seq mark (not ours) still count as events received.
    const objects = countObjects(text, a, z);
    st.foreign += Math.max(0, objects - records);
    st.events += objects;
    if (objects > 0 && st.firstAt === null) st.firstAt = now;
    if (expected && st.completeAt === null && st.distinct >= expectedTotal) st.completeAt = now;
    return null;
  }

  /** Top-level objects of the array: recordStart (`{"orgUUID"`) starts every record the collector sends. */
  function countObjects(text: string, a: number, z: number): number {
    let n = 0;
    let pos = a;
    for (;;) {
      const i = text.indexOf(recordStart, pos);
      if (i < 0 || i > z) break;
      n++;
      pos = i + recordStart.length;
    }
    return n;
  }

  function percentile(q: number, count: number): number {
    const target = Math.ceil(q * count);
    let acc = 0;
    for (let i = 0; i <= LAT_BUCKETS; i++) {
      acc += lat[i]!;
      if (acc >= target) return i;
    }
    return LAT_BUCKETS;
  }

  function stats(): SinkStats {
    let missing: number | null = null;
    if (expected) {
      missing = 0;
      for (let s = 0; s < expected.length; s++) missing += expected[s]! - (sets[s] ? sets[s]!.countBelow(expected[s]!) : 0);
    }
    let count = 0;
    for (let i = 0; i <= LAT_BUCKETS; i++) count += lat[i]!;
    return {
      ...st,
      missing,
      latency: count ? { count, p50: percentile(0.5, count), p99: percentile(0.99, count), max: Math.round(latMax) } : null,
    };
  }

  async function fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/stats" && req.method === "GET") return Response.json(stats());
    if (url.pathname === "/reset" && req.method === "POST") {
      sets = [];
      st = blank();
      lat = new Uint32Array(LAT_BUCKETS + 1);
      latMax = 0;
      return Response.json({ ok: true });
    }
    if (url.pathname === "/control" && req.method === "POST") {
      const c = (await req.json()) as { expected?: number[]; failRate?: number; latency?: boolean; recordStart?: string };
      if (typeof c.recordStart === "string" && c.recordStart) recordStart = c.recordStart;
      if (c.expected) {
        expected = c.expected;
        expectedTotal = c.expected.reduce((a, b) => a + b, 0);
      }
      if (typeof c.failRate === "number") failRate = c.failRate;
      if (typeof c.latency === "boolean") latency = c.latency;
      return Response.json({ ok: true });
    }
    if (url.pathname !== INGEST_PATH) return answer(404, '{"error":"not found"}');
    if (req.method !== "POST") return answer(405, '{"error":"method not allowed"}');
    st.requests++;
    if (req.headers.get(API_KEY_HEADER) !== opts.apiKey) return answer(401, '{"error":"invalid api key"}');
    const wire = new Uint8Array(await req.arrayBuffer());
    st.bytesWire += wire.length;
    if (failRate > 0 && random() < failRate) return answer(503, '{"error":"injected"}');
    let raw: Uint8Array = wire;
    if ((req.headers.get("content-encoding") ?? "").toLowerCase() === "gzip") {
      st.gzipRequests++;
      try {
        // libdeflate: ~0.3 µs per event against node:zlib's ~0.7 (batch of 1024 records; the same
        // bytes). The sink shares the development machine's two cores with the collector it measures.
        raw = Bun.gunzipSync(wire, { library: "libdeflate" });
      } catch {
        return answer(400, '{"error":"bad gzip"}');
      }
    }
    st.bytesRaw += raw.length;
    const err = ingest(decoder.decode(raw), Date.now());
    if (err) return answer(400, JSON.stringify({ error: err }));
    return answer(200);
  }

  return { fetch, stats };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      port: { type: "string", default: "0" },
      "api-key": { type: "string", default: "bench-key" },
      "fail-rate": { type: "string", default: "0" },
      latency: { type: "boolean", default: false },
      seed: { type: "string", default: "1" },
    },
    strict: true,
  });
  const sink = createCountingSink({ apiKey: values["api-key"]!, failRate: Number(values["fail-rate"]), latency: values.latency, seed: Number(values.seed) || 1 });
  const server = Bun.serve({ hostname: "127.0.0.1", port: Number(values.port), maxRequestBodySize: 256 * 1024 * 1024, fetch: sink.fetch });
  process.stdout.write(`counting sink listening on http://127.0.0.1:${server.port}\n`);
  const stop = () => {
    server.stop(true);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
