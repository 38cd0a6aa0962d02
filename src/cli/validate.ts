import { loadConfig, maskSecrets, resolveConfigPath } from "../config/load.ts";
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
