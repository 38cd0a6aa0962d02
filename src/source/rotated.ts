// Rotated siblings of a live log file (kubelet: `N.log` → `N.log.<YYYYMMDD-hhmmss>` → `….gz`),
// used only after downtime, to finish a checkpointed file that was rotated while we were away.
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";

export interface RotatedSibling {
  path: string;
  /** The `YYYYMMDD-hhmmss` stamp: sorts in rotation order. */
  stamp: string;
  gz: boolean;
}

const ROTATED = /^(\d+\.log)\.(\d{8}-\d{6})(\.gz)?$/;

/** The rotated siblings of `livePath` (`…/0.log`), oldest first; compressed and plain both listed. */
export function rotatedSiblings(livePath: string): RotatedSibling[] {
  const dir = dirname(livePath);
  const base = basename(livePath);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: RotatedSibling[] = [];
  for (const name of names) {
    const m = ROTATED.exec(name);
    if (!m || m[1] !== base) continue;
    out.push({ path: join(dir, name), stamp: m[2] as string, gz: m[3] !== undefined });
  }
  // A plain and a .gz of the same stamp exist together only while gzip runs: prefer the plain one.
  out.sort((a, b) => (a.stamp === b.stamp ? Number(a.gz) - Number(b.gz) : a.stamp < b.stamp ? -1 : 1));
  return out.filter((s, i) => i === 0 || out[i - 1]?.stamp !== s.stamp);
}

/** The decompressed content of a rotated `.gz`, or null when it is unreadable or damaged. */
export function readGzip(path: string): Uint8Array | null {
  try {
    return new Uint8Array(gunzipSync(readFileSync(path)));
  } catch {
    return null;
  }
}
