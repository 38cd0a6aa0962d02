// The sender's statistics and health: counters and gauges for /metrics and /status, failure
// episodes (logged per episode, not per request) and the reasons the sink makes the pipeline unhealthy.
import { redactSecrets } from "../config/secrets.ts";
import type { Logger } from "../log.ts";
import type { Clock } from "../platform/types.ts";
import type { DeadLetterStats } from "./dead-letter.ts";
import { Histogram } from "./histogram.ts";
import type { SenderStats, StatusClass } from "./types.ts";

/** A failing episode is logged as a warning after this many failures in a row, then at most once a minute. */
const FAILURES_BEFORE_WARNING = 5;
const FAILING_LOG_INTERVAL_MS = 60_000;

export type ReasonKey = "key" | "url" | "unexpected" | "dead-letter" | "key-source" | "refusing";

/** Reasons cleared by a 2xx: the messenger accepts what it refused. */
const CLEARED_BY_SUCCESS = ["key", "url", "unexpected", "refusing"] as const;

/** Why the sink makes the pipeline unhealthy, by cause; a new or changed reason is logged once. */
export class HealthReasons {
  readonly #texts = new Map<ReasonKey, string>();

  constructor(
    private readonly log: Logger,
    /** The messenger URL, free of credentials, for the log lines. */
    private readonly url: string,
  ) {}

  set(key: ReasonKey, text: string): void {
    if (this.#texts.get(key) !== text) this.log.warn(text, { url: this.url });
    this.#texts.set(key, text);
  }

  /** True when the reason was there. */
  delete(key: ReasonKey): boolean {
    return this.#texts.delete(key);
  }

  values(): string[] {
    return [...this.#texts.values()];
  }
}

/** The counts a sender keeps; delivery and the client update them, stats() reads them. */
export class SenderStatistics {
  readonly requests: Record<StatusClass, number> = { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, error: 0 };
  readonly byStatus: Record<string, number> = {};
  readonly latency = new Histogram();
  retries = 0;
  eventsSent = 0;
  batchesSent = 0;
  bisections = 0;
  deadLettered = 0;
  bytesWire = 0;
  bytesRaw = 0;
  inFlight = 0;
  waiting = 0;
  queued = 0;
  outstanding = 0;
  lastSuccessAt: number | null = null;
  failingSince: number | null = null;
  /**
   * What delivery is failing with now. A 2xx clears it, as it clears failingSince and the health
   * reasons: /status and `top` show the present (an old 401 after recovery would send an operator
   * chasing a fixed key); the history is in the per-status request counters and the log.
   */
  lastError: string | null = null;
  lastErrorAt: number | null = null;
  /** Records dead-lettered since the last 2xx. */
  refusalStreak = 0;
  readonly startedAt: number;
  #consecutiveFailures = 0;
  #warnedAt = 0;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    readonly reasons: HealthReasons,
    private readonly url: string,
  ) {
    this.startedAt = clock.now();
  }

  /** A request that got no HTTP answer. */
  countError(timeout: boolean): void {
    this.requests.error++;
    const k = timeout ? "timeout" : "connection";
    this.byStatus[k] = (this.byStatus[k] ?? 0) + 1;
  }

  countAnswer(status: number): void {
    const s = status;
    const cls: StatusClass = s >= 200 && s < 300 ? "2xx" : s >= 300 && s < 400 ? "3xx" : s >= 400 && s < 500 ? "4xx" : s >= 500 && s < 600 ? "5xx" : "error";
    this.requests[cls]++;
    this.byStatus[String(s)] = (this.byStatus[String(s)] ?? 0) + 1;
  }

  // Logged per episode, not per request: with a flaky messenger, one line per failure would be noise.
  noteFailure(message: string): void {
    this.#noteError(message);
    this.#consecutiveFailures++;
    this.failingSince ??= this.clock.now();
    const t = this.clock.now();
    if (this.#consecutiveFailures >= FAILURES_BEFORE_WARNING && t - this.#warnedAt >= FAILING_LOG_INTERVAL_MS) {
      this.#warnedAt = t;
      this.log.warn("messenger delivery failing; retrying", {
        error: this.lastError,
        url: this.url,
        failingForMs: t - this.failingSince,
        consecutiveFailures: this.#consecutiveFailures,
      });
    } else {
      this.log.debug("messenger request failed; retrying", { error: this.lastError });
    }
  }

  noteSuccess(): void {
    this.lastSuccessAt = this.clock.now();
    if (this.#warnedAt !== 0 && this.failingSince !== null) this.log.info("messenger delivery recovered", { failedForMs: this.lastSuccessAt - this.failingSince });
    this.#warnedAt = 0;
    this.#consecutiveFailures = 0;
    this.failingSince = null;
    this.lastError = null;
    this.lastErrorAt = null;
    this.refusalStreak = 0;
    for (const k of CLEARED_BY_SUCCESS) {
      if (this.reasons.delete(k)) this.log.info("messenger accepts batches again", { cleared: k });
    }
  }

  /** A bug, not a messenger answer, kept as the last error (free of secrets). */
  noteInternalError(message: string): void {
    this.#noteError(message);
  }

  #noteError(message: string): void {
    this.lastError = redactSecrets(message);
    this.lastErrorAt = this.clock.now();
  }

  snapshot(o: { outstandingLimit: number; pool: { created: number; inUse: number }; deadLetters?: DeadLetterStats; failingAlertMs?: number }): SenderStats {
    const t = this.clock.now();
    const healthReasons = this.reasons.values();
    if (o.failingAlertMs !== undefined && this.failingSince !== null && t - this.failingSince > o.failingAlertMs) {
      healthReasons.push(`messenger failing for ${Math.round((t - this.failingSince) / 1000)} s`);
    }
    return {
      requests: { ...this.requests },
      requestsByStatus: { ...this.byStatus },
      retries: this.retries,
      eventsSent: this.eventsSent,
      batchesSent: this.batchesSent,
      bisections: this.bisections,
      deadLetteredEvents: this.deadLettered,
      deadLetterBytes: o.deadLetters?.bytes ?? 0,
      deadLetterRotations: o.deadLetters?.rotations ?? 0,
      bytesSentWire: this.bytesWire,
      bytesSentRaw: this.bytesRaw,
      latency: this.latency.snapshot(),
      inFlight: this.inFlight,
      waiting: this.waiting,
      queued: this.queued,
      outstanding: this.outstanding,
      outstandingLimit: o.outstandingLimit,
      bodyBuffers: o.pool.created,
      bodyBuffersInUse: o.pool.inUse,
      atOutstandingLimit: this.outstanding >= o.outstandingLimit,
      lastSuccessAt: this.lastSuccessAt,
      secondsSinceLastSuccess: (t - (this.lastSuccessAt ?? this.startedAt)) / 1000,
      failingSince: this.failingSince,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      healthReasons,
    };
  }
}
