// The process's own memory figures from /proc/self/status (Linux), for /metrics and the ring's
// garbage-collection pacing.
import { readFileSync } from "node:fs";

/** A "<field>: N kB" line of /proc/self/status in bytes, or -1 where it cannot be read. */
export function procStatusBytes(field: "VmRSS" | "VmSize" | "RssAnon"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "latin1"));
    return m ? Number(m[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}
