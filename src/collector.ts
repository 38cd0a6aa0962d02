// Wires the stages together, one way: source → router (metadata + chain) → ring → sender, with
// the local API beside them (README "Architecture"). It composes and nothing more: /status and
// the accounting are built by src/api/ from the stages' own counters; health sampling, the
// graceful stop and the SIGHUP reload live in src/lifecycle/.
//
// Start-up (after the CLI's preflight, src/cli/preflight.ts): bind the API (a port in use refuses
// the start before the data dir is touched; probes see /health 200 and /ready 503 while the ring
// opens and metadata syncs), lock the data dir, open the ring, start metadata, the sender and the
// source; ready after the first scan.
import { lockDataDir } from "./buffer/lock.ts";
import type { Ring } from "./buffer/types.ts";
import { type Accounting, accountingOf } from "./api/accounting.ts";
import type { HealthVerdict } from "./api/health.ts";
import { createMetrics } from "./api/metrics.ts";
import { LocalApi } from "./api/server.ts";
import { buildStatus } from "./api/status.ts";
import type { StagesView } from "./api/types.ts";
import type { Config } from "./config/schema.ts";
import { registerConfigSecrets } from "./config/secrets.ts";
import { type Logger, logCounters, log as rootLog } from "./log.ts";
import { Cleanups } from "./lifecycle/cleanups.ts";
import { HealthWatch, healthThresholds } from "./lifecycle/health-watch.ts";
import { type ReloadResult, Reloader } from "./lifecycle/reload.ts";
import type { Shutdown } from "./lifecycle/shutdown.ts";
import { Swappable } from "./lifecycle/swappable.ts";
import type { MetadataProvider } from "./metadata/types.ts";
import type { Router } from "./pipeline/router.ts";
import { type DataPath, openDataPath, type Platform, realPlatform, startDataPath } from "./data-path.ts";
import type { Sender, SenderStats } from "./sink/sender.ts";
import type { Source } from "./source/source.ts";
import { VERSION } from "./version.ts";

export interface Collector {
  readonly ring: Ring;
  readonly source: Source;
  readonly router: Router;
  /** The live sender (a SIGHUP with new messenger settings replaces it). */
  readonly sender: Sender;
  /** The live metadata provider (a SIGHUP with a new static pods file replaces it). */
  readonly provider: MetadataProvider;
  /** The port the local API is bound to. */
  readonly apiPort: number;
  status(): Record<string, unknown>;
  health(): HealthVerdict;
  /** Sender stats summed over every sender of this process. */
  senderStats(): SenderStats;
  /** The accounting identity's terms for this process's lifetime (src/api/accounting.ts). */
  accounting(): Accounting;
  /** Applies what can change safely from a re-read config; says what needs a restart. */
  reload(next: Config): Promise<ReloadResult>;
  /** Graceful stop; resolves once everything is synced and closed. */
  stop(): Promise<{ delivered: boolean }>;
}

export interface StartOptions {
  /** A loop making no progress while not blocked by backpressure this long fails liveness (default 60 s). */
  stuckAfterMs?: number;
  /** Health sampling period (default 2 s). */
  monitorIntervalMs?: number;
  /** Per-file series in /metrics (default: env PIPEKIT_COLLECTOR_PER_FILE_METRICS=1). */
  perFileMetrics?: boolean;
  /** Edges to use instead of the real ones (tests inject faults through them). */
  platform?: Partial<Platform>;
}

export async function startCollector(config: Config, log: Logger = rootLog, options: StartOptions = {}): Promise<Collector> {
  registerConfigSecrets(config);
  const cleanups = new Cleanups(log);
  // The port first: a port in use refuses the start before the data dir is created or touched.
  const api = new LocalApi(config.api.address);
  cleanups.push(() => api.stop());
  try {
    const lock = lockDataDir(config.dataDir);
    cleanups.push(() => lock.release());
  } catch (err) {
    api.abandon();
    await cleanups.run();
    throw err;
  }
  try {
    return await compose(config, log, options, api, cleanups);
  } catch (err) {
    api.abandon();
    await cleanups.run();
    throw err;
  }
}

