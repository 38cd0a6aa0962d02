// The collector's own logs: JSON lines on stderr (SPEC §8 `log.level`).
// Never pass secrets in fields; callers pass counts, paths and statuses only.

export type LogLevel = "debug" | "info" | "warn" | "error";
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
let write: Write = (line) => process.stderr.write(line);

export function setLogLevel(level: LogLevel): void {
  minRank = RANK[level];
}

/** Redirects output (tests capture lines this way). */
export function setLogWriter(w: Write): void {
  write = w;
}

function serialiseError(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

function emit(level: LogLevel, base: LogFields, msg: string, fields?: LogFields): void {
  if (RANK[level] < minRank) return;
  const rec: LogFields = { time: new Date().toISOString(), level, msg, ...base };
  if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = serialiseError(v);
  write(JSON.stringify(rec) + "\n");
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
