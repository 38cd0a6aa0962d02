// A fake Pipekit messenger that speaks the real wire format (src/sink/wire.ts): POST a JSON array
// of records to /api/messenger/v1/logs/ingest/batch with X-PIPEKIT-API-KEY. It validates every body
// with the contract's zod schema, keeps what it accepted, and injects faults on demand (by
// options, at runtime through setFaults(), or over HTTP through /control/faults).
// Shared by tests, the demo, the benchmark, and `pipekit-log-collector dev-messenger`
// (src/dev/dev-messenger-cli.ts).
import { gunzipSync, gzipSync } from "node:zlib";
import { serve, type Served } from "../platform/serve.ts";
import { PipekitBatchSchema, type PipekitRecord } from "../pipeline/record.ts";
import { API_KEY_HEADER, INGEST_PATH } from "../sink/wire.ts";

export interface MessengerFaults {
  /** Fraction (0..1) of requests refused with failStatus instead of being accepted. */
  failRate?: number;
  /** Status for failRate/failNext (default 503). */
  failStatus?: number;
  /** Refuse exactly the next N requests with failStatus. */
  failNext?: number;
  /** While set, every ingest request is answered with this status (404, 405, 501, ...). */
  forceStatus?: number | null;
  /** Delay before answering, plus a uniform random extra up to latencyJitterMs. */
  latencyMs?: number;
  latencyJitterMs?: number;
  /** Hold answers until this many requests wait (or reorderMaxWaitMs passed), then answer newest first. */
  reorderWindow?: number;
  reorderMaxWaitMs?: number;
  /** Never answer the next N requests (nothing is accepted; the client must time out). */
  hangNext?: number;
  /** Never answer this fraction of requests. */
  hangRate?: number;
  /** 413 for bodies larger than this many bytes on the wire. */
  maxBodyBytes?: number;
  /** 400 for bodies containing this string (after decompression). */
  poisonMarker?: string;
  /** Retry-After on 429/503/failStatus answers: this many seconds ... */
  retryAfterSeconds?: number;
  /** ... written as delta-seconds (default) or as an HTTP date. */
  retryAfterFormat?: "seconds" | "date";
  /** Refuse every key: true or 401 → 401, 403 → 403. */
  rejectKeys?: boolean | 401 | 403;
  /** Answers carry a body that is not JSON (binary garbage). */
  garbageBody?: boolean;
  /** Answers are gzip-encoded (Content-Encoding: gzip). */
  gzipAnswers?: boolean;
  /** 415 unless the request body is gzip-encoded. */
  requireGzip?: boolean;
}

export interface MockMessengerStats {
  requests: number;
  /** Answers by status code, e.g. {"200": 12, "503": 3}. */
  byStatus: Record<string, number>;
  /** Events accepted, duplicates included. */
  eventsReceived: number;
  distinctEvents: number;
  duplicateEvents: number;
  batchesAccepted: number;
  /** Bytes of request bodies as they came on the wire / after decompression. */
  bytesReceivedWire: number;
  bytesReceivedRaw: number;
  gzipRequests: number;
  inFlight: number;
  maxInFlight: number;
  hanging: number;
  reorderedAnswers: number;
  /** The last refusal reason (for 400/401/413/415). */
  lastRejection: string | null;
}

/** One answered ingest request, for timing and ordering checks. */
export interface MockRequestLogEntry {
  /** Epoch ms when the answer was produced. */
  at: number;
  status: number;
  /** Events accepted by this request (0 unless 2xx). */
  events: number;
}

export interface MockMessengerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  hostname?: string;
  apiKey: string;
  faults?: MessengerFaults;
  /** Keep accepted records for received() (default true); counts are kept either way. */
  retainRecords?: boolean;
  /** Serve HTTPS with this PEM certificate and key. */
  tls?: { cert: string; key: string };
}

export interface MockMessenger {
  /** Base URI for messenger.baseUri, e.g. http://127.0.0.1:39123 */
  url: string;
  port: number;
  /** Every accepted record, in the order accepted, duplicates included. */
  received(): PipekitRecord[];
  stats(): MockMessengerStats;
  /** The last 10,000 answered ingest requests, oldest first. */
  requestLog(): MockRequestLogEntry[];
  /** Replaces the fault set. */
  setFaults(faults: MessengerFaults): void;
  /** Merges into the fault set. */
  updateFaults(faults: MessengerFaults): void;
  faults(): MessengerFaults;
  setApiKey(key: string): void;
  /** Forgets received records and zeroes the counters. */
  reset(): void;
  stop(): Promise<void>;
}

