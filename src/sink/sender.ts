// The messenger sink (SPEC §4): reads serialised records from the ring, splices them into
// batches, POSTs them with up to `concurrency` requests in flight, and acknowledges each batch in
// the ring once the messenger answered 2xx (or its refused record was dead-lettered). The ring
// advances over the contiguous acknowledged prefix, so out-of-order answers lose nothing.
//
// Memory: each batch is spliced into a buffer from a pool of concurrency × OUTSTANDING_PER_SLOT
// (the bound on batches outstanding), returned when the batch is finished; requests go out with
// fetch directly. Fresh bodies and ky's Request copy of each made anonymous memory grow with
// delivery volume (bench/sink-memory.ts).
//
// Policy (see policy.ts): transient failures retry forever with full-jitter backoff or the
// messenger's Retry-After, without holding a request slot while they wait; content refusals
// bisect down to the one refused record; key/URL/unknown refusals hold the data, retry at the
// maximum backoff and mark the pipeline unhealthy. Logs are never dropped for our own mistakes.
import { readFileSync } from "node:fs";
import type { Ring, RingRanges } from "../buffer/types.ts";
import type { Config } from "../config/schema.ts";
import { log as rootLog, type Logger } from "../log.ts";
import { type Batch, type BatchBuffer, BatchPool, bodySize, payloadBudget, recordBytes, sliceBody, splitRange } from "./batch.ts";
import { gzip } from "./compress.ts";
import { ANSWER_SNIPPET_BYTES, DeadLetterFile } from "./dead-letter.ts";
import { Histogram, type HistogramSnapshot } from "./histogram.ts";
import { classifyStatus, parseRetryAfter, retryDelay, type Verdict } from "./policy.ts";
import { Semaphore, sleep } from "./semaphore.ts";
import { API_KEY_HEADER, displayUrl, ingestUrl } from "./wire.ts";

export interface SenderDeps {
  ring: Pick<Ring, "readRanges" | "waitForData" | "ack">;
  config: Config["messenger"];
  dataDir: string;
  log?: Logger;
  now?: () => number;
  /** Optional: report "messenger failing for N s" in healthReasons beyond this (health.sinkFailingSeconds). */
  failingAlertMs?: number;
}

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
  /** The last failure, free of secrets. */
  lastError: string | null;
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

/** A failing episode is logged as a warning after this many failures in a row, then at most once a minute. */
const FAILURES_BEFORE_WARNING = 5;
const FAILING_LOG_INTERVAL_MS = 60_000;

/**
 * Dead letters in a row, without any 2xx in between, after which the sender stops dead-lettering
 * and holds the data: one bad record is isolated among accepted ones; a messenger that accepts
 * nothing at all is broken or misconfigured, and its "refusals" must not empty the ring.
 */
export const REFUSAL_STREAK_LIMIT = 32;

/** Bound on batches taken from the ring and not yet acknowledged, per request slot. */
export const OUTSTANDING_PER_SLOT = 4;

type Outcome =
  | { kind: "answer"; status: number; retryAfterMs: number | null; snippet: string }
  | { kind: "error"; timeout: boolean; message: string }
  | { kind: "aborted" };

type ReasonKey = "key" | "url" | "unexpected" | "dead-letter" | "key-source" | "refusing";

const decoder = new TextDecoder();

