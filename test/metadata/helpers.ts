import type { Logger } from "../../src/log.ts";

/** A logger that keeps lines in memory (tests assert on them; nothing goes to stderr). */
export function memoryLogger(lines: Array<Record<string, unknown>> = []): Logger & { lines: Array<Record<string, unknown>> } {
  const make = (base: Record<string, unknown>): Logger => ({
    debug: (msg, f) => lines.push({ level: "debug", msg, ...base, ...f }),
    info: (msg, f) => lines.push({ level: "info", msg, ...base, ...f }),
    warn: (msg, f) => lines.push({ level: "warn", msg, ...base, ...f }),
    error: (msg, f) => lines.push({ level: "error", msg, ...base, ...f }),
    child: (more) => make({ ...base, ...more }),
  });
  return Object.assign(make({}), { lines });
}

export async function until(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}
