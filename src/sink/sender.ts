// The messenger sink (docs/pipeline.md, README "Architecture"): reads serialised records from the ring, splices them into
// batches, POSTs them with up to `concurrency` requests in flight, and acknowledges each batch in
// the ring once the messenger answered 2xx (or its refused record was dead-lettered). The ring
// advances over the contiguous acknowledged prefix, so out-of-order answers lose nothing.
//
// The parts: credentials.ts (the API key), assembler.ts (ring → batches), delivery.ts (one batch
// until acknowledged, by the retry policy of policy.ts), client.ts (one request), stats.ts
// (statistics and health reasons). This file composes them and runs the loop: start, drain, stop.
//
// Memory: each batch is spliced into a buffer from a pool of concurrency × OUTSTANDING_PER_SLOT
// (the bound on batches outstanding), returned when the batch is finished. Fresh bodies and ky's
// Request copy of each made anonymous memory grow with delivery volume (bench/sink-memory.ts).
import type { PrefixLookup } from "../buffer/prefix-table.ts";
import type { Ring } from "../buffer/types.ts";
import type { Config } from "../config/schema.ts";
import { log as rootLog, type Logger } from "../log.ts";
import { systemClock } from "../platform/clock.ts";
import type { Clock, Gzipper } from "../platform/types.ts";
import { BatchAssembler, type SenderPhase } from "./assembler.ts";
import { type BatchBuffer, BatchPool, bodySize, payloadBudget } from "./batch.ts";
import { MessengerClient, tlsOptions } from "./client.ts";
import { BodyCompressor } from "./compress.ts";
import { Credentials } from "./credentials.ts";
import { Delivery } from "./delivery.ts";
import { Semaphore, sleep } from "./semaphore.ts";
import { RecordExpander } from "./record-expander.ts";
import { HealthReasons, SenderStatistics } from "./stats.ts";
import type { Fetch, Sender, SenderStats } from "./types.ts";
import { displayUrl, ingestUrl } from "./wire.ts";

export type { Fetch, Sender, SenderStats, StatusClass } from "./types.ts";

export interface SenderDeps {
  ring: Pick<Ring, "readRanges" | "waitForData" | "ack">;
  config: Config["messenger"];
  dataDir: string;
  log?: Logger;
  /** Time: now, backoff waits, flush and request timers (default: the system clock). */
  clock?: Clock;
  /** The network (default: globalThis.fetch). */
  fetch?: Fetch;
  /** Uniform in [0, 1) for the backoff's jitter (default: Math.random). */
  random?: () => number;
  /** Gzips bodies off the main thread when messenger.compression is gzip (default: none, in the calling thread). */
  gzipper?: (level: number) => Gzipper;
  /** Optional: report "messenger failing for N s" in healthReasons beyond this (health.sinkFailingSeconds). */
  failingAlertMs?: number;
  /** The prefixes of the ring's compact records (the prefix table); without it a compact record is dead-lettered. */
  prefixes?: PrefixLookup;
}

/** Bound on batches taken from the ring and not yet acknowledged, per request slot. */
export const OUTSTANDING_PER_SLOT = 4;

/**
 * The sender for one messenger configuration. Throws for a configuration it cannot send with: no
 * base URI, an unreadable caFile, or an API key that cannot go into an HTTP header (a ConfigError).
 */
export function createSender(deps: SenderDeps): Sender {
  return new MessengerSender(deps);
}

class MessengerSender implements Sender {
  readonly #cfg: Config["messenger"];
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #url: string;
  readonly #credentials: Credentials;
  readonly #stats: SenderStatistics;
  readonly #delivery: Delivery;
  readonly #assembler: BatchAssembler;
  readonly #pool: BatchPool;
  readonly #compressor: BodyCompressor;
  readonly #outstandingLimit: number;
  readonly #outstandingSlots: Semaphore;
  /** Aborts requests, sleeps and waits. */
  readonly #shutdown = new AbortController();
  readonly #phase: { -readonly [K in keyof SenderPhase]: boolean } = { stopping: false, draining: false, stopped: false };
  readonly #tasks = new Set<Promise<void>>();
  #started = false;
  #pumpDone: Promise<void> = Promise.resolve();