export function createSender(deps: SenderDeps): Sender {
  const cfg = deps.config;
  const now = deps.now ?? Date.now;
  const log = (deps.log ?? rootLog).child({ stage: "sink" });
  if (!cfg.baseUri) throw new Error("messenger.baseUri is not set (config messenger.baseUri or PIPEKIT_MESSENGER_BASE_URI)");
  const endpoint = ingestUrl(cfg.baseUri);
  const endpointForHumans = displayUrl(endpoint);
  const ring = deps.ring;
  const maxEvents = cfg.batchMaxEvents;
  const budget = payloadBudget(cfg.batchMaxEvents, cfg.batchMaxBytes);

  // TLS: verified by default; a private CA from caFile; skipping verification only on request.
  const tls: { ca?: string; rejectUnauthorized?: boolean } = {};
  if (cfg.caFile) {
    try {
      tls.ca = readFileSync(cfg.caFile, "utf8");
    } catch (err) {
      throw new Error(`messenger.caFile ${cfg.caFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if (cfg.insecureSkipTlsVerify) tls.rejectUnauthorized = false;
  // Bun's fetch takes the TLS options directly; it keeps connections alive by default.
  const tlsOption = Object.keys(tls).length ? tls : undefined;

  // ---- the API key (never logged; redacted from anything we keep) ----
  let apiKey: string | null = cfg.apiKey;
  const reasons = new Map<ReasonKey, string>();
  function loadApiKey(): void {
    if (cfg.apiKeyFile) {
      try {
        const k = readFileSync(cfg.apiKeyFile, "utf8").trim();
        if (k === "") {
          setReason("key-source", `messenger API key file ${cfg.apiKeyFile} is empty`);
          return;
        }
        if (k !== apiKey) log.info("messenger API key loaded", { file: cfg.apiKeyFile });
        apiKey = k;
        reasons.delete("key-source");
      } catch (err) {
        setReason("key-source", `cannot read messenger API key file ${cfg.apiKeyFile}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
      }
      return;
    }
    if (!apiKey) setReason("key-source", "no messenger API key configured (messenger.apiKey, PIPEKIT_API_KEY or messenger.apiKeyFile)");
  }
  const secretsSeen = new Set<string>();
  // Credentials in the base URI (user:password@host) are secrets too.
  try {
    const u = new URL(cfg.baseUri);
    if (u.password) secretsSeen.add(decodeURIComponent(u.password));
  } catch {
    // the schema already checked the URL
  }
  function redact(s: string): string {
    if (apiKey) secretsSeen.add(apiKey);
    for (const k of secretsSeen) if (k.length >= 4) s = s.split(k).join("[redacted]");
    return s;
  }

  // ---- state ----
  const slots = new Semaphore(cfg.concurrency);
  const outstandingLimit = cfg.concurrency * OUTSTANDING_PER_SLOT;
  const outstandingSlots = new Semaphore(outstandingLimit);
  // One reusable body per outstanding batch: the normal path allocates no body memory.
  const pool = new BatchPool(outstandingLimit, bodySize(maxEvents, budget), maxEvents);
  const shutdown = new AbortController(); // aborts requests, sleeps and waits
  // Requests on the wire, aborted together at shutdown (one listener, not one per request).
  const active = new Set<AbortController>();
  shutdown.signal.addEventListener("abort", () => {
    for (const ac of active) ac.abort();
  });
  let stopping = false; // drain or stop began
  let started = false;
  let draining = false;
  let stopped = false;
  let pumpDone: Promise<void> = Promise.resolve();
  const tasks = new Set<Promise<void>>();
  let carry: RingRanges | null = null;
  let pauseUntil = 0; // a Retry-After applies to every batch, not just the one that got it
  const startedAt = now();

  const requests: Record<StatusClass, number> = { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, error: 0 };
  const byStatus: Record<string, number> = {};
  const latency = new Histogram();
  const c = { retries: 0, eventsSent: 0, batchesSent: 0, bisections: 0, deadLettered: 0, bytesWire: 0, bytesRaw: 0 };
  let inFlight = 0;
  let waiting = 0;
  let queued = 0;
  let outstanding = 0;
  let lastSuccessAt: number | null = null;
  let failingSince: number | null = null;
  let lastError: string | null = null;
  let deadLetters: DeadLetterFile | null = null;
  let warned413 = false;
  let refusalStreak = 0; // records dead-lettered since the last 2xx

  function setReason(key: ReasonKey, text: string): void {
    if (reasons.get(key) !== text) log.warn(text, { url: endpointForHumans });
    reasons.set(key, text);
  }

  // Logged per episode, not per request: with a flaky messenger, one line per failure would be noise.
  let consecutiveFailures = 0;
  let warnedAt = 0;
  function noteFailure(message: string): void {
    lastError = redact(message);
    consecutiveFailures++;
    failingSince ??= now();
    const t = now();
    if (consecutiveFailures >= FAILURES_BEFORE_WARNING && t - warnedAt >= FAILING_LOG_INTERVAL_MS) {
      warnedAt = t;
      log.warn("messenger delivery failing; retrying", { error: lastError, url: endpointForHumans, failingForMs: t - failingSince, consecutiveFailures });
    } else {
      log.debug("messenger request failed; retrying", { error: lastError });
    }
  }

  function noteSuccess(): void {
    lastSuccessAt = now();
    if (warnedAt !== 0 && failingSince !== null) log.info("messenger delivery recovered", { failedForMs: lastSuccessAt - failingSince });
    warnedAt = 0;
    consecutiveFailures = 0;
    failingSince = null;
    refusalStreak = 0;
    for (const k of ["key", "url", "unexpected", "refusing"] as const) {
      if (reasons.delete(k)) log.info("messenger accepts batches again", { cleared: k });
    }
  }

  // ---- one request ----
  // The same headers object for every request while the key stays the same (fetch copies them
  // into each request; this object is replaced, never changed, when the key is re-read).
  let headers: Headers | null = null;
  let headersKey: string | null = null;
  let headersGzip = false;
  function requestHeaders(gzipped: boolean): Headers {
    if (headers === null || headersKey !== apiKey || headersGzip !== gzipped) {
      const h = new Headers({ "content-type": "application/json" });
      if (apiKey) h.set(API_KEY_HEADER, apiKey);
      if (gzipped) h.set("content-encoding", "gzip");
      headers = h;
      headersKey = apiKey;
      headersGzip = gzipped;
    }
    return headers;
  }

  // fetch directly, not ky: ky builds a Request per attempt, which copies the whole body once
  // more (bench/batch.bench.ts). Bun's fetch copies a Uint8Array body before it returns, so the
  // body's memory is free for reuse once the request settled (test/sink/pool.test.ts checks it).
  async function send(raw: Uint8Array, wire: Uint8Array<ArrayBuffer>): Promise<Outcome> {
    if (shutdown.signal.aborted) return { kind: "aborted" };
    // The timeout covers the whole exchange: the answer's head and reading its body.
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, cfg.timeoutMs);
    active.add(ac);
    const t0 = performance.now();
    c.bytesWire += wire.length;
    c.bytesRaw += raw.length;
    try {
      let res: Response;
      try {
        res = await fetch(endpoint, { method: "POST", body: wire, headers: requestHeaders(wire !== raw), signal: ac.signal, tls: tlsOption });
      } catch (err) {
        if (shutdown.signal.aborted) return { kind: "aborted" };
        const e = err as Error;
        const timeout = timedOut || e.name === "TimeoutError";
        return { kind: "error", timeout, message: timeout ? `no answer within ${cfg.timeoutMs} ms` : `${e.name}: ${e.message}${causeOf(e)}` };
      }
      let snippet = "";
      try {
        const body = new Uint8Array(await res.arrayBuffer());
        if (!res.ok) snippet = decoder.decode(body.subarray(0, ANSWER_SNIPPET_BYTES));
      } catch {
        // An unreadable answer body does not change what the status said.
      }
      return { kind: "answer", status: res.status, retryAfterMs: parseRetryAfter(res.headers.get("retry-after"), now()), snippet: redact(snippet) };
    } finally {
      clearTimeout(timer);
      active.delete(ac);
      latency.observe((performance.now() - t0) / 1000);
    }
  }

  function count(outcome: Outcome): void {
    if (outcome.kind === "aborted") return;
    if (outcome.kind === "error") {
      requests.error++;
      const k = outcome.timeout ? "timeout" : "connection";
      byStatus[k] = (byStatus[k] ?? 0) + 1;
      return;
    }
    const s = outcome.status;
    const cls: StatusClass = s >= 200 && s < 300 ? "2xx" : s >= 300 && s < 400 ? "3xx" : s >= 400 && s < 500 ? "4xx" : s >= 500 && s < 600 ? "5xx" : "error";
    requests[cls]++;
    byStatus[String(s)] = (byStatus[String(s)] ?? 0) + 1;
  }

  /** Waits ms as a "waiting" batch (no request slot held); false on shutdown. */
  async function wait(ms: number): Promise<boolean> {
    waiting++;
    try {
      return await sleep(ms, shutdown.signal);
    } finally {
      waiting--;
    }
  }

  // ---- one batch (or part of one): until acknowledged or shut down ----
  async function deliver(batch: BatchBuffer, from: number, to: number): Promise<boolean> {
    const raw = sliceBody(batch, from, to);
    // A whole batch keeps its compressed body in pooled memory too; a bisected part (rare) does not.
    const wire = cfg.compression !== "gzip" ? raw : raw === batch.body ? batch.keepWire(gzip(raw)) : gzip(raw);
    let attempt = 0;
    let reloadKeyFirst = false;
    for (;;) {
      while (now() < pauseUntil) if (!(await wait(pauseUntil - now()))) return false;
      if (reloadKeyFirst) {
        loadApiKey();
        reloadKeyFirst = false;
      }
      queued++;
      const gotSlot = await slots.acquire(shutdown.signal);
      queued--;
      if (!gotSlot) return false;
      inFlight++;
      let outcome: Outcome;
      try {
        outcome = await send(raw, wire);
      } finally {
        inFlight--;
        slots.release();
      }
      count(outcome);
      if (outcome.kind === "aborted") return false;

      const verdict: Verdict = outcome.kind === "error" ? "retry" : classifyStatus(outcome.status);
      const what = outcome.kind === "error" ? outcome.message : `HTTP ${outcome.status}${outcome.snippet ? `: ${outcome.snippet.slice(0, 200)}` : ""}`;
      let delay: number;
      switch (verdict) {
        case "ok":
          ring.ack(batch.firstSeq + from, to - from);
          c.eventsSent += to - from;
          c.batchesSent++;
          noteSuccess();
          return true;
        case "retry": {
          const retryAfterMs = outcome.kind === "answer" ? outcome.retryAfterMs : null;
          delay = retryDelay(attempt++, retryAfterMs, cfg.retryInitialBackoffMs, cfg.retryMaxBackoffMs);
          if (retryAfterMs !== null) pauseUntil = Math.max(pauseUntil, now() + delay);
          noteFailure(what);
          break;
        }
        case "split": {
          const status = (outcome as { status: number }).status;
          if (to - from === 1) {
            if (refusalStreak < REFUSAL_STREAK_LIMIT) return deadLetter(batch, from, status, (outcome as { snippet: string }).snippet);
            // Record after record refused and nothing accepted in between: the messenger (or a proxy
            // answering 400 for plain HTTP to an HTTPS port) refuses everything. Hold instead of dead-lettering.
            setReason("refusing", `messenger refuses every record (HTTP ${status}, ${refusalStreak} dead letters without a success); holding the data — check messenger.baseUri`);
            noteFailure(what);
            delay = cfg.retryMaxBackoffMs;
            break;
          }
          c.bisections++;
          log.debug("messenger refused a batch; splitting it", { status, records: to - from });
          if (status === 413 && !warned413) {
            warned413 = true;
            log.warn("messenger refused a batch as too large; splitting it. If this repeats, lower messenger.batchMaxBytes", {
              bodyBytes: raw.length,
              batchMaxBytes: cfg.batchMaxBytes,
            });
          }
          const [a, b] = splitRange(from, to);
          if (!(await deliver(batch, a[0], a[1]))) return false;
          return deliver(batch, b[0], b[1]);
        }
        case "auth":
          setReason("key", "messenger rejected the API key");
          noteFailure(what);
          reloadKeyFirst = (outcome as { status: number }).status === 401;
          delay = cfg.retryMaxBackoffMs;
          break;
        case "url":
          setReason("url", "messenger URL not found");
          noteFailure(what);
          delay = cfg.retryMaxBackoffMs;
          break;
        case "unexpected": {
          const status = (outcome as { status: number }).status;
          setReason("unexpected", `messenger answered HTTP ${status}, which the collector does not retry quickly or drop; holding the data`);
          noteFailure(what);
          delay = cfg.retryMaxBackoffMs;
          break;
        }
      }
      c.retries++;
      if (!(await wait(delay))) return false;
    }
  }

  async function deadLetter(batch: Batch, i: number, status: number, answer: string): Promise<boolean> {
    const seq = batch.firstSeq + i;
    for (;;) {
      try {
        deadLetters ??= new DeadLetterFile(deps.dataDir, cfg.deadLetterMaxBytes);
        if (cfg.deadLetterMaxBytes > 0) deadLetters.write({ seq, status, answer, record: recordBytes(batch, i), time: now() });
        reasons.delete("dead-letter");
        break;
      } catch (err) {
        // Cannot keep the evidence: keep the record in the ring instead, and say so.
        setReason("dead-letter", `cannot write the dead-letter file in ${deps.dataDir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        if (!(await wait(cfg.retryMaxBackoffMs))) return false;
      }
    }
    ring.ack(seq, 1);
    c.deadLettered++;
    refusalStreak++;
    log.error("messenger refused a record; dead-lettered", { seq, status, file: deadLetters?.path ?? null });
    return true;
  }

  // ---- reading the ring into batches ----
  // Not Promise.race with a long-lived "stopping" promise: every race would leave a reaction on it
  // until shutdown (thousands of closures and promises per minute under load).
  const ringWaiters = new Set<() => void>();
  function waitForRing(ms: number | null): Promise<void> {
    if (stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (!ringWaiters.delete(done)) return;
        if (timer) clearTimeout(timer);
        resolve();
      };
      ringWaiters.add(done);
      if (ms !== null) timer = setTimeout(done, ms);
      ring.waitForData().then(done, done);
    });
  }

  /**
   * The next batch, in a buffer from the pool: full, or flushIntervalMs after its first record;
   * null when stopping (or drained). Records are copied out of the mapping as they are read, before
   * anything is acknowledged (the ring's views are valid only until then).
   */
  async function assemble(): Promise<BatchBuffer | null> {
    let r = carry;
    carry = null;
    while (!r) {
      if (stopped) return null;
      r = ring.readRanges(maxEvents, budget);
      if (r) break;
      if (draining) return null;
      await waitForRing(null);
    }
    const batch = pool.take(r.firstSeq);
    try {
      batch.addRanges(r);
      const deadline = now() + cfg.flushIntervalMs;
      while (batch.count < maxEvents && batch.payloadBytes < budget) {
        if (stopped) {
          pool.give(batch);
          return null;
        }
        const next = ring.readRanges(maxEvents - batch.count, budget - batch.payloadBytes);
        if (next) {
          // The ring hands out one record above the byte budget rather than none: it starts the next batch.
          if (batch.payloadBytes + next.bytes > budget || next.firstSeq !== batch.firstSeq + batch.count) {
            carry = next;
            break;
          }
          batch.addRanges(next);
          continue;
        }
        if (draining) break;
        const left = deadline - now();
        if (left <= 0) break;
        await waitForRing(left);
      }
    } catch (err) {
      pool.give(batch);
      throw err;
    }
    return batch.finish();
  }

  async function pump(): Promise<void> {
    while (!stopped) {
      if (!(await outstandingSlots.acquire(shutdown.signal))) return;
      let batch: BatchBuffer | null;
      try {
        batch = await assemble();
      } catch (err) {
        outstandingSlots.release();
        log.error("reading the ring failed; retrying", { error: err as Error });
        if (!(await sleep(cfg.retryInitialBackoffMs, shutdown.signal))) return;
        continue;
      }
      if (!batch) {
        outstandingSlots.release();
        return;
      }
      outstanding++;
      const b = batch;
      const task: Promise<void> = deliver(b, 0, b.count)
        .then(() => undefined)
        .catch((err: unknown) => {
          // A bug, not a messenger answer: the records stay unacknowledged in the ring (sent after restart).
          lastError = redact(`internal error delivering a batch: ${(err as Error).message}`);
          log.error("internal error delivering a batch; its records stay in the ring", { error: err as Error, firstSeq: b.firstSeq });
        })
        .finally(() => {
          // Every request for this batch has settled (deliver awaits each one): its memory is free.
          pool.give(b);
          outstanding--;
          outstandingSlots.release();
          tasks.delete(task);
        });
      tasks.add(task);
    }
  }

  function beginStopping(): void {
    stopping = true;
    for (const w of [...ringWaiters]) w();
  }

  async function settle(): Promise<void> {
    await pumpDone;
    while (tasks.size) await Promise.allSettled([...tasks]);
  }

  return {
    start() {
      if (started) return;
      started = true;
      loadApiKey();
      if (cfg.insecureSkipTlsVerify) {
        log.warn("messenger.insecureSkipTlsVerify is on: the messenger's TLS certificate is NOT verified (for tests only)", { url: endpointForHumans });
      }
      log.info("messenger sink started", {
        url: endpointForHumans,
        concurrency: cfg.concurrency,
        batchMaxEvents: maxEvents,
        batchMaxBytes: cfg.batchMaxBytes,
        compression: cfg.compression,
      });
      pumpDone = pump().catch((err: unknown) => log.error("sink loop failed", { error: err as Error }));
    },

    async drain(deadlineMs) {
      const deadline = deadlineMs >= 1e12 ? deadlineMs : now() + deadlineMs;
      if (!started) return { complete: true };
      if (stopped) {
        await settle();
        return { complete: false };
      }
      draining = true;
      beginStopping();
      const all = settle().then(() => true);
      const timeUp = sleep(Math.max(0, deadline - now())).then(() => false);
      const complete = await Promise.race([all, timeUp]);
      if (!complete) {
        stopped = true;
        shutdown.abort();
        await settle();
        log.warn("drain deadline reached; undelivered records stay in the ring for the next start", { outstanding });
      }
      stopped = true;
      return { complete };
    },

    async stop() {
      stopped = true;
      beginStopping();
      shutdown.abort();
      await settle();
    },

    stats(): SenderStats {
      const dl = deadLetters?.stats();
      const t = now();
      const healthReasons = [...reasons.values()];
      if (deps.failingAlertMs !== undefined && failingSince !== null && t - failingSince > deps.failingAlertMs) {
        healthReasons.push(`messenger failing for ${Math.round((t - failingSince) / 1000)} s`);
      }
      return {
        requests: { ...requests },
        requestsByStatus: { ...byStatus },
        retries: c.retries,
        eventsSent: c.eventsSent,
        batchesSent: c.batchesSent,
        bisections: c.bisections,
        deadLetteredEvents: c.deadLettered,
        deadLetterBytes: dl?.bytes ?? 0,
        deadLetterRotations: dl?.rotations ?? 0,
        bytesSentWire: c.bytesWire,
        bytesSentRaw: c.bytesRaw,
        latency: latency.snapshot(),
        inFlight,
        waiting,
        queued,
        outstanding,
        outstandingLimit,
        bodyBuffers: pool.stats().created,
        bodyBuffersInUse: pool.stats().inUse,
        atOutstandingLimit: outstanding >= outstandingLimit,
        lastSuccessAt,
        secondsSinceLastSuccess: (t - (lastSuccessAt ?? startedAt)) / 1000,
        failingSince,
        lastError,
        healthReasons,
      };
    },

    reloadApiKey() {
      loadApiKey();
    },
  };
}

function causeOf(e: Error): string {
  const cause = (e as { cause?: unknown }).cause;
  if (cause instanceof Error) return ` (${cause.message})`;
  return "";
}
