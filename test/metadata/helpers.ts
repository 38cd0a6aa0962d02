import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../src/log.ts";
import type { K8sPod } from "../support/podlist.ts";

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

/** The kubelet's log file of a pod's container under root (its directories created). */
export function podLogFile(root: string, pod: K8sPod, container: string): string {
  const d = join(root, `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}`, container);
  mkdirSync(d, { recursive: true });
  return join(d, "0.log");
}

/** n CRI lines `<tag> line <i>` for i in [from, from + n), one nanosecond apart. */
export function criLines(tag: string, from: number, n: number): string {
  let s = "";
  for (let i = from; i < from + n; i++) s += `2026-11-25T09:00:00.${String(i).padStart(9, "0")}Z stdout F ${tag} line ${i}\n`;
  return s;
}
