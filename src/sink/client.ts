// One POST of a batch body to the messenger, and what came of it. Requests go out with fetch
// directly, not ky: ky builds a Request per attempt, which copies the whole body once more
// (bench/batch.bench.ts). Bun's fetch copies a Uint8Array body before it returns, so the body's
// memory is free for reuse once the request settled (test/sink/pool.test.ts checks it).
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { redactSecrets } from "../config/secrets.ts";
import type { Clock } from "../platform/types.ts";
import type { Credentials } from "./credentials.ts";
import { ANSWER_SNIPPET_BYTES } from "./dead-letter.ts";
import { parseRetryAfter } from "./policy.ts";
import type { SenderStatistics } from "./stats.ts";
import type { Fetch, TlsOptions } from "./types.ts";
import { API_KEY_HEADER } from "./wire.ts";

export type Outcome =
  | { kind: "answer"; status: number; retryAfterMs: number | null; snippet: string }
  | { kind: "error"; timeout: boolean; message: string }
  | { kind: "aborted" };

const decoder = new TextDecoder();

/** TLS: verified by default; a private CA from caFile; skipping verification only on request. */
export function tlsOptions(cfg: Pick<Config["messenger"], "caFile" | "insecureSkipTlsVerify">): TlsOptions | undefined {
  const tls: TlsOptions = {};
  if (cfg.caFile) {
    try {
      tls.ca = readFileSync(cfg.caFile, "utf8");
    } catch (err) {
      throw new Error(`messenger.caFile ${cfg.caFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if (cfg.insecureSkipTlsVerify) tls.rejectUnauthorized = false;
  // Bun's fetch takes the TLS options directly; it keeps connections alive by default.
  return Object.keys(tls).length ? tls : undefined;
}

export interface ClientOptions {
  endpoint: string;
  timeoutMs: number;
  tls: TlsOptions | undefined;
  credentials: Credentials;
  stats: SenderStatistics;
  clock: Clock;
  fetch: Fetch;
  /** Aborts every request on the wire (shutdown). */
  shutdown: AbortSignal;
}

export class MessengerClient {
  // Requests on the wire, aborted together at shutdown (one listener, not one per request).
  readonly #active = new Set<AbortController>();
  // The same headers object for every request while the key stays the same (fetch copies them
  // into each request; this object is replaced, never changed, when the key is re-read).
  #headers: Headers | null = null;
  #headersKey: string | null = null;
  #headersGzip = false;

  constructor(private readonly o: ClientOptions) {
    o.shutdown.addEventListener("abort", () => {
      for (const ac of this.#active) ac.abort();
    });
  }

  /** Sends one body (`wire`: as sent, `raw`: before compression); never throws. */
  async send(raw: Uint8Array, wire: Uint8Array<ArrayBuffer>): Promise<Outcome> {
    const { o } = this;
    if (o.shutdown.aborted) return { kind: "aborted" };
    // The timeout covers the whole exchange: the answer's head and reading its body.
    const ac = new AbortController();
    let timedOut = false;
    const timer = o.clock.after(o.timeoutMs, () => {
      timedOut = true;
      ac.abort();
    });
    this.#active.add(ac);
    const t0 = o.clock.now();
    o.stats.bytesWire += wire.length;
    o.stats.bytesRaw += raw.length;
    try {
      let res: Response;
      try {
        res = await o.fetch(o.endpoint, { method: "POST", body: wire, headers: this.#requestHeaders(wire !== raw), signal: ac.signal, tls: o.tls });
      } catch (err) {
        if (o.shutdown.aborted) return { kind: "aborted" };
        const e = err as Error;
        const timeout = timedOut || e.name === "TimeoutError";
        return { kind: "error", timeout, message: timeout ? `no answer within ${o.timeoutMs} ms` : `${e.name}: ${e.message}${causeOf(e)}` };
      }
      let snippet = "";
      try {
        const body = new Uint8Array(await res.arrayBuffer());
        if (!res.ok) snippet = decoder.decode(body.subarray(0, ANSWER_SNIPPET_BYTES));
      } catch {
        // An unreadable answer body does not change what the status said.
      }
      return { kind: "answer", status: res.status, retryAfterMs: parseRetryAfter(res.headers.get("retry-after"), o.clock.now()), snippet: redactSecrets(snippet) };
    } finally {
      timer.cancel();
      this.#active.delete(ac);
      o.stats.latency.observe(Math.max(0, o.clock.now() - t0) / 1000);
    }
  }

  #requestHeaders(gzipped: boolean): Headers {
    const key = this.o.credentials.key;
    if (this.#headers === null || this.#headersKey !== key || this.#headersGzip !== gzipped) {
      const h = new Headers({ "content-type": "application/json" });
      if (key) h.set(API_KEY_HEADER, key);
      if (gzipped) h.set("content-encoding", "gzip");
      this.#headers = h;
      this.#headersKey = key;
      this.#headersGzip = gzipped;
    }
    return this.#headers;
  }
}

function causeOf(e: Error): string {
  const cause = (e as { cause?: unknown }).cause;
  if (cause instanceof Error) return ` (${cause.message})`;
  return "";
}
