// The data path: the stages a line goes through — source → router (metadata + chain) → ring → ring
// tap → sender — built over the edges of the process (the Platform: clock, log files, data dir,
// network), started in order and stopped gracefully. The collector (collector.ts) adds what an
// operator sees around it: the data dir lock, the local API, health, metrics and reload. The
// deterministic simulation builds the same data path over simulated edges.
import { GcPacing } from "./buffer/gc-pacer.ts";
import { PrefixTable } from "./buffer/prefix-table.ts";
import { openRing } from "./buffer/ring.ts";
import type { Ring, RingStorage } from "./buffer/types.ts";
import type { Config } from "./config/schema.ts";
import type { Cleanups } from "./lifecycle/cleanups.ts";
import { EmitHeartbeat } from "./lifecycle/health-watch.ts";
import { Shutdown } from "./lifecycle/shutdown.ts";
import { Swappable } from "./lifecycle/swappable.ts";
import type { Logger } from "./log.ts";
import { PodCache } from "./metadata/cache.ts";
import { createMetadataProvider } from "./metadata/index.ts";
import { PodSnapshot } from "./metadata/pod-snapshot.ts";
import type { MetadataProvider } from "./metadata/types.ts";
import { Router } from "./pipeline/router.ts";
import { dataDirFiles } from "./platform/atomic-file.ts";
import { systemClock } from "./platform/clock.ts";
import { diskRingStorage } from "./platform/ring-storage.ts";
import { nodeSourceFs } from "./platform/source-fs.ts";
import { GzipWorker } from "./platform/gzip-worker.ts";
import type { Clock, DurableFiles, Gzipper } from "./platform/types.ts";
import { RingTap } from "./sink/ring-tap.ts";
import { createSender, type Sender } from "./sink/sender.ts";
import { SenderTotals } from "./sink/sender-totals.ts";
import type { Fetch } from "./sink/types.ts";
import { CheckpointStore } from "./source/checkpoints.ts";
import { Source } from "./source/source.ts";
import type { SourceFs } from "./source/types.ts";

/** The edges of the process the data path runs over. */
export interface Platform {
  clock: Clock;
  /** The node's log files. */
  logs: SourceFs;
  /** The data dir's small files (checkpoints, the pod metadata snapshot, the prefix table). */
  dataFiles: DurableFiles;
  /** The data dir's ring file. */
  ringStorage: RingStorage;
  /** The network to the messenger. */
  fetch: Fetch;
  /** Uniform in [0, 1): retry jitter. */
  random: () => number;
  /** gzip away from the main thread (default: none, gzip in the calling thread). */
  gzipper?: (level: number) => Gzipper;
  /** The metadata provider over `cache` (default: the one metadata.provider names). */
  metadata?: (cache: PodCache) => MetadataProvider;
}

/** The real edges: the system clock, the file system, fetch. */
export function realPlatform(config: Config, over: Partial<Platform> = {}): Platform {
  return {
    clock: systemClock,
    logs: nodeSourceFs,
    dataFiles: dataDirFiles(config.dataDir),
    ringStorage: diskRingStorage(config.dataDir),
    fetch: globalThis.fetch as Fetch,
    random: Math.random,
    gzipper: (level) => new GzipWorker(level),
    ...over,
  };
}

/** The stages on the data path, in the order a line goes through them. */
export interface DataPath {
  ring: Ring;
  /** Each file's constant record prefix, stored once (docs/ring-format.md "Compact records"). */
  prefixes: PrefixTable;
  cache: PodCache;
  provider: Swappable<MetadataProvider>;
  router: Router;
  /** Times the source's hand-over to the router (the source loop's heartbeat). */
  heartbeat: EmitHeartbeat;
  source: Source;
  tap: RingTap;
  totals: SenderTotals;
  sender: Swappable<Sender>;
  makeSender(config: Config): Sender;
  makeProvider(config: Config): MetadataProvider;
  shutdown: Shutdown;
}

