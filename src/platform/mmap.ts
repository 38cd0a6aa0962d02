// The one place that calls Bun.mmap and Bun.gc. A MAP_SHARED mapping of a file: writes go to the page
// cache and reach the disk on fdatasync of any descriptor of the file (Linux), or on writeback.
// Unmapping happens when the array is garbage collected: callers drop every reference.

export function mapFile(path: string, offset = 0, size?: number): Uint8Array<ArrayBuffer> {
  const opts: { shared: boolean; offset?: number; size?: number } = { shared: true };
  if (offset) opts.offset = offset;
  if (size !== undefined) opts.size = size;
  return Bun.mmap(path, opts);
}

import { readFileSync } from "node:fs";

/** Asks the runtime for a collection so dropped mappings and garbage are released now. */
export function collectGarbage(full: boolean): void {
  Bun.gc(full);
}

/**
 * The process's resident anonymous memory (RssAnon) in bytes, or -1 where /proc is unavailable.
 * Read a few times per GiB of ring traffic, to decide whether a full collection is worth it.
 */
export function residentAnonymousBytes(): number {
  try {
    const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "latin1"));
    return m ? Number(m[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}