/** What /status and /metrics read: each stage's own counters, the accounting built from them. */
function stagesView(d: DataPath, health: HealthWatch): StagesView {
  const senderStats = () => d.totals.of(d.sender.get().stats());
  return {
    router: () => d.router.counters,
    source: () => d.source,
    ring: () => d.ring.stats(),
    prefixTable: () => ({ ...d.prefixes.stats(), ...d.prefixes.health }),
    sender: senderStats,
    metadata: () => d.provider.get().status(),
    health: () => health.verdict(),
    accounting: () => {
      const sent = senderStats();
      return accountingOf({
        router: d.router.counters,
        linesMalformed: d.source.counters.linesMalformed,
        ringAppended: d.ring.stats().appendedRecords,
        ackedOwn: d.tap.counters.ackedOwn,
        ackedReplayed: d.tap.counters.ackedReplayed,
        eventsSent: sent.eventsSent,
        deadLetteredEvents: sent.deadLetteredEvents,
      });
    },
  };
}

function watchHealth(d: DataPath, shutdown: Shutdown, config: Config, options: StartOptions, log: Logger): HealthWatch {
  const inputs = {
    stopping: () => shutdown.stopping,
    ring: () => d.ring.stats(),
    emitSince: () => d.heartbeat.since,
    tap: d.tap,
    sender: () => d.sender.get().stats(),
    metadata: () => d.provider.get().status(),
    checkpoints: () => d.source.checkpointHealth,
    prefixTable: () => d.prefixes.health,
  };
  const health = new HealthWatch(inputs, healthThresholds(config, options.stuckAfterMs), log);
  health.start(options.monitorIntervalMs);
  return health;
}

function reloaderOf(d: DataPath, effective: Swappable<Config>, health: HealthWatch, options: StartOptions, log: Logger): Reloader {
  return new Reloader({
    config: effective,
    provider: d.provider,
    makeProvider: d.makeProvider,
    sender: d.sender,
    makeSender: d.makeSender,
    tap: d.tap,
    totals: d.totals,
    health,
    thresholds: (cfg) => healthThresholds(cfg, options.stuckAfterMs),
    registerSecrets: registerConfigSecrets,
    log,
  });
}

async function compose(config: Config, log: Logger, options: StartOptions, api: LocalApi, cleanups: Cleanups): Promise<Collector> {
  const metadataSync = `first metadata sync (metadata.provider ${config.metadata.provider})`;
  api.waitingFor(["ring open", metadataSync, "first scan"]);
  const effective = new Swappable(config);
  const platform = realPlatform(config, options.platform);
  const d = await openDataPath(config, platform, log, cleanups, (s) => metrics.observeEndToEnd(s), () => effective.get());
  const { ring, source, router, provider, sender, shutdown } = d;
  const health = watchHealth(d, shutdown, config, options, log);
  cleanups.push(() => health.stop());
  const stages = stagesView(d, health);
  const metrics = createMetrics({
    ...stages,
    logSuppressed: () => logCounters.suppressed,
    perFileMetrics: options.perFileMetrics ?? process.env.PIPEKIT_COLLECTOR_PER_FILE_METRICS === "1",
  });
  api.serveMetrics(metrics);
  const reloader = reloaderOf(d, effective, health, options, log);
  const startedAt = Date.now();
  const notReady = (): string[] => (shutdown.stopping ? ["shutting down"] : source.ready ? [] : ["first scan"]);
  const ready = () => notReady().length === 0;
  const status = () =>
    buildStatus({ ...stages, startedAt, stopping: () => shutdown.stopping, ready, config: () => effective.get(), lastReload: () => reloader.last });

  api.waitingFor([metadataSync, "first scan"]);
  const replayRecords = ring.stats().records;
  await startDataPath(d, cleanups);

  const collector: Collector = {
    ring,
    source,
    router,
    get sender() {
      return sender.get();
    },
    get provider() {
      return provider.get();
    },
    apiPort: api.port,
    status,
    health: stages.health,
    senderStats: stages.sender,
    accounting: stages.accounting,
    reload: (next) => reloader.reload(next),
    stop: () => shutdown.run(),
  };
  api.attach({ notLive: () => collector.health().liveReasons, notReady, status });
  log.info("collector started", {
    version: VERSION,
    root: config.source.root,
    dataDir: config.dataDir,
    provider: config.metadata.provider,
    api: api.address,
    ringBytes: config.buffer.maxBytes,
    replayRecords,
  });
  return collector;
}