const FAULT_KEYS = new Set<keyof MessengerFaults>([
  "failRate", "failStatus", "failNext", "forceStatus", "latencyMs", "latencyJitterMs", "reorderWindow",
  "reorderMaxWaitMs", "hangNext", "hangRate", "maxBodyBytes", "poisonMarker", "retryAfterSeconds",
  "retryAfterFormat", "rejectKeys", "garbageBody", "gzipAnswers", "requireGzip",
]);

/** Checks a fault set that came over HTTP or the command line; returns an error message or null. */
export function checkFaults(value: unknown): string | null {
  if (!value || typeof value !== "object" || Array.isArray(value)) return "faults must be a JSON object";
  for (const [k, v] of Object.entries(value)) {
    if (!FAULT_KEYS.has(k as keyof MessengerFaults)) return `unknown fault "${k}" (known: ${[...FAULT_KEYS].join(", ")})`;
    if (k === "poisonMarker" && typeof v !== "string") return "poisonMarker must be a string";
    if (k === "retryAfterFormat" && v !== "seconds" && v !== "date") return 'retryAfterFormat must be "seconds" or "date"';
    if (k === "rejectKeys" && typeof v !== "boolean" && v !== 401 && v !== 403) return "rejectKeys must be true, false, 401 or 403";
    if (["garbageBody", "gzipAnswers", "requireGzip"].includes(k) && typeof v !== "boolean") return `${k} must be true or false`;
    if (k === "forceStatus" && v !== null && !(Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 599)) {
      return "forceStatus must be an HTTP status or null";
    }
    if ((k === "failRate" || k === "hangRate") && !(typeof v === "number" && v >= 0 && v <= 1)) return `${k} must be between 0 and 1`;
    if (
      ["failStatus", "failNext", "latencyMs", "latencyJitterMs", "reorderWindow", "reorderMaxWaitMs", "hangNext", "maxBodyBytes", "retryAfterSeconds"].includes(k) &&
      !(typeof v === "number" && Number.isFinite(v) && v >= 0)
    ) {
      return `${k} must be a non-negative number`;
    }
  }
  return null;
}

