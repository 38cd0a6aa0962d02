// The faults the mock messenger (src/dev/mock-messenger.ts) injects on demand: what each one is,
// how a fault set that came over HTTP or the command line is checked, and the draws a request
// makes against them.

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

/**
 * Whether a request draws a fault given both as a count of next requests and as a rate: a count
 * left is used up first (one per request); otherwise the rate is drawn.
 */
export function drawFault(faults: MessengerFaults, next: "hangNext" | "failNext", rate: "hangRate" | "failRate"): boolean {
  const left = faults[next] ?? 0;
  if (left > 0) {
    faults[next] = left - 1;
    return true;
  }
  const fraction = faults[rate];
  return fraction !== undefined && Math.random() < fraction;
}

/** The Retry-After header the faults ask for, if any. */
export function retryAfterHeader(faults: MessengerFaults): Record<string, string> {
  const s = faults.retryAfterSeconds;
  if (s === undefined) return {};
  if (faults.retryAfterFormat === "date") return { "retry-after": new Date(Date.now() + s * 1000).toUTCString() };
  return { "retry-after": String(Math.round(s)) };
}
