// The delivery policy, pure: what an answer means, how long to wait before the next try.

/**
 * What to do with a batch after an answer:
 * - `ok`: acknowledged (any 2xx);
 * - `retry`: transient (connection error, timeout, 408, 429, 5xx except 501) — back off, try again;
 * - `split`: the content was refused (400, 413, 422) — bisect; a single refused record is dead-lettered;
 * - `auth`: the key was refused (401, 403) — keep the batch, re-read the key, retry at the maximum backoff;
 * - `url`: the URL is wrong (404, 405) — keep the batch, retry at the maximum backoff;
 * - `unexpected`: anything else (other 4xx, 501, 1xx/3xx) — we cannot tell whether the content or the
 *   configuration is at fault, so nothing is dropped: keep the batch, retry at the maximum backoff,
 *   and report it as a health reason (what an operator expects of an unknown answer: loud, lossless).
 */
export type Verdict = "ok" | "retry" | "split" | "auth" | "url" | "unexpected";

export function classifyStatus(status: number): Verdict {
  if (status >= 200 && status < 300) return "ok";
  if (status === 408 || status === 429) return "retry";
  if (status >= 500 && status < 600) return status === 501 ? "unexpected" : "retry";
  if (status === 400 || status === 413 || status === 422) return "split";
  if (status === 401 || status === 403) return "auth";
  if (status === 404 || status === 405) return "url";
  return "unexpected";
}

/**
 * Exponential backoff with full jitter (AWS architecture blog): a uniform draw in
 * [0, min(max, initial * 2^attempt)). attempt counts from 0 for the first retry.
 */
export function fullJitterBackoff(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP date. Returns milliseconds from now
 * (0 for a date in the past), or null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value == null) return null;
  const v = value.trim();
  if (v === "") return null;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (/^[+-]?\d*\.?\d+$/.test(v)) return null; // negative or fractional seconds are not valid
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}

/**
 * The wait before the next try after a retryable answer: Retry-After when the messenger gave one
 * (capped, so that a broken header cannot park delivery for hours), else full-jitter backoff.
 */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | null,
  initialMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, Math.max(maxMs, RETRY_AFTER_CAP_MS));
  return fullJitterBackoff(attempt, initialMs, maxMs, random);
}

/** Longest Retry-After honoured (when retryMaxBackoffMs is below it): 5 minutes, as OTel gives up after. */
export const RETRY_AFTER_CAP_MS = 300_000;
