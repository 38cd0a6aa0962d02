// Rotated siblings of a live log file (kubelet: `N.log` → `N.log.<YYYYMMDD-hhmmss>` → `….gz`),
// used only after downtime, to finish a checkpointed file that was rotated while we were away.
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";

export interface RotatedSibling {
  /** The `YYYYMMDD-hhmmss` stamp: sorts in rotation order. */
  stamp: string;
  /** The plain rotated file, and its compressed form; both exist while the kubelet compresses. */
  plain: string | null;
  gz: string | null;
}

const ROTATED = /^(\d+\.log)\.(\d{8}-\d{6})(\.gz)?$/;

/** The rotated siblings of `livePath` (`…/0.log`), oldest first, one entry per stamp. */
export function rotatedSiblings(livePath: string): RotatedSibling[] {
  const dir = dirname(livePath);
  const base = basename(livePath);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const byStamp = new Map<string, RotatedSibling>();
  for (const name of names) {
    const m = ROTATED.exec(name);
    if (!m || m[1] !== base) continue;
    const stamp = m[2] as string;
    const e = byStamp.get(stamp) ?? { stamp, plain: null, gz: null };
    if (m[3]) e.gz = join(dir, name);
    else e.plain = join(dir, name);
    byStamp.set(stamp, e);
  }
  return [...byStamp.values()].sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : 0));
}

/** The decompressed content of a rotated `.gz`, or null when it is unreadable or damaged. */
export function readGzip(path: string): Uint8Array | null {
  try {
    return new Uint8Array(gunzipSync(readFileSync(path)));
  } catch {
    return null;
  }
}
