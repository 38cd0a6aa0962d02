// `validate`: loads the config as `run` would and prints it with every secret masked (the API key,
// credentials in URLs), or the error that would refuse the start.
import { loadConfig, resolveConfigPath } from "../config/load.ts";
import { maskSecrets } from "../config/secrets.ts";
import { reportStartError } from "./errors.ts";

export function validateCommand(configPath: string | undefined): number {
  try {
    const path = resolveConfigPath(configPath, process.env);
    const config = loadConfig(path);
    process.stdout.write(JSON.stringify(maskSecrets(config), null, 2) + "\n");
    process.stderr.write(`config ${path ?? "(defaults)"} is valid\n`);
    return 0;
  } catch (err) {
    return reportStartError(err);
  }
}
