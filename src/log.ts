// The collector's own logs: JSON lines on stderr (README "Configuration", `log.level`):
//   {"time":"…","level":"warn","msg":"…", …fields}
// Callers pass counts, paths and statuses, never secrets; as a second line of defence every
// registered secret is replaced by "[redacted]" wherever it appears in a line, and fields whose
// name says "secret" (apiKey, token, password, authorization) are masked whatever their value
// (config/secrets.ts decides both).
// Repeated warnings and errors are rate-limited per message: a flaky messenger or a broken file
// must not fill the node's disk with the same line (the count of suppressed lines is reported).

import { isSecretField, redactSecrets } from "./config/secrets.ts";

export { registerSecret } from "./config/secrets.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry these fields (e.g. the stage name). */
  child(fields: LogFields): Logger;
}

type Write = (line: string) => void;

let minRank = RANK.info;
let level: LogLevel = "info";
let write: Write = (line) => process.stderr.write(line);

export function setLogLevel(l: LogLevel): void {
  level = l;
  minRank = RANK[l];
}

export function getLogLevel(): LogLevel {
  return level;
}

/** Redirects output (tests capture lines this way). */
export function setLogWriter(w: Write): void {
  write = w;
}

// ---- rate limiting ----------------------------------------------------------------------

/** Per message: at most `burst` warn/error lines per `windowMs`; the rest are counted. */
export interface RateLimit {
  burst: number;
  windowMs: number;
}
let rateLimit: RateLimit = { burst: 5, windowMs: 60_000 };
interface Window {
  start: number;
  emitted: number;
  suppressed: number;
}
const windows = new Map<string, Window>();
const MAX_WINDOWS = 1000;
let now: () => number = Date.now;

export function setLogRateLimit(limit: RateLimit, clock: () => number = Date.now): void {
  rateLimit = limit;
  now = clock;
  windows.clear();
}

/** Lines suppressed by rate limiting since start (also a metric). */
export const logCounters = { suppressed: 0, byLevel: { debug: 0, info: 0, warn: 0, error: 0 } as Record<LogLevel, number> };

interface Admission {
  /** Lines of this message suppressed since the last one written. */
  suppressed: number;
  /** Set on the last line a window lets through: repeats are dropped until then (epoch ms). */
  quietUntil: number | null;
}

/** Returns null to drop the line. */
function admit(lvl: LogLevel, msg: string): Admission | null {
  if (lvl !== "warn" && lvl !== "error") return { suppressed: 0, quietUntil: null };
  const key = lvl + "\0" + msg;
  const t = now();
  let w = windows.get(key);
  if (!w || t - w.start >= rateLimit.windowMs) {
    const suppressed = w?.suppressed ?? 0;
    if (!w && windows.size >= MAX_WINDOWS) windows.clear(); // bounded, whatever the messages
    w = { start: t, emitted: 0, suppressed: 0 };
    windows.set(key, w);
    w.emitted++;
    return { suppressed, quietUntil: w.emitted === rateLimit.burst ? w.start + rateLimit.windowMs : null };
  }
  if (w.emitted < rateLimit.burst) {
    w.emitted++;
    return { suppressed: 0, quietUntil: w.emitted === rateLimit.burst ? w.start + rateLimit.windowMs : null };
  }
  w.suppressed++;
  logCounters.suppressed++;
  return null;
}

// ---- lines ------------------------------------------------------------------------------

function serialiseValue(key: string, value: unknown): unknown {
  if (isSecretField(key) && value !== null && value !== undefined) return "***";
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

function emit(lvl: LogLevel, base: LogFields, msg: string, fields?: LogFields): void {
  if (RANK[lvl] < minRank) return;
  const admission = admit(lvl, msg);
  if (admission === null) return;
  logCounters.byLevel[lvl]++;
  const rec: LogFields = { time: new Date().toISOString(), level: lvl, msg };
  for (const [k, v] of Object.entries(base)) rec[k] = serialiseValue(k, v);
  if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = serialiseValue(k, v);
  if (admission.suppressed > 0) rec.suppressedRepeats = admission.suppressed;
  if (admission.quietUntil !== null) rec.repeatsSuppressedUntil = new Date(admission.quietUntil).toISOString();
  let line: string;
  try {
    line = JSON.stringify(rec);
  } catch {
    line = JSON.stringify({ time: rec.time, level: lvl, msg, fieldsError: "fields could not be serialised" });
  }
  line = redactSecrets(line);
  if (RANK[lvl] >= RANK.warn) {
    recent.push(line);
    if (recent.length > RECENT_MAX) recent.shift();
  }
  write(line + "\n");
}

// The last warnings and errors, for /status ("recent errors"); already redacted.
const RECENT_MAX = 20;
const recent: string[] = [];

export function recentProblems(): LogFields[] {
  return recent.map((l) => JSON.parse(l) as LogFields);
}

export function createLogger(base: LogFields = {}): Logger {
  return {
    debug: (m, f) => emit("debug", base, m, f),
    info: (m, f) => emit("info", base, m, f),
    warn: (m, f) => emit("warn", base, m, f),
    error: (m, f) => emit("error", base, m, f),
    child: (more) => createLogger({ ...base, ...more }),
  };
}

export const log = createLogger();
