// Wires the stages together, one way: source → router (metadata + chain) → ring → sender,
// with the local API beside them. Owns start-up order and the graceful shutdown of SPEC §8.
import { lockDataDir } from "./buffer/lock.ts";
import { openRing } from "./buffer/ring.ts";
import type { Ring } from "./buffer/types.ts";
import { createApiApp, parseAddress } from "./api/app.ts";
import { createMetrics } from "./api/metrics.ts";
import type { Config } from "./config/schema.ts";
import { maskSecrets } from "./config/load.ts";
import { type Logger, log as rootLog } from "./log.ts";
import { PodCache } from "./metadata/cache.ts";
import { createMetadataProvider } from "./metadata/index.ts";
import type { MetadataProvider } from "./metadata/types.ts";
import { Router } from "./pipeline/router.ts";
import { type Served, serve } from "./platform/serve.ts";
import { createSender, type Sender } from "./sink/sender.ts";
import { Source } from "./source/source.ts";

export interface Collector {
  readonly ring: Ring;
  readonly source: Source;
  readonly router: Router;
  readonly sender: Sender;
  readonly provider: MetadataProvider;
  /** The port the local API is bound to. */
  readonly apiPort: number;
  status(): Record<string, unknown>;
  /** Graceful stop (SPEC §8); resolves once everything is synced and closed. */
  stop(): Promise<{ delivered: boolean }>;
}

export async function startCollector(config: Config, log: Logger = rootLog): Promise<Collector> {
  const lock = lockDataDir(config.dataDir);
  const cleanups: Array<() => Promise<void> | void> = [() => lock.release()];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    const ring = await openRing({
      dir: config.dataDir,
      capacityBytes: config.buffer.maxBytes,
      syncIntervalMs: config.buffer.syncIntervalMs,
      log,
    });
    cleanups.push(() => ring.close());

    const cache = new PodCache({ deletionGraceSeconds: config.metadata.deletionGraceSeconds });
    const provider = createMetadataProvider(config, cache, log);
    const router = new Router(config, cache, provider, ring);
    const source = new Source({
      config: config.source,
      dataDir: config.dataDir,
      ownPodUid: config.node.podUid,
      output: {
        decide: (file, now) => router.decide(file, now),
        emit: (file, lines) => router.emit(file, lines),
        closed: (file) => router.closed(file),
      },
      durableSeq: () => ring.durableSeq(),
      log,
    });
    const sender = createSender({
      ring,
      config: config.messenger,
      dataDir: config.dataDir,
      log,
      failingAlertMs: config.health.sinkFailingSeconds * 1000,
    });

    let stopping = false;
    const startedAt = Date.now();
    const collector: Collector = {
      ring,
      source,
      router,
      sender,
      provider,
      apiPort: 0,
      status: () =>
        maskSecrets({
          startedAt: new Date(startedAt).toISOString(),
          ready: source.ready,
          stopping,
          sink: sender.stats(),
          ring: ring.stats(),
          metadata: provider.status(),
          events: router.counters,
          source: source.counters,
          files: source.fileStatus(),
        }),
      stop: async () => {
        if (stopping) return { delivered: false };
        stopping = true;
        log.info("shutting down: reading stopped, delivering what is buffered", {
          deadlineMs: config.shutdownTimeoutMs,
        });
        await source.stop();
        const { complete } = await sender.drain(config.shutdownTimeoutMs);
        await ring.sync();
        source.close();
        await sender.stop();
        await cleanup();
        log.info("stopped", { delivered: complete, ringRecords: ring.stats().records });
        return { delivered: complete };
      },
    };

    await provider.start();
    cleanups.push(() => provider.stop());
    cache.onChange(() => source.notify());
    ring.onDurable((seq) => source.onDurable(seq));
    // Metadata tombstones are dropped once their files are drained and the grace passed.
    const sweep = setInterval(() => cache.sweep(Date.now()), 10_000);
    cleanups.push(() => clearInterval(sweep));

    const metrics = createMetrics(collector);
    const { hostname, port } = parseAddress(config.api.address);
    const app = createApiApp({
      live: () => !stopping,
      ready: () => source.ready && !stopping,
      status: () => collector.status(),
      metrics: () => metrics.text(),
      metricsContentType: metrics.contentType,
    });
    let served: Served;
    try {
      served = serve({ hostname, port, fetch: (req) => app.fetch(req) });
    } catch (err) {
      throw new AddressInUseError(`cannot listen on api.address ${config.api.address}: ${(err as Error).message}`);
    }
    cleanups.push(() => served.stop());
    (collector as { apiPort: number }).apiPort = served.port;

    sender.start();
    source.start();
    log.info("collector started", {
      root: config.source.root,
      dataDir: config.dataDir,
      provider: config.metadata.provider,
      api: `${hostname}:${served.port}`,
      ringBytes: config.buffer.maxBytes,
    });
    return collector;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export class AddressInUseError extends Error {
  override readonly name = "AddressInUseError";
}
