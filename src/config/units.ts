// Parsing of human-written sizes ("500MB", "4MiB") and durations ("5s", 1500).
// Decimal units are powers of 10, binary units powers of 2 (README "Configuration").

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a byte size; returns an error message instead of throwing. */
export function parseSize(input: unknown): number | string {
  if (typeof input === "number") {
    return Number.isSafeInteger(input) && input >= 0 ? input : "must be a whole, non-negative number of bytes";
  }
  if (typeof input !== "string") return "must be a size such as 500MB, 4MiB or a number of bytes";
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  if (!m) return `"${input}" is not a size (examples: 500MB, 4MiB, 1024)`;
  const unit = (m[2] ?? "").toLowerCase() || "b";
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) return `"${input}" has an unknown size unit "${m[2]}" (use B, KB, MB, GB, KiB, MiB, GiB)`;
  const bytes = Math.round(Number(m[1]) * factor);
  return Number.isSafeInteger(bytes) ? bytes : `"${input}" is too large`;
}

/** Parses a duration into milliseconds; returns an error message instead of throwing. */
export function parseDuration(input: unknown): number | string {
  if (typeof input === "number") {
    return Number.isFinite(input) && input >= 0 ? Math.round(input) : "must be a non-negative number of milliseconds";
  }
  if (typeof input !== "string") return "must be a duration such as 5s, 500ms or a number of milliseconds";
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  if (!m) return `"${input}" is not a duration (examples: 500ms, 5s, 2m, 1500)`;
  const unit = (m[2] ?? "").toLowerCase() || "ms";
  const factor = DURATION_UNITS[unit];
  if (factor === undefined) return `"${input}" has an unknown duration unit "${m[2]}" (use ms, s, m, h)`;
  return Math.round(Number(m[1]) * factor);
}
