// A small Kubernetes HTTP client over fetch: GET JSON, and a watch stream of WatchEvent lines.
// (Measured: @kubernetes/client-node under Bun fails TLS verification against a private CA and
// drops client certificates; fetch with Bun's `tls: { ca, cert, key }` works — README "Design
// choices".)
// The bearer token file is re-read on every request: service-account tokens rotate on disk.
// Time (the watch idle timer) and the transport are injectable: the fleet simulation runs many
// clients on a virtual clock against an in-process API server.
import { readFile } from "node:fs/promises";
import { systemClock } from "../platform/clock.ts";
import type { Clock } from "../platform/types.ts";
import { isStatus, parseWatchEvent, type WatchEvent } from "./k8s-objects.ts";

/** The part of fetch the client uses. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface K8sClientOptions {
  fetch?: FetchLike;
  clock?: Clock;
}

export interface K8sEndpoint {
  /** https://host:port (no trailing slash). */
  server: string;
  /** PEM of the CA(s) that sign the server certificate; undefined = the system roots. */
  ca?: string;
  /** Client certificate and key (PEM), for kubeconfig users authenticated by certificate. */
  cert?: string;
  key?: string;
  /** A fixed bearer token (kubeconfig `token`). */
  token?: string;
  /** A bearer token file, re-read on every request (service-account tokens rotate). */
  tokenFile?: string;
  insecureSkipTlsVerify: boolean;
  /** Where this came from, for messages: "in-cluster", "kubeconfig /x", ... */
  description: string;
}

/** An HTTP error answer, with the Status reason/code when the server sent one. */
export class K8sHttpError extends Error {
  override readonly name = "K8sHttpError";
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The Bun-specific part: fetch's `tls` option (certificate verification and client certs). */
function tlsInit(ep: K8sEndpoint): { tls?: Record<string, unknown> } {
  if (!ep.server.startsWith("https:")) return {};
  const tls: Record<string, unknown> = {};
  if (ep.ca !== undefined) tls.ca = ep.ca;
  if (ep.cert !== undefined) tls.cert = ep.cert;
  if (ep.key !== undefined) tls.key = ep.key;
  if (ep.insecureSkipTlsVerify) tls.rejectUnauthorized = false;
  return { tls };
}

export class K8sClient {
  private readonly fetchFn: FetchLike;
  private readonly clock: Clock;

  constructor(
    readonly endpoint: K8sEndpoint,
    options: K8sClientOptions = {},
  ) {
    this.fetchFn = options.fetch ?? ((url, init) => fetch(url, init));
    this.clock = options.clock ?? systemClock;
  }

  private async headers(accept: string): Promise<Record<string, string>> {
    const h: Record<string, string> = { Accept: accept, "User-Agent": "pipekit-log-collector" };
    let token = this.endpoint.token;
    if (this.endpoint.tokenFile !== undefined) {
      try {
        token = (await readFile(this.endpoint.tokenFile, "utf8")).trim();
      } catch (err) {
        throw new Error(`cannot read token file ${this.endpoint.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  }

  private async fetch(path: string, accept: string, signal?: AbortSignal): Promise<Response> {
    const url = this.endpoint.server + path;
    let res: Response;
    try {
      res = await this.fetchFn(url, { headers: await this.headers(accept), signal, ...tlsInit(this.endpoint) } as RequestInit);
    } catch (err) {
      if ((err as Error).name === "AbortError" || signal?.aborted) throw err;
      const e = err as Error & { code?: string };
      throw new Error(`GET ${this.endpoint.server}${path.split("?")[0]}: ${e.code ? e.code + ": " : ""}${e.message}`);
    }
    if (!res.ok) throw await httpError(res, path);
    return res;
  }

  async getJson(path: string, signal?: AbortSignal): Promise<unknown> {
    const res = await this.fetch(path, "application/json", signal);
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`GET ${path.split("?")[0]}: the answer is not JSON (${text.slice(0, 80)})`);
    }
  }

  /**
   * Opens a watch and yields its events. Ends when the server closes the stream; throws on a
   * transport error. A stream silent for longer than idleTimeoutMs (read again at every check,
   * so the caller may shorten it once the server proved it sends periodic BOOKMARKs) is aborted:
   * a dead peer behind a NAT never sends a FIN. An incomplete last line is dropped, never parsed.
   */
  async *watch(path: string, options: { signal?: AbortSignal; idleTimeoutMs: number | (() => number); onOpen?: () => void }): AsyncGenerator<WatchEvent> {
    const abort = new AbortController();
    const onOuterAbort = () => abort.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onOuterAbort, { once: true });
    const clock = this.clock;
    const idleMs = typeof options.idleTimeoutMs === "number" ? () => options.idleTimeoutMs as number : options.idleTimeoutMs;
    let lastData = clock.now();
    let idle = false;
    let timer: { cancel(): void } | null = null;
    const arm = (ms: number) => {
      timer = clock.after(ms, () => {
        const quiet = clock.now() - lastData;
        if (quiet >= idleMs()) {
          idle = true;
          abort.abort(new Error("watch idle timeout"));
        } else arm(idleMs() - quiet);
      });
    };
    arm(idleMs());
    try {
      const res = await this.fetch(path, "application/json", abort.signal);
      options.onOpen?.();
      if (!res.body) return;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (idle) throw new Error(`watch stream silent for ${idleMs()} ms`);
          throw err;
        }
        if (chunk.done) return;
        lastData = clock.now();
        buf += decoder.decode(chunk.value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === "") continue;
          let event: WatchEvent;
          try {
            event = parseWatchEvent(line);
          } catch (err) {
            throw new Error(`watch stream: malformed event (${(err as Error).message})`);
          }
          yield event;
        }
      }
    } finally {
      (timer as { cancel(): void } | null)?.cancel();
      options.signal?.removeEventListener("abort", onOuterAbort);
      abort.abort();
    }
  }
}

async function httpError(res: Response, path: string): Promise<K8sHttpError> {
  let reason = res.statusText;
  let message = "";
  try {
    const body: unknown = JSON.parse(await res.text());
    if (isStatus(body)) {
      reason = body.reason || reason;
      message = body.message;
    }
  } catch {
    // not a Status; the HTTP status says enough
  }
  const what = `GET ${path.split("?")[0]}: HTTP ${res.status}${reason ? " " + reason : ""}${message ? ": " + message : ""}`;
  return new K8sHttpError(res.status, reason, what);
}
