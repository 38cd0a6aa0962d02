// `run`: the collector until SIGTERM/SIGINT (graceful, README "Command line"). SIGHUP re-reads
// the config file and the API key file, applies what can change safely and logs what needs a
// restart.
import { type Collector, startCollector } from "../collector.ts";
import type { Config } from "../config/schema.ts";
import { maskSecrets, resolveConfigPath } from "../config/load.ts";
import { log, registerSecret, setLogLevel } from "../log.ts";
import { reportStartError } from "./errors.ts";
import { loadRunnableConfig } from "./validate.ts";

/** Beyond shutdownTimeoutMs, this much more for syncing and closing before the process gives up. */
const SHUTDOWN_GRACE_MS = 10_000;

export async function runCommand(configPath: string | undefined): Promise<number> {
  let config: Config;
  const path = resolveConfigPath(configPath, process.env);
  try {
    // Refused here, before the data dir is created or touched (the same checks as `validate`).
    config = loadRunnableConfig(path);
    registerSecret(config.messenger.apiKey);
    setLogLevel(config.log.level);
  } catch (err) {
    return reportStartError(err);
  }
  // Handlers first: a signal while starting (opening a large ring, waiting for metadata) stops
  // the collector as soon as it is up, instead of killing it half-started.
  let collector: Collector | null = null;
  let stopRequested: string | null = null;
  let stopping = false;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => (finish = r));
  const stop = (signal: string) => {
    if (stopping || stopRequested) {
      log.warn("already shutting down", { signal, deadlineMs: config.shutdownTimeoutMs });
      return;
    }
    if (!collector) {
      stopRequested = signal;
      log.info("signal received while starting; stopping once started", { signal });
      return;
    }
    stopping = true;
    log.info("signal received", { signal });
    // Whatever hangs, the process ends: a stuck shutdown must not outlive the pod's grace period.
    setTimeout(() => {
      log.error("shutdown did not finish in time; exiting", { afterMs: config.shutdownTimeoutMs + SHUTDOWN_GRACE_MS });
      finish(1);
    }, config.shutdownTimeoutMs + SHUTDOWN_GRACE_MS).unref();
    collector.stop().then(
      () => finish(0),
      (err) => {
        log.error("shutdown failed", { error: err });
        finish(1);
      },
    );
  };
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  let reloading: Promise<void> = Promise.resolve();
  const onHup = () => {
    if (stopping || !collector) return;
    reloading = reloading.then(() => reload(collector as Collector));
  };
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  process.on("SIGHUP", onHup);

  try {
    collector = await startCollector(config, log);
  } catch (err) {
    return reportStartError(err);
  }
  if (stopRequested) {
    const signal = stopRequested;
    stopRequested = null;
    stop(signal);
  }
  return finished;

  async function reload(c: Collector): Promise<void> {
    log.info("SIGHUP: re-reading the config and the API key file", { config: path ?? "(defaults)" });
    let next: Config;
    try {
      next = loadRunnableConfig(path);
    } catch (err) {
      log.error("config reload refused; the running config stays in effect", { error: (err as Error).message });
      return;
    }
    try {
      const { applied, needsRestart } = await c.reload(next);
      config = { ...config, shutdownTimeoutMs: next.shutdownTimeoutMs };
      log.info("config reloaded", { applied, needsRestart });
      log.debug("effective config after the reload", { config: maskSecrets(next) });
      if (needsRestart.length) log.warn("config changes that need a restart to take effect", { keys: needsRestart });
    } catch (err) {
      log.error("config reload failed", { error: err as Error });
    }
  }
}
