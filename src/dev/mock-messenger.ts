// A fake Pipekit messenger that speaks the real wire format (src/sink/wire.ts): POST a JSON array
// of records to /api/messenger/v1/logs/ingest/batch with X-PIPEKIT-API-KEY. It validates every body
// with the contract's zod schema, keeps what it accepted (src/dev/mock-messenger-ledger.ts), and
// injects faults on demand (src/dev/mock-messenger-faults.ts: by options, at runtime through
// setFaults(), or over HTTP through /control/faults).
// Shared by tests, the demo, the benchmark, and `pipekit-log-collector dev-messenger`
// (src/dev/dev-messenger-cli.ts).
import { gunzipSync, gzipSync } from "node:zlib";
import { serve, type Served } from "../platform/serve.ts";
import { PipekitBatchSchema, type PipekitRecord } from "../pipeline/record.ts";
import { API_KEY_HEADER, INGEST_PATH } from "../sink/wire.ts";
import { checkFaults, drawFault, type MessengerFaults, retryAfterHeader } from "./mock-messenger-faults.ts";
import { MessengerLedger, type MockMessengerStats, type MockRequestLogEntry } from "./mock-messenger-ledger.ts";

export { checkFaults, type MessengerFaults } from "./mock-messenger-faults.ts";
export type { MockMessengerStats, MockRequestLogEntry } from "./mock-messenger-ledger.ts";

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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const GARBAGE = new Uint8Array([0x00, 0xff, 0xfe, 0x3c, 0x68, 0x74, 0x6d, 0x6c, 0x3e, 0x7b, 0x7b, 0x0a, 0x9c, 0x01]);

function jsonResponse(status: number, value: unknown): Response {
  return new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
}

/** Requests that wait for their turn to be answered in reverse order (the reorderWindow fault). */
class ReorderQueue {
  private waiting: Array<() => void> = [];
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** onReordered: told how many answers a flush sent out of order. */
  constructor(private readonly onReordered: (answers: number) => void) {}

  /** Resolves when this request's turn comes; at once unless the window is above 1. */
  waitTurn(window: number, maxWaitMs: number): Promise<void> {
    if (window <= 1) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      if (this.waiting.length >= window) this.flush();
      else if (!this.timer) this.timer = setTimeout(() => this.flush(), maxWaitMs);
    });
  }

  /** Lets every waiting request go, newest first. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const queue = this.waiting;
    this.waiting = [];
    if (queue.length > 1) this.onReordered(queue.length);
    // Newest first, each a little apart so the answers really leave in that order.
    queue.reverse().forEach((release, i) => setTimeout(release, i * 2));
  }
}

/** Requests that hang: released (with a 503 nobody reads) when the server stops or the client leaves. */
class HangingRequests {
  private readonly releases = new Set<() => void>();

  /** Resolves when the request is released: its client went away or releaseAll() was called. */
  hold(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const release = () => {
        this.releases.delete(release);
        resolve();
      };
      this.releases.add(release);
      signal.addEventListener("abort", release, { once: true });
    });
  }

  releaseAll(): void {
    for (const release of [...this.releases]) release();
  }
}

/** The server's state and its answers: the ingest endpoint, /stats and the /control endpoints. */
class MockMessengerServer {
  faults: MessengerFaults;
  apiKey: string;
  readonly ledger: MessengerLedger;
  private stopped = false;
  private readonly hanging = new HangingRequests();
  private readonly reorder = new ReorderQueue((answers) => {
    this.ledger.stats.reorderedAnswers += answers;
  });

  constructor(options: MockMessengerOptions) {
    this.apiKey = options.apiKey;
    this.faults = { ...options.faults };
    this.ledger = new MessengerLedger(options.retainRecords ?? true);
  }