/**
 * Opens the ring and builds every stage; nothing reads or sends until startDataPath. `effective`
 * gives the config a reload made current (the shutdown deadline may change).
 */
export async function openDataPath(
  config: Config,
  platform: Platform,
  log: Logger,
  cleanups: Cleanups,
  observeEndToEnd: (seconds: number) => void,
  effective: () => Config = () => config,
): Promise<DataPath> {
  const { clock } = platform;
  const startedAt = clock.now();
  const ring = await openRing({
    dir: config.dataDir,
    capacityBytes: config.buffer.maxBytes,
    syncIntervalMs: config.buffer.syncIntervalMs,
    log,
    traffic: new GcPacing(),
    clock,
    storage: platform.ringStorage,
  });
  cleanups.push(() => ring.close());
  const firstOwnSeq = ring.stats().nextSeq;
  // Before anything is appended or read: which prefixes the ring's records still use.
  const prefixes = new PrefixTable(platform.dataFiles, log, () => ring.stats().durableReadSeq ?? 0, clock);
  prefixes.noteRecords((visit) => ring.forEachUnread(visit));
  cleanups.push(() => prefixes.close());
  const cache = new PodCache({ deletionGraceSeconds: config.metadata.deletionGraceSeconds });
  const podSnapshot = PodSnapshot.open(config, cache, log, clock, platform.dataFiles);
  const makeProvider = (cfg: Config) => platform.metadata?.(cache) ?? createMetadataProvider(cfg, cache, log, { clock });
  const provider = new Swappable(makeProvider(config));
  const router = new Router(config, cache, { notifyUnknownPod: (uid) => provider.get().notifyUnknownPod(uid) }, ring, clock, prefixes);
  const heartbeat = new EmitHeartbeat();
  const source: Source = new Source({
    config: config.source,
    dataDir: config.dataDir,
    ownPodUid: config.node.podUid,
    output: heartbeat.around(router),
    durableSeq: () => ring.durableSeq(),
    log,
    fs: platform.logs,
    clock,
    startedAt,
    checkpoints: new CheckpointStore(platform.dataFiles),
    // The source has not scanned yet during its first checkpoint save: the snapshot then keeps every pod it had.
    onCheckpointsSaving: () => podSnapshot.save(source.fileStatus().map((f) => f.podUid), source.ready),
  });
  const tap = new RingTap(ring, firstOwnSeq, observeEndToEnd, () => clock.now());
  const makeSender = (cfg: Config) =>
    createSender({ ring: tap, config: cfg.messenger, dataDir: cfg.dataDir, log, clock, fetch: platform.fetch, random: platform.random, gzipper: platform.gzipper, prefixes });
  const sender = new Swappable(makeSender(config));
  const shutdown = new Shutdown({ source, ring, sender: () => sender.get(), timeoutMs: () => effective().shutdownTimeoutMs, cleanups, log, clock });
  return { ring, prefixes, cache, provider, router, heartbeat, source, tap, totals: new SenderTotals(), sender, makeSender, makeProvider, shutdown };
}

/** Starts metadata, then delivery and reading; `onMetadataSynced` runs between. */
export async function startDataPath(d: DataPath, cleanups: Cleanups, onMetadataSynced: () => void = () => {}): Promise<void> {
  const { ring, source, provider, sender } = d;
  await provider.get().start();
  cleanups.push(() => provider.get().stop());
  onMetadataSynced();
  d.cache.onChange(() => source.notify());
  // Files that waited for their prefix to be written are read now.
  d.prefixes.onWritten(() => source.notify());
  ring.onDurable((seq) => source.onDurable(seq));
  // Metadata tombstones are swept by the provider itself (provider-base), once their files are
  // drained and the grace passed.
  cleanups.push(() => sender.get().stop());
  sender.get().start();
  source.start();
}
