// The benchmark's counting sink: a fast stand-in for the Pipekit messenger, run as its own
// process on 127.0.0.1 so that its work does not share the collector's CPU accounting.
//
// It speaks the messenger's real wire contract (src/sink/wire.ts): POST /api/messenger/v1/logs/ingest/batch,
// X-PIPEKIT-API-KEY (401 when wrong), a JSON array body, optionally `Content-Encoding: gzip`. What
// arrived is counted by the ledger (sink-ledger.ts). As a process (below) the ledger runs on a thread
// at the lowest priority (sink-verifier.ts), so that counting takes only CPU the collector leaves:
// a request is answered at once after a cheap check of its framing, and a body that later proves
// undecodable is counted in invalidBodies (its records stay missing). In-thread (`deferred: false`,
// the tests) every body is counted before it is answered, and a bad one is answered 400.
//
//   bun bench/lib/counting-sink.ts --port 0 --api-key K [--fail-rate 0.2] [--latency] [--seed 1] [--in-thread]
//   → prints `counting sink listening on http://127.0.0.1:PORT (…)`
//   GET /stats · POST /control {"expected":[n per stream],"failRate":0.2,"latency":true,"recordStart":"{\"timestamp\""} · POST /reset
//
// recordStart: the text every record begins with, to count records without a seq mark (default
// `{"orgUUID"`, the collector's first field; Fluent Bit's http output begins with its date key).
import { parseArgs } from "node:util";
import { API_KEY_HEADER, INGEST_PATH } from "../../src/sink/wire.ts";
import { type LedgerControl, type LedgerStats, SinkLedger } from "./sink-ledger.ts";
import type { VerifierMessage, VerifierReply } from "./sink-verifier.ts";

export interface SinkStats extends LedgerStats {
  requests: number;
  byStatus: Record<string, number>;
  bytesWire: number;
  gzipRequests: number;
}

/** Where bodies are counted: in this thread, or on the low-priority verifier thread. */
interface LedgerPort {
  /** Why the body is refused (answered 400), or null once it is accepted (perhaps counted later). */
  take(wire: Uint8Array<ArrayBuffer>, gzipped: boolean, arrivedAt: number): string | null;
  control(c: LedgerControl): void;
  reset(): void;
  stats(): Promise<LedgerStats>;
  close(): void;
}

function inThread(latency: boolean): LedgerPort {
  const ledger = new SinkLedger({ latency });
  return {
    take: (wire, gzipped, at) => ledger.ingest(wire, gzipped, at),
    control: (c) => ledger.control(c),
    reset: () => ledger.reset(),
    stats: async () => ledger.stats(),
    close() {},
  };
}

/** The framing checked before answering a body that is counted later: gzip's magic, or a bracketed array. */
function framingError(wire: Uint8Array, gzipped: boolean): string | null {
  if (gzipped) return wire.length >= 18 && wire[0] === 0x1f && wire[1] === 0x8b ? null : "bad gzip";
  let a = 0;
  while (a < wire.length && wire[a]! <= 32) a++;
  let z = wire.length - 1;
  while (z >= 0 && wire[z]! <= 32) z--;
  return wire[a] === 0x5b && wire[z] === 0x5d ? null : "body is not a JSON array";
}

