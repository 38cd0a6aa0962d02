// Delivering one batch (or part of one) until it is acknowledged or the sender shuts down, by the
// policy of policy.ts: transient failures retry with full-jitter backoff or the messenger's
// Retry-After, without holding a request slot while they wait; content refusals bisect down to the
// one refused record, which is dead-lettered; key/URL/unknown refusals hold the data, retry at the
// maximum backoff and mark the pipeline unhealthy. Logs are never dropped for our own mistakes.
import type { Ring } from "../buffer/types.ts";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import type { Clock } from "../platform/types.ts";
import { type Batch, type BatchBuffer, recordBytes, sliceBody, splitRange } from "./batch.ts";
import type { MessengerClient, Outcome } from "./client.ts";
import type { BodyCompressor } from "./compress.ts";
import type { Credentials } from "./credentials.ts";
import { type DeadLetter, DeadLetterFile, type DeadLetterStats } from "./dead-letter.ts";
import type { UnresolvedRecord } from "./record-expander.ts";
import { classifyStatus, retryDelay, type Verdict } from "./policy.ts";
import { type Semaphore, sleep } from "./semaphore.ts";
import type { SenderStatistics } from "./stats.ts";

/**
 * Dead letters in a row, without any 2xx in between, after which the sender stops dead-lettering
 * and holds the data: one bad record is isolated among accepted ones; a messenger that accepts
 * nothing at all is broken or misconfigured, and its "refusals" must not empty the ring.
 */
export const REFUSAL_STREAK_LIMIT = 32;

type Settled = Exclude<Outcome, { kind: "aborted" }>;

export interface DeliveryOptions {
  cfg: Config["messenger"];
  ring: Pick<Ring, "ack">;
  client: MessengerClient;
  /** Gzips bodies when messenger.compression is gzip. */
  compressor: BodyCompressor;
  credentials: Credentials;
  stats: SenderStatistics;
  /** Request slots: at most messenger.concurrency requests on the wire. */
  slots: Semaphore;
  clock: Clock;
  /** Uniform in [0, 1): the backoff's jitter. */
  random: () => number;
  shutdown: AbortSignal;
  dataDir: string;
  log: Logger;
}

export class Delivery {
  /** A Retry-After applies to every batch, not just the one that got it. */
  #pauseUntil = 0;
  #warned413 = false;
  #deadLetters: DeadLetterFile | null = null;

  constructor(private readonly o: DeliveryOptions) {}

  deadLetterStats(): DeadLetterStats | undefined {
    return this.#deadLetters?.stats();
  }

