// The sink's contracts: what the collector and the API see of the sender, and the network edge the
// sender is given (fetch's shape, so that a simulated network can stand in for the real one).
import type { HistogramSnapshot } from "./histogram.ts";

export type StatusClass = "2xx" | "3xx" | "4xx" | "5xx" | "error";

export interface SenderStats {
  /** Requests by answer class; `error` = no HTTP answer (connection error or timeout). */
  requests: Record<StatusClass, number>;
  /** Requests by exact status code ("200", "503", ...), plus "timeout" and "connection". */
  requestsByStatus: Record<string, number>;
  /** Requests repeated after a failure (transient, key, URL or unknown answer). */
  retries: number;
  /** Events and batches (or bisected parts) acknowledged with a 2xx. */
  eventsSent: number;
  batchesSent: number;
  /** Times a refused batch was split in halves. */
  bisections: number;
  /** Records the messenger refused on their own, written to the dead-letter file and acknowledged. */
  deadLetteredEvents: number;
  deadLetterBytes: number;
  deadLetterRotations: number;
  /** Request body bytes put on the wire (after compression) and before compression, every attempt. */
  bytesSentWire: number;
  bytesSentRaw: number;
  /** Request latency (send to answer read), seconds. */
  latency: HistogramSnapshot;
  /** Requests on the wire now. */
  inFlight: number;
  /** Batches waiting out a backoff or a Retry-After (holding no request slot). */
  waiting: number;
  /** Batches ready and waiting for a free request slot. */
  queued: number;
  /** Batches taken from the ring and not yet acknowledged, and their bound (concurrency × 4). */
  outstanding: number;
  outstandingLimit: number;
  /** Reusable batch body buffers created so far (never more than outstandingLimit), and those holding a batch now. */
  bodyBuffers: number;
  bodyBuffersInUse: number;
  /**
   * True while the sender does not read the ring because outstandingLimit batches are unacknowledged:
   * backpressure from a failing messenger (not a stuck loop).
   */
  atOutstandingLimit: boolean;
  /** Epoch ms of the last 2xx; null before the first. */
  lastSuccessAt: number | null;
  /** Seconds since the last 2xx (since start when none yet). */
  secondsSinceLastSuccess: number;
  /** Epoch ms of the first failure since the last success; null while healthy. */
  failingSince: number | null;
  /** The last failure since the last success, free of secrets; null once a 2xx shows delivery works again. */
  lastError: string | null;
  /** Epoch ms of that failure; null with it. */
  lastErrorAt: number | null;
  /** Why the pipeline is unhealthy because of the sink; empty when it is fine. */
  healthReasons: string[];
}

export interface Sender {
  start(): void;
  /**
   * Stops waiting for new records: delivers what the ring holds now and what is in flight, with
   * retries, until the deadline (an epoch-ms time; a value below 1e12 is taken as ms from now).
   * Whatever is not acknowledged by then stays in the ring for the next start.
   */
  drain(deadlineMs: number): Promise<{ complete: boolean }>;
  /** Stops at once: aborts requests and waits; unacknowledged records stay in the ring. */
  stop(): Promise<void>;
  stats(): SenderStats;
  /** Re-reads messenger.apiKeyFile (SIGHUP). */
  reloadApiKey(): void;
}

/** TLS settings for the messenger (Bun's fetch takes them per request). */
export interface TlsOptions {
  ca?: string;
  rejectUnauthorized?: boolean;
}

/** What the sender passes to fetch for one batch. */
export interface FetchInit {
  method: "POST";
  body: Uint8Array<ArrayBuffer>;
  headers: Headers;
  signal: AbortSignal;
  tls?: TlsOptions;
}

/**
 * The network: fetch's shape as the sender calls it. It resolves with the answer's head, rejects on a
 * connection error, and rejects once `signal` aborts (timeout or shutdown); the body is read after.
 */
export type Fetch = (url: string, init: FetchInit) => Promise<Response>;
