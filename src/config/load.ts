// Loading the configuration: file (YAML or JSON) → environment overrides → zod.
// Every failure becomes a ConfigError naming the key path, so the CLI can exit 2.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { type Config, ConfigSchema } from "./schema.ts";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Record<string, string | undefined>;

/** Environment variables that override the file (SPEC §8): secrets and node identity. */
const ENV_OVERRIDES: ReadonlyArray<readonly [string, readonly [string, string]]> = [
  ["PIPEKIT_API_KEY", ["messenger", "apiKey"]],
  ["PIPEKIT_MESSENGER_BASE_URI", ["messenger", "baseUri"]],
  ["NODE_NAME", ["node", "name"]],
  ["NODE_IP", ["node", "ip"]],
  ["POD_UID", ["node", "podUid"]],
];

export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (text.trim() === "") return {};
  try {
    // YAML 1.2 is a superset of JSON, so one parser serves both.
    return parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new ConfigError(`config file ${path} is neither valid YAML nor JSON: ${(err as Error).message}`);
  }
}

export function applyEnv(raw: unknown, env: Env): Record<string, unknown> {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError("config: the top level must be a mapping of keys (got " + (Array.isArray(raw) ? "a list" : typeof raw) + ")");
  }
  const out: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  for (const [name, [section, key]] of ENV_OVERRIDES) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    const current = out[section];
    const sectionObj = current && typeof current === "object" && !Array.isArray(current) ? { ...(current as object) } : {};
    (sectionObj as Record<string, unknown>)[key] = value;
    out[section] = sectionObj;
  }
  return out;
}

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length ? issue.path.map(String).join(".") : "(top level)";
      let message = issue.message;
      if (issue.code === "unrecognized_keys") {
        message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
      }
      return `  ${path}: ${message}`;
    })
    .join("\n");
}

/** Validates an already-parsed config object (after env overrides). */
export function parseConfig(raw: unknown, source = "config"): Config {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`invalid ${source}:\n${formatIssues(result.error)}`);
  return result.data;
}

/** The config path from --config, else PIPEKIT_COLLECTOR_CONFIG, else none (all defaults). */
export function resolveConfigPath(flag: string | undefined, env: Env): string | undefined {
  return flag ?? (env.PIPEKIT_COLLECTOR_CONFIG || undefined);
}

export function loadConfig(path: string | undefined, env: Env = process.env): Config {
  const raw = path ? readConfigFile(path) : {};
  if (path && raw !== null && raw !== undefined && (typeof raw !== "object" || Array.isArray(raw))) {
    throw new ConfigError(`config ${path}: the top level must be a mapping of keys (got ${Array.isArray(raw) ? "a list" : typeof raw})`);
  }
  return parseConfig(applyEnv(raw, env), path ? `config ${path}` : "config");
}

/** Checks what `run` needs beyond the schema: somewhere to send and a key to send with. */
export function requireRunnable(config: Config): void {
  const problems: string[] = [];
  if (!config.messenger.baseUri) problems.push("  messenger.baseUri: required (or set PIPEKIT_MESSENGER_BASE_URI)");
  if (!config.messenger.apiKey && !config.messenger.apiKeyFile) {
    problems.push("  messenger.apiKey: required (set PIPEKIT_API_KEY, messenger.apiKey or messenger.apiKeyFile)");
  }
  if (config.metadata.provider === "static" && !config.metadata.podsFile) {
    problems.push("  metadata.podsFile: required when metadata.provider is static");
  }
  if (problems.length) throw new ConfigError(`invalid config:\n${problems.join("\n")}`);
}

const SECRET_KEYS = new Set(["apiKey"]);

/** A deep copy with every secret replaced, for `validate` and /status. */
export function maskSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map(maskSecrets) as T;
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEYS.has(k) && v !== null && v !== undefined ? "***" : maskSecrets(v);
    }
    return out as T;
  }
  return value;
}
