// `validate`: every check `run` makes before it starts (src/cli/preflight.ts), then the effective
// config printed with every secret masked (the API key, credentials in URLs) — or the error that
// would refuse the start, word for word as `run` prints it.
import type { Config } from "../config/schema.ts";
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { maskSecrets } from "../config/secrets.ts";
import { reportStartError } from "./errors.ts";
import { preflight } from "./preflight.ts";

/** The config at `path` (none: the defaults), with the environment applied, that `run` would start with; throws what would refuse it. */
export function loadRunnableConfig(path: string | undefined): Config {
  const config = loadConfig(path);
  preflight(config, path ? `config ${path}` : "config");
  return config;
}

export function validateCommand(configPath: string | undefined): number {
  try {
    const path = resolveConfigPath(configPath, process.env);
    const config = loadRunnableConfig(path);
    process.stdout.write(JSON.stringify(maskSecrets(config), null, 2) + "\n");
    process.stderr.write(`config ${path ?? "(defaults)"} is valid\n`);
    return 0;
  } catch (err) {
    return reportStartError(err);
  }
}
