// Wires the stages together, one way: source → router (metadata + chain) → ring → sender,
// with the local API beside them. Owns start-up order, liveness/health sampling, the graceful
// shutdown of SPEC §8 and the SIGHUP reload.
//
// Start-up: lock the data dir, bind the API (a port in use refuses the start before anything
// is read or sent; probes see /health 200 and /ready 503 while the ring opens and metadata
// syncs), open the ring, start metadata, the sender and the source; ready after the first scan.
import { readFileSync } from "node:fs";
import { lockDataDir } from "./buffer/lock.ts";
import { openRing } from "./buffer/ring.ts";
import type { Ring } from "./buffer/types.ts";
import { createApiApp, parseAddress } from "./api/app.ts";
import { deletedHeldFiles } from "./api/deleted-files.ts";
import { HealthMonitor, type HealthVerdict } from "./api/health.ts";
import { createMetrics, processMetricsText } from "./api/metrics.ts";
import { RingTap } from "./api/ring-tap.ts";
import { SenderTotals } from "./api/sender-totals.ts";
import type { Config } from "./config/schema.ts";
import { maskSecrets } from "./config/load.ts";
import { getLogLevel, type Logger, logCounters, log as rootLog, recentProblems, registerSecret, setLogLevel } from "./log.ts";
import { PodCache } from "./metadata/cache.ts";
import { createMetadataProvider } from "./metadata/index.ts";
import { PodSnapshot } from "./metadata/pod-snapshot.ts";
import type { MetadataProvider } from "./metadata/types.ts";
import { Router } from "./pipeline/router.ts";
import { type Served, serve } from "./platform/serve.ts";
import { createSender, type Sender, type SenderStats } from "./sink/sender.ts";
import { displayUrl, ingestUrl } from "./sink/wire.ts";
import { Source } from "./source/source.ts";
import { COMMIT, VERSION } from "./version.ts";

export interface Collector {
  readonly ring: Ring;
  readonly source: Source;
  readonly router: Router;
  /** The live sender (a SIGHUP with new messenger settings replaces it). */
  readonly sender: Sender;
  readonly provider: MetadataProvider;
  /** The port the local API is bound to. */
  readonly apiPort: number;
  status(): Record<string, unknown>;
  health(): HealthVerdict;
  /** Sender stats summed over every sender of this process. */
  senderStats(): SenderStats;
  /** The terms of SPEC §1's accounting for this process's lifetime. */
  accounting(): Accounting;
  /** Applies what can change safely from a re-read config; says what needs a restart. */
  reload(next: Config): Promise<ReloadResult>;
  /** Graceful stop (SPEC §8); resolves once everything is synced and closed. */
  stop(): Promise<{ delivered: boolean }>;
}

/**
 * Per process lifetime: read = filtered + skipped + inRing + (sent + deadLettered − replayed).
 * sent and deadLettered count every acknowledgement this process made, including records an
 * earlier run left in the ring (replayed), which this process never read.
 */
export interface Accounting {
  read: number;
  filtered: number;
  skipped: number;
  inRing: number;
  sent: number;
  deadLettered: number;
  replayed: number;
  /** read − (filtered + skipped + inRing + sent + deadLettered − replayed); 0 when balanced. */
  imbalance: number;
}

export interface ReloadResult {
  applied: string[];
  needsRestart: string[];
}

export interface StartOptions {
  /** A loop making no progress while not blocked by backpressure this long fails liveness (default 60 s). */
  stuckAfterMs?: number;
  /** Health sampling period (default 2 s). */
  monitorIntervalMs?: number;
  /** Per-file series in /metrics (default: env PIPEKIT_COLLECTOR_PER_FILE_METRICS=1). */
  perFileMetrics?: boolean;
}

export class AddressInUseError extends Error {
  override readonly name = "AddressInUseError";
}

const DEFAULT_STUCK_AFTER_MS = 60_000;