/** The ledger on sink-verifier.ts's thread; `niceness` resolves to the nice value it runs at. */
function onVerifierThread(latency: boolean): LedgerPort & { niceness: Promise<number> } {
  const worker = new Worker(new URL("./sink-verifier.ts", import.meta.url).href);
  const waiting = new Map<number, (s: LedgerStats) => void>();
  let nextId = 0;
  let setNice: (n: number) => void = () => {};
  const niceness = new Promise<number>((resolve) => (setNice = resolve));
  worker.onmessage = (e: MessageEvent<VerifierReply>) => {
    const r = e.data;
    if ("niceness" in r) return setNice(r.niceness);
    waiting.get(r.id)?.(r.stats);
    waiting.delete(r.id);
  };
  const post = (m: VerifierMessage, transfer: ArrayBuffer[] = []) => worker.postMessage(m, transfer);
  post({ kind: "control", control: { latency } });
  return {
    niceness,
    take(wire, gzipped, arrivedAt) {
      const err = framingError(wire, gzipped);
      if (err) return err;
      post({ kind: "body", wire, gzipped, arrivedAt }, [wire.buffer]);
      return null;
    },
    control: (control) => post({ kind: "control", control }),
    reset: () => post({ kind: "reset" }),
    stats: () =>
      new Promise((resolve) => {
        const id = nextId++;
        waiting.set(id, resolve);
        post({ kind: "stats", id });
      }),
    close: () => worker.terminate(),
  };
}

export function createCountingSink(opts: { apiKey: string; failRate?: number; latency?: boolean; seed?: number; deferred?: boolean }) {
  let failRate = opts.failRate ?? 0;
  let rng = opts.seed ?? 1;
  const random = () => {
    // xorshift32: deterministic failures for a given seed and request order
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    return (rng >>> 0) / 4294967296;
  };
  const port = opts.deferred ? onVerifierThread(opts.latency ?? false) : inThread(opts.latency ?? false);
  const blank = () => ({ requests: 0, byStatus: {} as Record<string, number>, bytesWire: 0, gzipRequests: 0 });
  let front = blank();

  function answer(status: number, body = ""): Response {
    front.byStatus[status] = (front.byStatus[status] ?? 0) + 1;
    return new Response(body, { status, headers: body ? { "content-type": "application/json" } : {} });
  }

  async function stats(): Promise<SinkStats> {
    return { ...front, byStatus: { ...front.byStatus }, ...(await port.stats()) };
  }

  async function fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/stats" && req.method === "GET") return Response.json(await stats());
    if (url.pathname === "/reset" && req.method === "POST") {
      front = blank();
      port.reset();
      return Response.json({ ok: true });
    }
    if (url.pathname === "/control" && req.method === "POST") {
      const c = (await req.json()) as LedgerControl & { failRate?: number };
      port.control(c);
      if (typeof c.failRate === "number") failRate = c.failRate;
      return Response.json({ ok: true });
    }
    if (url.pathname !== INGEST_PATH) return answer(404, '{"error":"not found"}');
    if (req.method !== "POST") return answer(405, '{"error":"method not allowed"}');
    front.requests++;
    if (req.headers.get(API_KEY_HEADER) !== opts.apiKey) return answer(401, '{"error":"invalid api key"}');
    const wire = new Uint8Array(await req.arrayBuffer());
    const arrivedAt = Date.now();
    front.bytesWire += wire.length;
    if (failRate > 0 && random() < failRate) return answer(503, '{"error":"injected"}');
    const gzipped = (req.headers.get("content-encoding") ?? "").toLowerCase() === "gzip";
    if (gzipped) front.gzipRequests++;
    const err = port.take(wire, gzipped, arrivedAt);
    if (err) return answer(400, JSON.stringify({ error: err }));
    return answer(200);
  }

  return { fetch, stats, close: () => port.close(), niceness: "niceness" in port ? port.niceness : Promise.resolve(null) };
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
      "in-thread": { type: "boolean", default: false },
    },
    strict: true,
  });
  const sink = createCountingSink({ apiKey: values["api-key"]!, failRate: Number(values["fail-rate"]), latency: values.latency, seed: Number(values.seed) || 1, deferred: !values["in-thread"] });
  const nice = await sink.niceness;
  const server = Bun.serve({ hostname: "127.0.0.1", port: Number(values.port), maxRequestBodySize: 256 * 1024 * 1024, fetch: sink.fetch });
  process.stdout.write(`counting sink listening on http://127.0.0.1:${server.port} (${nice === null ? "counting in the request thread" : `counting on a thread at nice ${nice}`})\n`);
  const stop = () => {
    server.stop(true);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