  async handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path === INGEST_PATH) {
      if (request.method !== "POST") return new Response(JSON.stringify({ error: "use POST" }), { status: 405 });
      this.ledger.requestStarted();
      try {
        return await this.ingest(request);
      } finally {
        this.ledger.requestEnded();
      }
    }
    if (path === "/stats" && request.method === "GET") return jsonResponse(200, this.ledger.stats);
    if (path.startsWith("/control/")) return this.control(request, path);
    return new Response(JSON.stringify({ error: "not found" }), { status: 404 });
  }

  /** Stops answering: waiting requests are let go (answered 503) and hanging ones released. */
  stop(): void {
    this.stopped = true;
    this.reorder.flush();
    this.hanging.releaseAll();
  }

  /** One POST of a batch, through every fault in the order a real server would meet them. */
  private async ingest(request: Request): Promise<Response> {
    if (drawFault(this.faults, "hangNext", "hangRate")) return this.hang(request);
    const latency = (this.faults.latencyMs ?? 0) + Math.random() * (this.faults.latencyJitterMs ?? 0);
    if (latency > 0) await sleep(latency);
    const refused = this.checkAccess(request);
    if (refused) return refused;
    const raw = await this.readBody(request);
    if (raw instanceof Response) return raw;
    if (drawFault(this.faults, "failNext", "failRate")) {
      return this.refuse(this.faults.failStatus ?? 503, "injected failure", retryAfterHeader(this.faults));
    }
    const batch = this.parseBatch(request, raw);
    if (batch instanceof Response) return batch;
    await this.reorder.waitTurn(this.faults.reorderWindow ?? 0, this.faults.reorderMaxWaitMs ?? 200);
    if (this.stopped) return this.answer(503, JSON.stringify({ error: "stopping" }));
    this.ledger.accept(batch);
    return this.answer(200, JSON.stringify({ accepted: batch.length }), {}, batch.length);
  }

  private async hang(request: Request): Promise<Response> {
    this.ledger.stats.hanging++;
    await this.hanging.hold(request.signal);
    this.ledger.stats.hanging--;
    return this.answer(503, JSON.stringify({ error: "hung request released" }));
  }

  /** A refusal for a forced status or a rejected key, or null when the request may go on. */
  private checkAccess(request: Request): Response | null {
    if (this.faults.forceStatus != null) return this.refuse(this.faults.forceStatus, "forced status", retryAfterHeader(this.faults));
    if (this.faults.rejectKeys) return this.refuse(this.faults.rejectKeys === 403 ? 403 : 401, "API key rejected");
    if (request.headers.get(API_KEY_HEADER) !== this.apiKey) return this.refuse(401, "missing or wrong X-PIPEKIT-API-KEY");
    return null;
  }

  /** The body's bytes after decompression, or the refusal of a body too large or wrongly encoded. */
  private async readBody(request: Request): Promise<Uint8Array | Response> {
    const wire = new Uint8Array(await request.arrayBuffer());
    this.ledger.stats.bytesReceivedWire += wire.length;
    if (this.faults.maxBodyBytes !== undefined && wire.length > this.faults.maxBodyBytes) {
      return this.refuse(413, `body of ${wire.length} bytes is above ${this.faults.maxBodyBytes}`);
    }
    let raw = wire;
    const encoding = (request.headers.get("content-encoding") ?? "").toLowerCase();
    if (encoding === "gzip") {
      this.ledger.stats.gzipRequests++;
      try {
        raw = gunzipSync(wire);
      } catch {
        return this.refuse(400, "Content-Encoding is gzip but the body is not valid gzip");
      }
    } else if (encoding !== "" && encoding !== "identity") {
      return this.refuse(415, `unsupported Content-Encoding ${encoding}`);
    } else if (this.faults.requireGzip) {
      return this.refuse(415, "gzip-encoded body required");
    }
    this.ledger.stats.bytesReceivedRaw += raw.length;
    return raw;
  }

  /** The batch the body holds, or the refusal of a poisoned, mistyped or invalid one. */
  private parseBatch(request: Request, raw: Uint8Array): PipekitRecord[] | Response {
    const text = new TextDecoder().decode(raw);
    if (this.faults.poisonMarker && text.includes(this.faults.poisonMarker)) return this.refuse(400, "poisoned record");
    if (!(request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/json")) {
      return this.refuse(415, "Content-Type must be application/json");
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return this.refuse(400, `body is not JSON: ${(err as Error).message}`);
    }
    const parsed = PipekitBatchSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.refuse(400, `invalid batch at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
    }
    return parsed.data;
  }

  private answer(status: number, body: string, extraHeaders: Record<string, string> = {}, events = 0): Response {
    this.ledger.answered(status, events);
    const headers: Record<string, string> = {
      "content-type": this.faults.garbageBody ? "application/octet-stream" : "application/json",
      ...extraHeaders,
    };
    let bytes: Uint8Array = this.faults.garbageBody ? GARBAGE : new TextEncoder().encode(body);
    if (this.faults.gzipAnswers) {
      bytes = gzipSync(bytes);
      headers["content-encoding"] = "gzip";
    }
    return new Response(bytes, { status, headers });
  }

  private refuse(status: number, reason: string, extraHeaders?: Record<string, string>): Response {
    this.ledger.stats.lastRejection = `${status}: ${reason}`;
    return this.answer(status, JSON.stringify({ error: reason }), extraHeaders);
  }

  /** /control/faults (GET, or POST/PUT to replace, PATCH to merge), /control/api-key, /control/reset. */
  private async control(request: Request, path: string): Promise<Response> {
    if (path === "/control/faults" && request.method === "GET") return jsonResponse(200, this.faults);
    if (path === "/control/faults" && (request.method === "POST" || request.method === "PUT" || request.method === "PATCH")) {
      return this.changeFaults(request);
    }
    if (path === "/control/api-key" && request.method === "POST") {
      const body = (await request.json().catch(() => null)) as { apiKey?: unknown } | null;
      if (!body || typeof body.apiKey !== "string" || body.apiKey === "") return jsonResponse(400, { error: 'body must be {"apiKey": "..."}' });
      this.apiKey = body.apiKey;
      return jsonResponse(200, { ok: true });
    }
    if (path === "/control/reset" && request.method === "POST") {
      this.ledger.reset();
      return jsonResponse(200, { ok: true });
    }
    return jsonResponse(404, { error: `no ${request.method} ${path}` });
  }

  private async changeFaults(request: Request): Promise<Response> {
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return jsonResponse(400, { error: "body must be a JSON object of faults" });
    }
    const problem = checkFaults(body);
    if (problem) return jsonResponse(400, { error: problem });
    const given = body as MessengerFaults;
    this.faults = request.method === "PATCH" ? { ...this.faults, ...given } : { ...given };
    return jsonResponse(200, this.faults);
  }
}

export async function startMockMessenger(options: MockMessengerOptions): Promise<MockMessenger> {
  const server = new MockMessengerServer(options);
  const served: Served = serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    tls: options.tls,
    fetch: (request) => server.handle(request),
  });
  const scheme = options.tls ? "https" : "http";
  const host = options.hostname ?? "127.0.0.1";
  return {
    url: `${scheme}://${host.includes(":") ? `[${host}]` : host}:${served.port}`,
    port: served.port,
    received: () => server.ledger.received(),
    stats: () => server.ledger.snapshot(),
    requestLog: () => server.ledger.requestLog(),
    setFaults: (f) => {
      server.faults = { ...f };
    },
    updateFaults: (f) => {
      server.faults = { ...server.faults, ...f };
    },
    faults: () => ({ ...server.faults }),
    setApiKey: (k) => {
      server.apiKey = k;
    },
    reset: () => server.ledger.reset(),
    stop: async () => {
      server.stop();
      await served.stop();
    },
  };
}
