// `run`: the collector until SIGTERM/SIGINT (graceful) — SIGHUP re-reads the API key file.
import { startCollector } from "../collector.ts";
import { loadConfig, requireRunnable, resolveConfigPath } from "../config/load.ts";
import { log, setLogLevel } from "../log.ts";
import { reportStartError } from "./errors.ts";

export async function runCommand(configPath: string | undefined): Promise<number> {
  let collector;
  try {
    const config = loadConfig(resolveConfigPath(configPath, process.env));
    requireRunnable(config);
    setLogLevel(config.log.level);
    collector = await startCollector(config, log);
  } catch (err) {
    return reportStartError(err);
  }
  const c = collector;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info("signal received", { signal });
      c.stop().then(
        () => resolve(0),
        (err) => {
          log.error("shutdown failed", { error: err });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      log.info("SIGHUP: re-reading the API key file; other settings need a restart");
      c.sender.reloadApiKey();
    });
  });
}
