// Rotated siblings of a live log file (kubelet: `N.log` → `N.log.<YYYYMMDD-hhmmss>` → `….gz`).
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { Logger } from "../log.ts";
import { bytesFingerprint, type Fingerprint, pathFingerprint } from "./fingerprint.ts";
import type { FileCheckpoint, SourceFs } from "./types.ts";

export interface RotatedSibling {
  /** The `YYYYMMDD-hhmmss` stamp: sorts in rotation order. */
  stamp: string;
  /** The plain rotated file, and its compressed form; both exist while the kubelet compresses. */
  plain: string | null;
  gz: string | null;
}

/** `0.log.20261124-190213` and `….gz`: the live name, the stamp, and whether it is compressed. */
export const ROTATED_NAME = /^(\d+\.log)\.(\d{8}-\d{6})(\.gz)?$/;

/** The rotated siblings of `livePath` (`…/0.log`), oldest first, one entry per stamp. */
export function rotatedSiblings(fs: SourceFs, livePath: string): RotatedSibling[] {
  const dir = dirname(livePath);
  const base = basename(livePath);
  let names: string[];
  try {
    names = fs.readdir(dir);
  } catch {
    return [];
  }
  const byStamp = new Map<string, RotatedSibling>();
  for (const name of names) {
    const m = ROTATED_NAME.exec(name);
    if (!m || m[1] !== base) continue;
    const stamp = m[2] as string;
    const e = byStamp.get(stamp) ?? { stamp, plain: null, gz: null };
    if (m[3]) e.gz = join(dir, name);
    else e.plain = join(dir, name);
    byStamp.set(stamp, e);
  }
  return [...byStamp.values()].sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : 0));
}

/**
 * How many rotated files of each live path the last listing of its dir showed (a plain file and its
 * .gz are one). Kubelet's containerLogMaxFiles decides how many, five by default.
 */
export class RotatedListings {
  /** Container dir → live name → stamps of its rotated files. */
  private readonly byDir = new Map<string, Map<string, Set<string>>>();

  /** A new listing of container dir `dir` begins: what the last one showed goes. */
  listing(dir: string): void {
    this.byDir.delete(dir);
  }

  /** The listing of `dir` shows a rotated file of `liveName` stamped `stamp` (ROTATED_NAME). */
  add(dir: string, liveName: string, stamp: string): void {
    let lives = this.byDir.get(dir);
    if (!lives) this.byDir.set(dir, (lives = new Map()));
    let stamps = lives.get(liveName);
    if (!stamps) lives.set(liveName, (stamps = new Set()));
    stamps.add(stamp);
  }

  /** Every dir is listed again now (a full scan): dirs removed meanwhile go. */
  clear(): void {
    this.byDir.clear();
  }

  count(livePath: string): number {
    return this.byDir.get(dirname(livePath))?.get(basename(livePath))?.size ?? 0;
  }
}

/** A rotated `.gz`: its decompressed content and the identity of the file it was read from. */
export interface GzipFile {
  bytes: Uint8Array;
  dev: number;
  ino: number;
}

/**
 * A rotated `.gz`, identity and content read together: the kubelet may delete it right after (it
 * prunes the oldest), and what was read is still delivered under the identity it had. Null when it
 * is gone, unreadable or damaged; `damaged` hears why for all but gone.
 */
export function readGzip(fs: SourceFs, path: string, damaged?: (why: string) => void): GzipFile | null {
  let st;
  let raw;
  try {
    st = fs.stat(path);
    raw = fs.readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") damaged?.(`cannot read it: ${code ?? (err as Error).message}`);
    return null;
  }
  try {
    return { bytes: new Uint8Array(gunzipSync(raw)), dev: st.dev, ino: st.ino };
  } catch (err) {
    damaged?.(`not a whole gzip file: ${(err as Error).message}`);
    return null;
  }
}

/**
 * Reads rotated `.gz` files for the source. One that cannot be read or decompressed is left unread,
 * warned about once, and looked at again at later scans (the kubelet renames a `.gz` into place
 * whole, but another writer may still be writing it); its lines are not delivered until it reads.
 */
export class GzipReader {
  readonly #warned = new Set<string>();

  constructor(
    private readonly fs: SourceFs,
    private readonly log: Logger,
  ) {}

  read(path: string): GzipFile | null {
    let damaged = false;
    const gz = readGzip(this.fs, path, (why) => {
      damaged = true;
      if (this.#warned.has(path)) return;
      this.#warned.add(path);
      this.log.warn("a rotated .gz cannot be read; its lines are not delivered while it stays so", { path, error: why });
    });
    if (!damaged) this.#warned.delete(path); // read, or gone
    return gz;
  }
}

/**
 * A rotated file modified this long before the last run's final checkpoint save may still hold lines
 * it never read (the file was not open yet): read it at start if that run did not know it.
 */
export const LAST_RUN_SLACK_MS = 10_000;

/**
 * A rotated file found at start and left unread (history), as a done checkpoint — when its age would
 * not tell the next start so: modified within LAST_RUN_SLACK_MS of now (at a first start, every
 * rotated file present is history, however young). Unknown to the next start, such a file would be
 * taken for one rotated before this run could read it: read whole, and every newer file of its
 * container again with it. Null when its age tells, or it cannot be read.
 */
export function historyCheckpoint(fs: SourceFs, now: number, livePath: string, path: string, gz: boolean): FileCheckpoint | null {
  let st;
  try {
    st = fs.stat(path);
  } catch {
    return null;
  }
  if (st.mtimeMs < now - LAST_RUN_SLACK_MS) return null;
  const mem = gz ? (readGzip(fs, path)?.bytes ?? null) : null;
  const fp: Fingerprint | null = gz ? mem && bytesFingerprint(mem) : pathFingerprint(fs, path, st.size);
  if (!fp || fp.fpLen === 0) return null; // no head: it would match any file
  return { dev: st.dev, ino: st.ino, ...fp, path: livePath, offset: st.size, size: st.size };
}