  constructor(private readonly deps: SenderDeps) {
    const cfg = (this.#cfg = deps.config);
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.log ?? rootLog).child({ stage: "sink" });
    if (!cfg.baseUri) throw new Error("messenger.baseUri is not set (config messenger.baseUri or PIPEKIT_MESSENGER_BASE_URI)");
    const endpoint = ingestUrl(cfg.baseUri);
    this.#url = displayUrl(endpoint);
    const tls = tlsOptions(cfg);
    const reasons = new HealthReasons(this.#log, this.#url);
    this.#credentials = new Credentials(cfg, this.#log, reasons);
    this.#stats = new SenderStatistics(this.#clock, this.#log, reasons, this.#url);
    const shutdown = this.#shutdown.signal;
    const client = new MessengerClient({
      endpoint,
      timeoutMs: cfg.timeoutMs,
      tls,
      credentials: this.#credentials,
      stats: this.#stats,
      clock: this.#clock,
      fetch: deps.fetch ?? fetch,
      shutdown,
    });
    const slots = new Semaphore(cfg.concurrency);
    this.#compressor = new BodyCompressor(this.#log, deps.gzipper);
    this.#delivery = new Delivery({
      cfg,
      ring: deps.ring,
      client,
      compressor: this.#compressor,
      credentials: this.#credentials,
      stats: this.#stats,
      slots,
      clock: this.#clock,
      random: deps.random ?? Math.random,
      shutdown,
      dataDir: deps.dataDir,
      log: this.#log,
    });
    this.#outstandingLimit = cfg.concurrency * OUTSTANDING_PER_SLOT;
    this.#outstandingSlots = new Semaphore(this.#outstandingLimit);
    const maxEvents = cfg.batchMaxEvents;
    const budget = payloadBudget(cfg.batchMaxEvents, cfg.batchMaxBytes);
    // One reusable body per outstanding batch: the normal path allocates no body memory. Shared
    // memory when gzipping: the compressor's worker reads bodies and writes results in place.
    this.#pool = new BatchPool(this.#outstandingLimit, bodySize(maxEvents, budget), maxEvents, cfg.compression === "gzip" && deps.gzipper !== undefined);
    const flushIntervalMs = cfg.flushIntervalMs;
    const records = new RecordExpander(deps.ring, deps.prefixes, (u) => this.#delivery.deadLetterUnresolved(u));
    this.#assembler = new BatchAssembler({ ring: records, pool: this.#pool, maxEvents, budget, flushIntervalMs, clock: this.#clock, phase: this.#phase });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    const cfg = this.#cfg;
    if (cfg.insecureSkipTlsVerify) {
      this.#log.warn("messenger.insecureSkipTlsVerify is on: the messenger's TLS certificate is NOT verified (for tests only)", { url: this.#url });
    }
    this.#log.info("messenger sink started", {
      url: this.#url,
      concurrency: cfg.concurrency,
      batchMaxEvents: cfg.batchMaxEvents,
      batchMaxBytes: cfg.batchMaxBytes,
      compression: cfg.compression,
    });
    this.#pumpDone = this.#pump().catch((err: unknown) => this.#log.error("sink loop failed", { error: err as Error }));
  }

  async drain(deadlineMs: number): Promise<{ complete: boolean }> {
    const clock = this.#clock;
    const deadline = deadlineMs >= 1e12 ? deadlineMs : clock.now() + deadlineMs;
    if (!this.#started) return { complete: true };
    if (this.#phase.stopped) {
      await this.#settle();
      return { complete: false };
    }
    this.#phase.draining = true;
    this.#beginStopping();
    const all = this.#settle().then(() => true);
    const timeUp = sleep(clock, Math.max(0, deadline - clock.now())).then(() => false);
    const complete = await Promise.race([all, timeUp]);
    if (!complete) {
      this.#phase.stopped = true;
      this.#shutdown.abort();
      await this.#settle();
      this.#log.warn("drain deadline reached; undelivered records stay in the ring for the next start", { outstanding: this.#stats.outstanding });
    }
    this.#phase.stopped = true;
    this.#compressor.close();
    return { complete };
  }

  async stop(): Promise<void> {
    this.#phase.stopped = true;
    this.#beginStopping();
    this.#shutdown.abort();
    await this.#settle();
    this.#compressor.close();
  }

  stats(): SenderStats {
    return this.#stats.snapshot({
      outstandingLimit: this.#outstandingLimit,
      pool: this.#pool.stats(),
      deadLetters: this.#delivery.deadLetterStats(),
      failingAlertMs: this.deps.failingAlertMs,
    });
  }

  reloadApiKey(): void {
    this.#credentials.reload();
  }

  /** Takes batches from the ring while fewer than the limit are outstanding; delivers each as a task. */
  async #pump(): Promise<void> {
    while (!this.#phase.stopped) {
      if (!(await this.#outstandingSlots.acquire(this.#shutdown.signal))) return;
      let batch: BatchBuffer | null;
      try {
        batch = await this.#assembler.next();
      } catch (err) {
        this.#outstandingSlots.release();
        this.#log.error("reading the ring failed; retrying", { error: err as Error });
        if (!(await sleep(this.#clock, this.#cfg.retryInitialBackoffMs, this.#shutdown.signal))) return;
        continue;
      }
      if (!batch) {
        this.#outstandingSlots.release();
        return;
      }
      this.#startDelivery(batch);
    }
  }

  #startDelivery(b: BatchBuffer): void {
    this.#stats.outstanding++;
    const task: Promise<void> = this.#delivery
      .deliver(b, 0, b.count)
      .then(() => undefined)
      .catch((err: unknown) => {
        // A bug, not a messenger answer: the records stay unacknowledged in the ring (sent after restart).
        this.#stats.noteInternalError(`internal error delivering a batch: ${(err as Error).message}`);
        this.#log.error("internal error delivering a batch; its records stay in the ring", { error: err as Error, firstSeq: b.firstSeq });
      })
      .finally(() => {
        // Every request for this batch has settled (deliver awaits each one): its memory is free.
        this.#pool.give(b);
        this.#stats.outstanding--;
        this.#outstandingSlots.release();
        this.#tasks.delete(task);
      });
    this.#tasks.add(task);
  }

  #beginStopping(): void {
    this.#phase.stopping = true;
    this.#assembler.wakeWaiters();
  }

  async #settle(): Promise<void> {
    await this.#pumpDone;
    while (this.#tasks.size) await Promise.allSettled([...this.#tasks]);
  }
}