/** cyrb53: a fast, well-mixed 53-bit string hash (public domain). */
function hash53(str: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const GARBAGE = new Uint8Array([0x00, 0xff, 0xfe, 0x3c, 0x68, 0x74, 0x6d, 0x6c, 0x3e, 0x7b, 0x7b, 0x0a, 0x9c, 0x01]);

function emptyStats(): MockMessengerStats {
  return {
    requests: 0, byStatus: {}, eventsReceived: 0, distinctEvents: 0, duplicateEvents: 0, batchesAccepted: 0,
    bytesReceivedWire: 0, bytesReceivedRaw: 0, gzipRequests: 0, inFlight: 0, maxInFlight: 0, hanging: 0,
    reorderedAnswers: 0, lastRejection: null,
  };
}

export async function startMockMessenger(options: MockMessengerOptions): Promise<MockMessenger> {
  let apiKey = options.apiKey;
  let faults: MessengerFaults = { ...options.faults };
  const retain = options.retainRecords ?? true;
  let records: PipekitRecord[] = [];
  // Distinct events: by their JSON text, or (when records are not retained: the dev-messenger,
  // benchmarks) by a 53-bit hash of it, so that millions of events cost megabytes, not gigabytes.
  let distinct = new Set<string | number>();
  let st = emptyStats();
  let log: MockRequestLogEntry[] = [];
  let stopped = false;
  // Requests that hang: released (with a 503 nobody reads) when the server stops or the client leaves.
  const hangReleases = new Set<() => void>();
  // Requests that wait for their turn to be answered in reverse order.
  let reorderQueue: Array<() => void> = [];
  let reorderTimer: ReturnType<typeof setTimeout> | null = null;

  function flushReorder(): void {
    if (reorderTimer) clearTimeout(reorderTimer);
    reorderTimer = null;
    const q = reorderQueue;
    reorderQueue = [];
    if (q.length > 1) st.reorderedAnswers += q.length;
    // Newest first, each a little apart so the answers really leave in that order.
    q.reverse().forEach((release, i) => setTimeout(release, i * 2));
  }

  function waitReorderTurn(): Promise<void> {
    const window = faults.reorderWindow ?? 0;
    if (window <= 1) return Promise.resolve();
    return new Promise<void>((resolve) => {
      reorderQueue.push(resolve);
      if (reorderQueue.length >= window) flushReorder();
      else if (!reorderTimer) reorderTimer = setTimeout(flushReorder, faults.reorderMaxWaitMs ?? 200);
    });
  }

  function answer(status: number, body: string, extraHeaders: Record<string, string> = {}, events = 0): Response {
    st.byStatus[String(status)] = (st.byStatus[String(status)] ?? 0) + 1;
    log.push({ at: Date.now(), status, events });
    if (log.length > 12_000) log = log.slice(-10_000);
    const headers: Record<string, string> = { "content-type": faults.garbageBody ? "application/octet-stream" : "application/json", ...extraHeaders };
    let bytes: Uint8Array = faults.garbageBody ? GARBAGE : new TextEncoder().encode(body);
    if (faults.gzipAnswers) {
      bytes = gzipSync(bytes);
      headers["content-encoding"] = "gzip";
    }
    return new Response(bytes, { status, headers });
  }

  function refuse(status: number, reason: string, extraHeaders?: Record<string, string>): Response {
    st.lastRejection = `${status}: ${reason}`;
    return answer(status, JSON.stringify({ error: reason }), extraHeaders);
  }

  function retryAfterHeader(): Record<string, string> {
    const s = faults.retryAfterSeconds;
    if (s === undefined) return {};
    if (faults.retryAfterFormat === "date") return { "retry-after": new Date(Date.now() + s * 1000).toUTCString() };
    return { "retry-after": String(Math.round(s)) };
  }

  async function ingest(request: Request): Promise<Response> {
    if ((faults.hangNext ?? 0) > 0 || (faults.hangRate !== undefined && Math.random() < faults.hangRate)) {
      if ((faults.hangNext ?? 0) > 0) faults.hangNext = (faults.hangNext ?? 1) - 1;
      st.hanging++;
      await new Promise<void>((resolve) => {
        const release = () => {
          hangReleases.delete(release);
          resolve();
        };
        hangReleases.add(release);
        request.signal.addEventListener("abort", release, { once: true });
      });
      st.hanging--;
      return answer(503, JSON.stringify({ error: "hung request released" }));
    }
    const latency = (faults.latencyMs ?? 0) + Math.random() * (faults.latencyJitterMs ?? 0);
    if (latency > 0) await sleep(latency);

    if (faults.forceStatus != null) return refuse(faults.forceStatus, "forced status", retryAfterHeader());
    if (faults.rejectKeys) return refuse(faults.rejectKeys === 403 ? 403 : 401, "API key rejected");
    if (request.headers.get(API_KEY_HEADER) !== apiKey) return refuse(401, "missing or wrong X-PIPEKIT-API-KEY");

    const wire = new Uint8Array(await request.arrayBuffer());
    st.bytesReceivedWire += wire.length;
    if (faults.maxBodyBytes !== undefined && wire.length > faults.maxBodyBytes) {
      return refuse(413, `body of ${wire.length} bytes is above ${faults.maxBodyBytes}`);
    }
    let raw = wire;
    const encoding = (request.headers.get("content-encoding") ?? "").toLowerCase();
    if (encoding === "gzip") {
      st.gzipRequests++;
      try {
        raw = gunzipSync(wire);
      } catch {
        return refuse(400, "Content-Encoding is gzip but the body is not valid gzip");
      }
    } else if (encoding !== "" && encoding !== "identity") {
      return refuse(415, `unsupported Content-Encoding ${encoding}`);
    } else if (faults.requireGzip) {
      return refuse(415, "gzip-encoded body required");
    }
    st.bytesReceivedRaw += raw.length;

    const failing = (faults.failNext ?? 0) > 0 || (faults.failRate !== undefined && Math.random() < faults.failRate);
    if (failing) {
      if ((faults.failNext ?? 0) > 0) faults.failNext = (faults.failNext ?? 1) - 1;
      return refuse(faults.failStatus ?? 503, "injected failure", retryAfterHeader());
    }

    const text = new TextDecoder().decode(raw);
    if (faults.poisonMarker && text.includes(faults.poisonMarker)) return refuse(400, "poisoned record");
    if (!(request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/json")) {
      return refuse(415, "Content-Type must be application/json");
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return refuse(400, `body is not JSON: ${(err as Error).message}`);
    }
    const parsed = PipekitBatchSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return refuse(400, `invalid batch at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
    }

    await waitReorderTurn();
    if (stopped) return answer(503, JSON.stringify({ error: "stopping" }));
    st.batchesAccepted++;
    for (const rec of parsed.data) {
      st.eventsReceived++;
      const text = JSON.stringify(rec);
      const key = retain ? text : hash53(text);
      if (distinct.has(key)) st.duplicateEvents++;
      else distinct.add(key);
      if (retain) records.push(rec);
    }
    st.distinctEvents = distinct.size;
    return answer(200, JSON.stringify({ accepted: parsed.data.length }), {}, parsed.data.length);
  }

  async function control(request: Request, path: string): Promise<Response> {
    const json = (status: number, v: unknown) => new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json" } });
    if (path === "/control/faults" && request.method === "GET") return json(200, faults);
    if (path === "/control/faults" && (request.method === "POST" || request.method === "PUT" || request.method === "PATCH")) {
      let body: unknown;
      try {
        body = await request.json();
      } catch {
        return json(400, { error: "body must be a JSON object of faults" });
      }
      const problem = checkFaults(body);
      if (problem) return json(400, { error: problem });
      faults = request.method === "PATCH" ? { ...faults, ...(body as MessengerFaults) } : { ...(body as MessengerFaults) };
      return json(200, faults);
    }
    if (path === "/control/api-key" && request.method === "POST") {
      const body = (await request.json().catch(() => null)) as { apiKey?: unknown } | null;
      if (!body || typeof body.apiKey !== "string" || body.apiKey === "") return json(400, { error: 'body must be {"apiKey": "..."}' });
      apiKey = body.apiKey;
      return json(200, { ok: true });
    }
    if (path === "/control/reset" && request.method === "POST") {
      reset();
      return json(200, { ok: true });
    }
    return json(404, { error: `no ${request.method} ${path}` });
  }

  function reset(): void {
    records = [];
    distinct = new Set();
    st = emptyStats();
    log = [];
  }

  const served: Served = serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    tls: options.tls,
    fetch: async (request) => {
      const path = new URL(request.url).pathname;
      if (path === INGEST_PATH) {
        if (request.method !== "POST") return new Response(JSON.stringify({ error: "use POST" }), { status: 405 });
        st.requests++;
        st.inFlight++;
        st.maxInFlight = Math.max(st.maxInFlight, st.inFlight);
        try {
          return await ingest(request);
        } finally {
          st.inFlight--;
        }
      }
      if (path === "/stats" && request.method === "GET") {
        return new Response(JSON.stringify(st), { headers: { "content-type": "application/json" } });
      }
      if (path.startsWith("/control/")) return control(request, path);
      return new Response(JSON.stringify({ error: "not found" }), { status: 404 });
    },
  });

  const scheme = options.tls ? "https" : "http";
  const host = options.hostname ?? "127.0.0.1";
  return {
    url: `${scheme}://${host.includes(":") ? `[${host}]` : host}:${served.port}`,
    port: served.port,
    received: () => records.slice(),
    stats: () => ({ ...st, byStatus: { ...st.byStatus } }),
    requestLog: () => (log.length > 10_000 ? log.slice(-10_000) : log.slice()),
    setFaults: (f) => {
      faults = { ...f };
    },
    updateFaults: (f) => {
      faults = { ...faults, ...f };
    },
    faults: () => ({ ...faults }),
    setApiKey: (k) => {
      apiKey = k;
    },
    reset,
    stop: async () => {
      stopped = true;
      flushReorder();
      for (const release of [...hangReleases]) release();
      await served.stop();
    },
  };
}
