// What is secret, and how it is kept out of every output: log lines, /status, `validate` and error
// messages. Two kinds of secret:
//   - fields whose name says so (apiKey, token, password, authorization, ...): masked as "***" in
//     the config and status that `validate` and /status print, and in log fields;
//   - values: the API key (from the config, PIPEKIT_API_KEY or the key file) and the password of a
//     URL (`https://user:password@host`). Registered here once known, they are replaced by
//     "[redacted]" wherever they appear in a log line or a stored error; URLs printed by `validate`
//     and /status show `***` for their user and password.
// Pure: no I/O (the key file is read by the sink's credentials, which register what they read).
import type { Config } from "./schema.ts";

const SECRET_FIELD = /^(api[-_]?key|x-pipekit-api-key|token|password|passwd|secret|authorization)$/i;

/** Whether a field of this name holds a secret whatever its value. */
export function isSecretField(name: string): boolean {
  return SECRET_FIELD.test(name);
}

// ---- secret values ---------------------------------------------------------------------------

const values = new Set<string>();
/** Shorter values are not registered: replacing them everywhere would mangle ordinary text. */
const MIN_SECRET_LENGTH = 4;

/** Registers a value that must never appear in a log line or a stored error (API keys, URL passwords). */
export function registerSecret(value: string | null | undefined): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  values.add(value);
  values.add(JSON.stringify(value).slice(1, -1)); // as it appears inside a JSON string
}

/** The text with every registered secret value replaced by "[redacted]". */
export function redactSecrets(text: string): string {
  for (const s of values) if (text.includes(s)) text = text.split(s).join("[redacted]");
  return text;
}

/** The secrets a config carries by value: the API key and the passwords of its URLs. */
export function registerConfigSecrets(config: Config): void {
  registerSecret(config.messenger.apiKey);
  for (const url of [config.messenger.baseUri, config.metadata.apiserverUrl, config.metadata.kubeletUrl]) registerSecret(urlPassword(url));
}

/** The password of a URL's user-info (decoded), or null. */
export function urlPassword(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : null;
  } catch {
    return null;
  }
}

// ---- masking what is printed -------------------------------------------------------------------

const URL_WITH_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#@]*)@/i;

/** A URL with its user and password shown as `***` (`https://***:***@host/`); other text unchanged. */
export function maskUrlCredentials(text: string): string {
  const m = URL_WITH_USERINFO.exec(text);
  if (!m) return text;
  const masked = m[2]!.includes(":") ? "***:***" : "***";
  return m[1] + masked + "@" + text.slice(m[0].length);
}

/** A deep copy for `validate` and /status: secret fields as "***", credentials in URLs as `***`. */
export function maskSecrets<T>(value: T): T {
  if (typeof value === "string") return maskUrlCredentials(value) as T;
  if (Array.isArray(value)) return value.map(maskSecrets) as T;
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretField(k) && v !== null && v !== undefined ? "***" : maskSecrets(v);
    }
    return out as T;
  }
  return value;
}

// ---- what an API key may contain -----------------------------------------------------------------

/**
 * Why this key cannot be sent in an HTTP header, or null when it can: visible ASCII and spaces
 * only (no line break, control character or non-ASCII character). The reason never quotes the key.
 */
export function apiKeyProblem(key: string): string | null {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) continue;
    const what = c === 0x0a || c === 0x0d ? "a line break" : c < 0x20 || c === 0x7f ? "a control character" : "a non-ASCII character";
    return `contains ${what} (character ${i + 1}), which cannot be sent in an HTTP header`;
  }
  return null;
}