export async function startCollector(config: Config, log: Logger = rootLog, options: StartOptions = {}): Promise<Collector> {
  let current = config;
  registerSecrets(config);
  const lock = lockDataDir(config.dataDir);
  const cleanups: Array<() => Promise<void> | void> = [() => lock.release()];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.error("cleanup step failed", { error: err as Error });
      }
    }
    cleanups.length = 0;
  };

  // ---- the API first: the port is checked before anything is read, probes answer while starting ----
  let collector: Collector | null = null;
  let stopping = false;
  let metricsText: () => Promise<string> = processMetricsText;
  let metricsContentType = "text/plain; version=0.0.4; charset=utf-8";
  const startedAt = Date.now();
  const app = createApiApp({
    live: () => (collector ? collector.health().live : !stopping),
    ready: () => collector !== null && collector.source.ready && !stopping,
    status: () => (collector ? collector.status() : { phase: stopping ? "stopping" : "starting", version: VERSION, ready: false }),
    metrics: () => metricsText(),
    metricsContentType: () => metricsContentType,
  });
  const { hostname, port } = parseAddress(config.api.address);
  let served: Served;
  try {
    served = serve({ hostname, port, fetch: (req) => app.fetch(req) });
  } catch (err) {
    await cleanup();
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "EADDRINUSE" || /in use/i.test(e.message) ? "the port is already in use (another collector, or another program)" : e.message;
    throw new AddressInUseError(`cannot listen on api.address ${config.api.address}: ${why}`);
  }
  cleanups.push(() => served.stop());

  try {
    const ring = await openRing({
      dir: config.dataDir,
      capacityBytes: config.buffer.maxBytes,
      syncIntervalMs: config.buffer.syncIntervalMs,
      log,
    });
    cleanups.push(() => ring.close());
    const firstOwnSeq = ring.stats().nextSeq;

    const cache = new PodCache({ deletionGraceSeconds: config.metadata.deletionGraceSeconds });
    const podSnapshot = PodSnapshot.open(config, cache, log); // pods of the last run's unread files
    let provider = createMetadataProvider(config, cache, log);
    const router = new Router(config, cache, provider, ring);

    // The source's hand-over to the router, timed: the source pump's heartbeat.
    let emitSince: number | null = null;
    const source = new Source({
      config: config.source,
      dataDir: config.dataDir,
      ownPodUid: config.node.podUid,
      output: {
        decide: (file, now) => router.decide(file, now),
        emit: async (file, lines) => {
          emitSince = Date.now();
          try {
            return await router.emit(file, lines);
          } finally {
            emitSince = null;
          }
        },
        closed: (file) => router.closed(file),
      },
      durableSeq: () => ring.durableSeq(),
      log,
      onCheckpointsSaving: () => podSnapshot.save(source.fileStatus().map((f) => String(f.podUid)), source.ready),
    });

    const metrics = createMetrics({
      router: () => router.counters,
      source: () => ({ counters: source.counters, filesWatched: source.filesWatched, files: () => source.fileStatus() }),
      ring: () => ring.stats(),
      sender: () => senderStats(),
      tap: () => tap.counters,
      eventsInRing: () => eventsInRing(),
      metadata: () => provider.status(),
      healthy: () => health().healthy,
      live: () => health().live,
      deletedHeldBytes: () => heldBytes(),
      logSuppressed: () => logCounters.suppressed,
      perFileMetrics: options.perFileMetrics ?? process.env.PIPEKIT_COLLECTOR_PER_FILE_METRICS === "1",
    });
    metricsText = () => metrics.text();
    metricsContentType = metrics.contentType;

    // The source owns the number (it enforces maxDeletedHeldBytes with it); /proc is the fallback.
    const heldBytes = () => {
      const n = (source.counters as { deletedHeldBytes?: number }).deletedHeldBytes;
      return typeof n === "number" ? n : deletedHeldFiles(current.dataDir).bytes;
    };
    const tap = new RingTap(ring, firstOwnSeq, (s) => metrics.observeEndToEnd(s));
    const totals = new SenderTotals();
    const makeSender = (cfg: Config) =>
      createSender({
        ring: tap,
        config: cfg.messenger,
        dataDir: cfg.dataDir,
        log,
        // "failing for longer than health.sinkFailingSeconds" is judged by the health monitor,
        // whose thresholds a SIGHUP can change.
      });
    let sender = makeSender(config);
    const senderStats = () => totals.of(sender.stats());
    const eventsInRing = () => ring.stats().appendedRecords - tap.counters.ackedOwn;

    const monitor = new HealthMonitor(thresholds(config, options));
    let lastReasons = "";
    function health(): HealthVerdict {
      const r = ring.stats();
      const s = sender.stats();
      const m = provider.status();
      const v = monitor.evaluate({
        now: Date.now(),
        stopping,
        ring: { full: r.full, lastSeq: r.nextSeq - 1, durableSeq: r.durableSeq },
        sourceEmitSince: emitSince,
        sender: {
          unread: r.nextSeq - 1 > tap.highestHandedOut || tap.replayPending,
          atCapacity: s.atOutstandingLimit,
          lastReadAt: tap.lastReadAt,
          failingSince: s.failingSince,
          reasons: s.healthReasons,
        },
        metadata: { provider: m.provider, failing: m.failing, synced: m.synced, lastError: m.lastError },
      });
      // Each change of the reasons is logged once, whoever observed it (the timer or a request);
      // durations inside a reason ("failing for 12.5 s") are not a change.
      const key = v.reasons.map((r) => r.replace(/\d+(\.\d+)? s\b/g, "N s")).join("\n");
      if (key !== lastReasons) {
        if (v.reasons.length) log.warn(lastReasons === "" ? "pipeline unhealthy" : "pipeline unhealthy: reasons changed", { reasons: v.reasons });
        else log.info("pipeline healthy again");
        lastReasons = key;
      }
      return v;
    }
    // Sampled on a timer too, so that "full for N s" and "stuck" episodes are timed between requests.
    // Every 2 s: thresholds are tens of seconds, and an idle collector must wake at most about once
    // a second in total (every request samples as well).
    const tick = setInterval(() => health(), options.monitorIntervalMs ?? 2000);
    tick.unref?.();
    cleanups.push(() => clearInterval(tick));

    function accounting(): Accounting {
      const c = router.counters;
      const read = c.eventsRead + source.counters.linesMalformed;
      const filtered = Object.values(c.eventsFiltered).reduce((a, b) => a + b, 0);
      const skipped = source.counters.linesMalformed;
      const inRing = eventsInRing();
      const st = senderStats();
      const replayed = tap.counters.ackedReplayed;
      const imbalance = read - (filtered + skipped + inRing + st.eventsSent + st.deadLetteredEvents - replayed);
      return { read, filtered, skipped, inRing, sent: st.eventsSent, deadLettered: st.deadLetteredEvents, replayed, imbalance };
    }

    let lastReload: (ReloadResult & { at: string }) | null = null;

    function status(): Record<string, unknown> {
      const v = health();
      const s = senderStats();
      const held = deletedHeldFiles(current.dataDir); // as lsof +L1 would show them
      const a = accounting();
      return maskSecrets({
        version: VERSION,
        commit: COMMIT,
        phase: stopping ? "stopping" : "running",
        startedAt: new Date(startedAt).toISOString(),
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        ready: source.ready && !stopping,
        live: v.live,
        pipeline: { healthy: v.healthy, reasons: v.reasons },
        loops: v.loops,
        events: {
          ...router.counters, // eventsRead, eventsFiltered, eventsAppended, bytesAppended (the router's own)
          read: a.read,
          filtered: router.counters.eventsFiltered,
          filteredTotal: a.filtered,
          skipped: { malformed: source.counters.linesMalformed },
          inRing: a.inRing,
          appended: router.counters.eventsAppended,
          sent: a.sent,
          deadLettered: a.deadLettered,
          replayed: a.replayed,
          accountingImbalance: a.imbalance,
        },
        files: source.fileStatus(),
        source: { ...source.counters, filesWatched: source.filesWatched, deletedHeldBytes: heldBytes(), deletedOpenFiles: held.files, deletedOpenBytes: held.bytes, filesHeldForMetadata: router.held },
        ring: { ...ring.stats(), fullSince: v.ringFullSince === null ? null : new Date(v.ringFullSince).toISOString() },
        sink: {
          url: current.messenger.baseUri ? displayUrl(ingestUrl(current.messenger.baseUri)) : null,
          inFlight: s.inFlight,
          waiting: s.waiting,
          queued: s.queued,
          outstanding: s.outstanding,
          lastSuccessAt: s.lastSuccessAt === null ? null : new Date(s.lastSuccessAt).toISOString(),
          secondsSinceLastSuccess: Math.round(s.secondsSinceLastSuccess * 10) / 10,
          failingSince: s.failingSince === null ? null : new Date(s.failingSince).toISOString(),
          lastError: s.lastError,
          requestsByStatus: s.requestsByStatus,
          retries: s.retries,
          eventsSent: s.eventsSent,
          batchesSent: s.batchesSent,
          bisections: s.bisections,
          deadLetteredEvents: s.deadLetteredEvents,
          deadLetterBytes: s.deadLetterBytes,
          bytesSentWire: s.bytesSentWire,
          reasons: s.healthReasons,
        },
        metadata: provider.status(),
        recentErrors: recentProblems(),
        log: { level: getLogLevel(), suppressedRepeats: logCounters.suppressed },
        lastReload,
        config: current, // masked below, like everything else here
      });
    }

    async function stop(): Promise<{ delivered: boolean }> {
      if (stopping) return { delivered: false };
      stopping = true;
      const deadline = Date.now() + current.shutdownTimeoutMs;
      log.info("shutting down: reading stopped, delivering what is buffered", { deadlineMs: current.shutdownTimeoutMs });
      // The source may be waiting on a full ring: the sender drains it meanwhile.
      let sourceStopped = false;
      const sourceStop = source.stop().then(() => {
        sourceStopped = true;
      });
      const drained = sender.drain(deadline);
      const timer = new AbortController();
      await Promise.race([sourceStop, sleepUntil(deadline, timer.signal)]);
      timer.abort();
      const { complete } = await drained;
      if (!sourceStopped) {
        // Still waiting for room in the ring at the deadline: closing the ring releases it; the
        // lines it held were never appended, so its checkpoint stays before them.
        log.warn("shutdown deadline: the source was still waiting for room in the ring");
        await ring.sync();
        await ring.close();
        const grace = new AbortController();
        await Promise.race([sourceStop, sleepUntil(Date.now() + 1000, grace.signal)]);
        grace.abort();
        // A hand-over that ignores the closed ring is a stuck loop: its checkpoints are still safe.
        if (!sourceStopped) log.error("the source loop did not stop; closing it anyway");
      }
      await ring.sync();
      source.close(); // checkpoints of what is durable
      await sender.stop();
      const left = ring.stats().records;
      await cleanup();
      log.info("stopped", { delivered: complete, ringRecords: left });
      return { delivered: complete };
    }

    async function reload(next: Config): Promise<ReloadResult> {
      const applied: string[] = [];
      const needsRestart: string[] = [];
      const prev = current;
      const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
      if (next.log.level !== prev.log.level) {
        setLogLevel(next.log.level);
        applied.push(`log.level: ${prev.log.level} → ${next.log.level}`);
      }
      if (!same(next.health, prev.health)) {
        monitor.thresholds = thresholds(next, options);
        applied.push("health");
      }
      if (next.shutdownTimeoutMs !== prev.shutdownTimeoutMs) applied.push("shutdownTimeoutMs");
      // Metadata: a static provider's pods file can be swapped (the new one replaces the cache's
      // contents); anything else changes how the cluster is reached.
      const { podsFile: nextPods, ...nextMeta } = next.metadata;
      const { podsFile: prevPods, ...prevMeta } = prev.metadata;
      if (!same(nextMeta, prevMeta)) needsRestart.push("metadata");
      else if (nextPods !== prevPods && next.metadata.provider === "static") {
        try {
          const replacement = createMetadataProvider(next, cache, log);
          await provider.stop();
          provider = replacement;
          await provider.start();
          (collector as { provider: MetadataProvider }).provider = provider;
          applied.push(`metadata.podsFile: ${nextPods}`);
        } catch (err) {
          log.error("cannot switch to the new pods file; keeping the old one", { error: err as Error });
          next = { ...next, metadata: prev.metadata };
        }
      }
      // Messenger: the key file is re-read always; other settings take a new sender, which gets
      // the records its predecessor held unacknowledged first (at least once: a request in flight
      // during the swap may be sent again).
      registerSecrets(next);
      if (next.dataDir !== prev.dataDir) needsRestart.push("dataDir");
      if (same(next.messenger, prev.messenger)) {
        sender.reloadApiKey();
        if (next.messenger.apiKeyFile) applied.push("messenger.apiKeyFile re-read");
      } else if (!next.messenger.baseUri) {
        needsRestart.push("messenger (baseUri missing in the new config; keeping the old settings)");
        next = { ...next, messenger: prev.messenger };
      } else {
        let replacement: Sender | null = null;
        try {
          replacement = makeSender({ ...next, dataDir: prev.dataDir });
        } catch (err) {
          log.error("new messenger settings refused; keeping the old ones", { error: err as Error });
          next = { ...next, messenger: prev.messenger };
        }
        if (replacement) {
          const old = sender;
          await old.stop(); // in-flight requests are aborted; their records go to the successor
          totals.retire(old.stats());
          tap.rewind();
          sender = replacement;
          (collector as { sender: Sender }).sender = sender;
          sender.start();
          const m = next.messenger;
          const changed = (Object.keys(m) as Array<keyof Config["messenger"]>).filter((k) => !same(m[k], prev.messenger[k]));
          applied.push(`messenger: ${changed.join(", ")}`);
        }
      }
      for (const key of ["source", "buffer", "api", "node", "pipeline"] as const) {
        if (!same(next[key], prev[key])) needsRestart.push(key);
      }
      current = { ...next, dataDir: prev.dataDir, source: prev.source, buffer: prev.buffer, api: prev.api, node: prev.node, pipeline: prev.pipeline };
      if (needsRestart.some((k) => k.startsWith("metadata"))) current = { ...current, metadata: prev.metadata };
      const result = { applied, needsRestart };
      lastReload = { at: new Date().toISOString(), ...result };
      return result;
    }

    await provider.start();
    cleanups.push(() => provider.stop());
    cache.onChange(() => source.notify());
    ring.onDurable((seq) => source.onDurable(seq));
    // Metadata tombstones are swept by the provider itself (provider-base), once their files are
    // drained and the grace passed.
    cleanups.push(() => sender.stop());

    collector = {
      ring,
      source,
      router,
      sender,
      provider,
      apiPort: served.port,
      status,
      health,
      senderStats,
      accounting,
      reload,
      stop,
    };
    const replayRecords = ring.stats().records;
    sender.start();
    source.start();
    log.info("collector started", {
      version: VERSION,
      root: config.source.root,
      dataDir: config.dataDir,
      provider: config.metadata.provider,
      api: `${hostname}:${served.port}`,
      ringBytes: config.buffer.maxBytes,
      replayRecords,
    });
    return collector;
  } catch (err) {
    stopping = true;
    await cleanup();
    throw err;
  }
}

/** The key, from the config or its file, is redacted from every log line (the sender also redacts its own). */
function registerSecrets(config: Config): void {
  registerSecret(config.messenger.apiKey);
  if (config.messenger.apiKeyFile) {
    try {
      registerSecret(readFileSync(config.messenger.apiKeyFile, "utf8").trim());
    } catch {
      // The sender reports an unreadable key file as a health reason.
    }
  }
}

function thresholds(config: Config, options: StartOptions) {
  return {
    sinkFailingSeconds: config.health.sinkFailingSeconds,
    bufferFullSeconds: config.health.bufferFullSeconds,
    stuckAfterMs: options.stuckAfterMs ?? DEFAULT_STUCK_AFTER_MS,
    syncIntervalMs: config.buffer.syncIntervalMs,
    flushIntervalMs: config.messenger.flushIntervalMs,
  };
}

function sleepUntil(t: number, signal: AbortSignal): Promise<void> {
  return new Promise((r) => {
    const timer = setTimeout(r, Math.max(0, t - Date.now()));
    signal.addEventListener("abort", () => (clearTimeout(timer), r()), { once: true });
  });
}
