// Loading the configuration: file (YAML or JSON) → environment overrides → zod.
// Every failure becomes a ConfigError naming the key path, so the CLI can exit 2.
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument, type YAMLError } from "yaml";
import type { z } from "zod";
import { type Config, ConfigSchema } from "./schema.ts";
import { apiKeyProblem } from "./secrets.ts";

export { maskSecrets } from "./secrets.ts";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Record<string, string | undefined>;

/** Environment variables that override the file (README "Configuration"): secrets and node identity. */
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
  // YAML 1.2 is a superset of JSON, so one parser serves both. Its errors quote the lines around
  // the fault, which may hold the API key: only the position and the kind of fault are reported.
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first) throw new ConfigError(`config file ${path} is neither valid YAML nor JSON: ${describeYamlError(first, lines)}`);
  try {
    return doc.toJS();
  } catch (err) {
    throw new ConfigError(`config file ${path} cannot be read as YAML: ${(err as Error).name}`);
  }
}

/** Kinds of YAML fault in words (the parser's own messages may quote the file). */
const YAML_FAULTS: Record<string, string> = {
  DUPLICATE_KEY: "a key is given twice",
  MISSING_CHAR: "a closing bracket, brace or quote is missing",
  UNEXPECTED_TOKEN: "unexpected text (a missing comma or colon?)",
  BAD_INDENT: "bad indentation",
  TAB_AS_INDENT: "a tab used for indentation",
  MULTILINE_IMPLICIT_KEY: "a key that does not fit YAML's layout (indentation, or a missing colon or comma?)",
  BLOCK_AS_IMPLICIT_KEY: "a key that does not fit YAML's layout (indentation, or a missing colon or comma?)",
  BLOCK_IN_FLOW: "an indented block inside {…} or […]",
  MULTIPLE_DOCS: "more than one YAML document (---)",
  BAD_DQ_ESCAPE: "a bad escape sequence in a double-quoted string",
  KEY_OVER_1024_CHARS: "a key longer than 1024 characters",
};

/** "line L, column C: what is wrong", never the text of the file. */
export function describeYamlError(err: YAMLError, lines: LineCounter): string {
  const at = lines.linePos(err.pos[0]);
  return `line ${at.line}, column ${at.col}: ${YAML_FAULTS[err.code] ?? `syntax error (${err.code})`}`;
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
  const keyProblem = result.data.messenger.apiKey === null ? null : apiKeyProblem(result.data.messenger.apiKey);
  if (keyProblem) throw new ConfigError(`invalid ${source}:\n  messenger.apiKey (or PIPEKIT_API_KEY): the key ${keyProblem}`);
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