  /** Records [from, to) of the batch; true once acknowledged, false when shutting down first. */
  async deliver(batch: BatchBuffer, from: number, to: number): Promise<boolean> {
    const { o } = this;
    const raw = sliceBody(batch, from, to);
    // A whole batch keeps its compressed body in pooled memory too; a bisected part (rare) does not.
    const wire = o.cfg.compression !== "gzip" ? raw : await o.compressor.compress(batch, raw);
    if (wire === null) return false; // stopping
    let attempt = 0;
    let reloadKeyFirst = false;
    for (;;) {
      if (!(await this.#waitOutPause())) return false;
      if (reloadKeyFirst) o.credentials.reload();
      const outcome = await this.#request(raw, wire);
      if (outcome === null) return false;
      const verdict: Verdict = outcome.kind === "error" ? "retry" : classifyStatus(outcome.status);
      if (verdict === "ok") {
        o.ring.ack(batch.firstSeq + from, to - from);
        o.stats.eventsSent += to - from;
        o.stats.batchesSent++;
        o.stats.noteSuccess();
        return true;
      }
      if (verdict === "split" && outcome.kind === "answer") {
        if (to - from > 1) return this.#bisect(batch, from, to, outcome.status, raw.length);
        if (o.stats.refusalStreak < REFUSAL_STREAK_LIMIT) return this.#deadLetter(batch, from, outcome.status, outcome.snippet);
      }
      const delay = this.#afterFailure(verdict, outcome, attempt);
      if (verdict === "retry") attempt++;
      reloadKeyFirst = verdict === "auth" && outcome.kind === "answer" && outcome.status === 401;
      o.stats.retries++;
      if (!(await this.#wait(delay))) return false;
    }
  }

  /** Waits out a Retry-After pause; false on shutdown. */
  async #waitOutPause(): Promise<boolean> {
    const { clock } = this.o;
    while (clock.now() < this.#pauseUntil) if (!(await this.#wait(this.#pauseUntil - clock.now()))) return false;
    return true;
  }

  /** One request, once a request slot is free; null on shutdown. */
  async #request(raw: Uint8Array, wire: Uint8Array<ArrayBuffer>): Promise<Settled | null> {
    const { o } = this;
    o.stats.queued++;
    const gotSlot = await o.slots.acquire(o.shutdown);
    o.stats.queued--;
    if (!gotSlot) return null;
    o.stats.inFlight++;
    let outcome: Outcome;
    try {
      outcome = await o.client.send(raw, wire);
    } finally {
      o.stats.inFlight--;
      o.slots.release();
    }
    if (outcome.kind === "aborted") return null;
    if (outcome.kind === "error") o.stats.countError(outcome.timeout);
    else o.stats.countAnswer(outcome.status);
    return outcome;
  }

  /** Notes a failed attempt (and the health reason it gives); returns the wait before the next one. */
  #afterFailure(verdict: Verdict, outcome: Settled, attempt: number): number {
    const { o } = this;
    const what = outcome.kind === "error" ? outcome.message : `HTTP ${outcome.status}${outcome.snippet ? `: ${outcome.snippet.slice(0, 200)}` : ""}`;
    const status = outcome.kind === "answer" ? outcome.status : 0;
    let delay = o.cfg.retryMaxBackoffMs;
    switch (verdict) {
      case "retry": {
        const retryAfterMs = outcome.kind === "answer" ? outcome.retryAfterMs : null;
        delay = retryDelay(attempt, retryAfterMs, o.cfg.retryInitialBackoffMs, o.cfg.retryMaxBackoffMs, o.random);
        if (retryAfterMs !== null) this.#pauseUntil = Math.max(this.#pauseUntil, o.clock.now() + delay);
        break;
      }
      case "split":
        // Record after record refused and nothing accepted in between: the messenger (or a proxy
        // answering 400 for plain HTTP to an HTTPS port) refuses everything. Hold instead of dead-lettering.
        o.stats.reasons.set(
          "refusing",
          `messenger refuses every record (HTTP ${status}, ${o.stats.refusalStreak} dead letters without a success); holding the data — check messenger.baseUri`,
        );
        break;
      case "auth":
        o.stats.reasons.set("key", "messenger rejected the API key");
        break;
      case "url":
        o.stats.reasons.set("url", "messenger URL not found");
        break;
      case "unexpected":
        o.stats.reasons.set("unexpected", `messenger answered HTTP ${status}, which the collector does not retry quickly or drop; holding the data`);
        break;
    }
    o.stats.noteFailure(what);
    return delay;
  }

  async #bisect(batch: BatchBuffer, from: number, to: number, status: number, bodyBytes: number): Promise<boolean> {
    const { o } = this;
    o.stats.bisections++;
    o.log.debug("messenger refused a batch; splitting it", { status, records: to - from });
    if (status === 413 && !this.#warned413) {
      this.#warned413 = true;
      o.log.warn("messenger refused a batch as too large; splitting it. If this repeats, lower messenger.batchMaxBytes", {
        bodyBytes,
        batchMaxBytes: o.cfg.batchMaxBytes,
      });
    }
    const [a, b] = splitRange(from, to);
    if (!(await this.deliver(batch, a[0], a[1]))) return false;
    return this.deliver(batch, b[0], b[1]);
  }

  async #deadLetter(batch: Batch, i: number, status: number, answer: string): Promise<boolean> {
    const { o } = this;
    const seq = batch.firstSeq + i;
    for (;;) {
      try {
        this.#writeDeadLetter({ seq, status, answer, record: recordBytes(batch, i), time: o.clock.now() });
        o.stats.reasons.delete("dead-letter");
        break;
      } catch (err) {
        // Cannot keep the evidence: keep the record in the ring instead, and say so.
        o.stats.reasons.set("dead-letter", `cannot write the dead-letter file in ${o.dataDir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        if (!(await this.#wait(o.cfg.retryMaxBackoffMs))) return false;
      }
    }
    o.ring.ack(seq, 1);
    o.stats.deadLettered++;
    o.stats.refusalStreak++;
    o.log.error("messenger refused a record; dead-lettered", { seq, status, file: this.#deadLetters?.path ?? null });
    return true;
  }

  /**
   * A record that cannot be sent because it cannot be expanded to its full JSON (record-expander.ts):
   * kept in the dead-letter file as stored, counted as dead-lettered, acknowledged. Never waits: a
   * record nobody can send must not hold the ring.
   */
  deadLetterUnresolved(u: UnresolvedRecord): void {
    const { o } = this;
    let file: string | null = null;
    try {
      file = this.#writeDeadLetter({ seq: u.seq, status: 0, answer: `not sent: ${u.reason}`, record: u.stored, time: o.clock.now() });
    } catch (err) {
      o.log.error("cannot write the dead-letter file", { dir: o.dataDir, error: err as Error });
    }
    o.ring.ack(u.seq, 1);
    o.stats.deadLettered++;
    o.log.error("a ring record cannot be expanded to its full record (corrupt); dead-lettered, not sent", { seq: u.seq, reason: u.reason, file });
  }

  /** Keeps `d` in the dead-letter file (opened on first use; none kept when its size is 0); returns its path. Throws when it cannot be written. */
  #writeDeadLetter(d: DeadLetter): string {
    const { o } = this;
    this.#deadLetters ??= new DeadLetterFile(o.dataDir, o.cfg.deadLetterMaxBytes);
    if (o.cfg.deadLetterMaxBytes > 0) this.#deadLetters.write(d);
    return this.#deadLetters.path;
  }

  /** Waits ms as a "waiting" batch (no request slot held); false on shutdown. */
  async #wait(ms: number): Promise<boolean> {
    const { o } = this;
    o.stats.waiting++;
    try {
      return await sleep(o.clock, ms, o.shutdown);
    } finally {
      o.stats.waiting--;
    }
  }
}
