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
    stopWithDeadline(collector, config.shutdownTimeoutMs).then(finish);
  };
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  let reloading: Promise<void> = Promise.resolve();
  const onHup = () => {
    if (stopping || !collector) return;
    const running = collector;
    reloading = reloading.then(async () => {
      const applied = await reload(running, path);
      if (applied) config = { ...config, shutdownTimeoutMs: applied.shutdownTimeoutMs };
    });
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
}

/**
 * Stops the collector; resolves with the exit code (0: stopped cleanly). Whatever hangs, the
 * process ends: a stuck shutdown must not outlive the pod's grace period.
 */
function stopWithDeadline(collector: Collector, shutdownTimeoutMs: number): Promise<number> {
  return new Promise<number>((resolve) => {
    setTimeout(() => {
      log.error("shutdown did not finish in time; exiting", { afterMs: shutdownTimeoutMs + SHUTDOWN_GRACE_MS });
      resolve(1);
    }, shutdownTimeoutMs + SHUTDOWN_GRACE_MS).unref();
    collector.stop().then(
      () => resolve(0),
      (err) => {
        log.error("shutdown failed", { error: err });
        resolve(1);
      },
    );
  });
}

/** SIGHUP: re-reads the config and applies it; returns the config applied, or null when refused or failed. */
async function reload(collector: Collector, path: string | undefined): Promise<Config | null> {
  log.info("SIGHUP: re-reading the config and the API key file", { config: path ?? "(defaults)" });
  let next: Config;
  try {
    next = loadRunnableConfig(path);
  } catch (err) {
    log.error("config reload refused; the running config stays in effect", { error: (err as Error).message });
    return null;
  }
  try {
    const { applied, needsRestart } = await collector.reload(next);
    log.info("config reloaded", { applied, needsRestart });
    log.debug("effective config after the reload", { config: maskSecrets(next) });
    if (needsRestart.length) log.warn("config changes that need a restart to take effect", { keys: needsRestart });
    return next;
  } catch (err) {
    log.error("config reload failed", { error: err as Error });
    return null;
  }
}
