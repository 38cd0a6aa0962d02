// Catch-up after downtime: a checkpointed file that is no longer at its path was rotated while we were
// away. Find it among its rotated siblings (plain by inode and head, or compressed by the head of its
// content), read its remainder, then every newer rotated sibling whole, before the live file.
// Runs before the first scan, and again after it for checkpoints the scan did not claim: the kubelet
// may rotate or compress while we start.
import type { SourceParts } from "./context.ts";
import type { FileSet } from "./file-set.ts";
import { checkpointKey } from "./checkpoints.ts";
import { bytesHeadMatches, pathHeadMatches } from "./fingerprint.ts";
import type { Opener } from "./opener.ts";
import { containerKey, type PodLogPath } from "./paths.ts";
import { type GzipFile, type RotatedSibling, rotatedSiblings } from "./rotated.ts";
import type { TailedFile } from "./tailed-file.ts";
import type { FileCheckpoint } from "./types.ts";

/** The container instances whose rotated files are read at start (by the catch-up, or found missed by the first scan). */
export class RecoveredContainers {
  /** Container key → whether one of its rotated files is read from its first byte. */
  private readonly keys = new Map<string, boolean>();

  /** A rotated file of container `key` is read at start; `whole`: from its first byte, not from a checkpoint. */
  add(key: string, whole: boolean): void {
    this.keys.set(key, this.keys.get(key) === true || whole);
  }

  /** Its live file came after them: it starts at 0 whatever readFrom says. */
  has(key: string): boolean {
    return this.keys.has(key);
  }

  /**
   * One of them is read again from its first byte: so is its live file, whatever its checkpoint says
   * — a line the rotated file ends inside of must meet its continuation, not the middle of the live
   * file (duplicates of what the last run delivered are the lesser harm).
   */
  rereads(key: string): boolean {
    return this.keys.get(key) === true;
  }
}

export class CatchUp {
  constructor(
    private readonly parts: SourceParts,
    private readonly files: FileSet,
    private readonly opener: Opener,
    private readonly acceptLive: (livePath: string) => PodLogPath | null,
    /** Filled here. */
    private readonly recovered: RecoveredContainers,
  ) {}

  /** Opens the rotated files that finish unclaimed checkpoints (afterScan: the live files are open already). */
  run(afterScan: boolean): void {
    for (const [livePath, cps] of this.unclaimedByPath()) {
      const parsed = this.acceptLive(livePath);
      if (!parsed) continue;
      const opened = this.recoverContainer(livePath, parsed, cps);
      if (afterScan && opened.length > 0) this.putBeforeLive(containerKey(parsed), opened);
    }
  }

  /**
   * How large a checkpointed file that is gone probably grew before it was rotated away: the largest
   * of its rotated siblings still on disk (a .gz by the size its trailer records), else what was saved.
   */
  estimateFinalSize(cp: FileCheckpoint): number {
    let size = cp.size ?? 0;
    for (const sib of rotatedSiblings(this.parts.fs, cp.path)) {
      try {
        if (sib.plain) size = Math.max(size, this.parts.fs.stat(sib.plain).size);
        else if (sib.gz) size = Math.max(size, gzipDeclaredSize(this.parts.fs.readFile(sib.gz)));
      } catch {
        // gone meanwhile
      }
    }
    return size;
  }

  /** Unclaimed checkpoints by their live path. */
  private unclaimedByPath(): Map<string, FileCheckpoint[]> {
    const byLive = new Map<string, FileCheckpoint[]>();
    for (const cp of this.parts.checkpoints.unclaimed.values()) {
      const list = byLive.get(cp.path) ?? [];
      list.push(cp);
      byLive.set(cp.path, list);
    }
    return byLive;
  }

  private isFileAt(path: string | null, cp: FileCheckpoint): boolean {
    if (!path) return false;
    try {
      const st = this.parts.fs.stat(path);
      return st.dev === cp.dev && st.ino === cp.ino && pathHeadMatches(this.parts.fs, path, cp);
    } catch {
      return false;
    }
  }

  /** Opens, oldest first, the rotated files of one live path that hold unread lines. */
  private recoverContainer(livePath: string, parsed: PodLogPath, unclaimed: FileCheckpoint[]): TailedFile[] {
    const { fs, counters, log, checkpoints } = this.parts;
    const siblings = rotatedSiblings(fs, livePath);
    if (siblings.length === 0) return [];
    // Which files are still live is asked after the listing: one rotated in between is then listed
    // with its checkpoint. Asked before, it could be listed as a file newer than every checkpointed
    // one, read whole, its checkpoint left to be counted lost (chaos seed 1429337505). One rotated
    // after the listing is the scan's. Still live (same inode and head; inodes are reused quickly):
    // the scan resumes it.
    const cps = unclaimed.filter((cp) => !this.isFileAt(livePath, cp));
    if (cps.length === 0) return [];
    const gzCache = new Map<string, GzipFile | null>();
    const content = (path: string) => {
      if (!gzCache.has(path)) gzCache.set(path, this.parts.gzip.read(path));
      return gzCache.get(path) ?? null;
    };
    const gzMatches = (path: string | null, cp: FileCheckpoint) => {
      const gz = path ? content(path) : null;
      return gz !== null && bytesHeadMatches(gz.bytes, cp);
    };
    // A .gz read to its end already (a done checkpoint has its head) is no other file's.
    const done = (gz: string | null) => gz !== null && checkpoints.readToEnd(livePath, (d) => d.fpLen > 0 && gzMatches(gz, d));
    const plan: Array<{ index: number; cp: FileCheckpoint | null }> = [];
    const taken = (i: number) => plan.some((p) => p.index === i);
    // Checkpoints with a head first. One taken while its file was empty has none, and any .gz has it.
    // Most often that file was the live one at the save, newer than every file with a head: a .gz
    // after theirs. Else it was opened empty and never read (held for its pod's metadata, say), its
    // head never taken however much it grew: a .gz between theirs, which the last run followed
    // (seed 11851: two such, read whole as missed files and counted lost too). Never an older one's
    // .gz, which may be a file read long ago (taken, it would be read again and its loss not counted).
    const claimable = (i: number, sib: RotatedSibling, cp: FileCheckpoint) => !taken(i) && gzMatches(sib.gz, cp) && !done(sib.gz);
    for (const cp of [...cps].sort((a, b) => Number(b.fpLen > 0) - Number(a.fpLen > 0))) {
      // The file itself (inode and head) before a .gz with its head.
      let index = siblings.findIndex((sib) => this.isFileAt(sib.plain, cp));
      const after = cp.fpLen > 0 ? -1 : Math.max(-1, ...plan.map((p) => p.index));
      if (index < 0) index = siblings.findIndex((sib, i) => i > after && claimable(i, sib, cp));
      if (index < 0 && cp.fpLen === 0 && plan.length > 0) {
        const oldestKnown = Math.min(...plan.map((p) => p.index));
        index = siblings.findIndex((sib, i) => i > oldestKnown && claimable(i, sib, cp));
      }
      if (index >= 0 && !taken(index)) plan.push({ index, cp });
    }
    if (plan.length === 0) return [];
    // Newer rotated files than the newest one we knew were written entirely during the downtime.
    const newest = Math.max(...plan.map((p) => p.index));
    for (let i = newest + 1; i < siblings.length; i++) plan.push({ index: i, cp: null });
    plan.sort((a, b) => a.index - b.index);
    const opened: TailedFile[] = [];
    for (const { index, cp } of plan) {
      const sib = siblings[index] as RotatedSibling;
      // Opened already (the first pass, or the scan as a file it missed): read once. A checkpoint
      // with a head that matched it is its own, read with it, not a loss; one without could be
      // another file's that had its inode.
      if (this.followed(sib)) {
        if (cp && cp.fpLen > 0) checkpoints.take(cp);
        continue;
      }
      if (cp) checkpoints.take(cp);
      // The plain file first; if the kubelet compressed it meanwhile, its .gz (listed again).
      let f: TailedFile | null = null;
      if (sib.plain && (!cp || this.isFileAt(sib.plain, cp))) f = this.opener.openRotated(sib.plain, null, livePath, parsed, cp);
      if (!f) {
        const gzPath = sib.gz ?? rotatedSiblings(fs, livePath).find((x) => x.stamp === sib.stamp)?.gz ?? null;
        // Unreadable (gone, damaged): not opened as a plain file, whose bytes are gzip's.
        const gz = gzPath ? content(gzPath) : null;
        if (gz && (!cp || bytesHeadMatches(gz.bytes, cp))) {
          f = this.opener.openRotated(gzPath as string, gz, livePath, parsed, cp);
          // Read to its end before it was compressed: done, or the scan would take it for a file
          // the last run never read, and read it again whole.
          if (!f && cp) checkpoints.rememberDone(cp, this.files.nextOrder());
        }
      }
      if (!f) continue;
      opened.push(f);
      this.recovered.add(containerKey(parsed), cp === null);
      if (f.readPos >= f.size) continue; // read already; open in case the runtime still writes to it
      counters.filesRecovered++;
      log.info("reading a file rotated during downtime", { path: f.info.path, offset: f.readPos, from: livePath });
    }
    return opened;
  }

  /** Whether a rotated sibling is followed already, under either name or (plain) by its inode. */
  private followed(sib: RotatedSibling): boolean {
    for (const o of this.files.open.values()) if (o.info.path === sib.plain || o.info.path === sib.gz) return true;
    if (!sib.plain) return false;
    try {
      const st = this.parts.fs.stat(sib.plain);
      return this.files.byInode.has(checkpointKey(st.dev, st.ino));
    } catch {
      return false;
    }
  }

  /**
   * The scan already opened this container's live file: read the recovered ones before it, and that
   * file from its first byte (it came after them) if readFrom put it at its end or one of them is
   * read again whole (RecoveredContainers.rereads).
   */
  private putBeforeLive(key: string, opened: TailedFile[]): void {
    let min = Number.POSITIVE_INFINITY;
    for (const o of this.files.open.values()) {
      if (o.containerKey !== key || opened.includes(o)) continue;
      min = Math.min(min, o.order);
      if (o.fromEnd || (this.recovered.rereads(key) && o.info.path === o.livePath)) o.rewind();
    }
    if (min !== Number.POSITIVE_INFINITY) opened.forEach((f, i) => (f.order = min - 1 + (i + 1) / (opened.length + 1)));
  }
}

/** The uncompressed size a gzip member declares in its trailer (ISIZE, modulo 2^32), 0 if too short. */
function gzipDeclaredSize(bytes: Uint8Array): number {
  if (bytes.length < 18) return 0;
  const n = bytes.length;
  return ((bytes[n - 4] as number) | ((bytes[n - 3] as number) << 8) | ((bytes[n - 2] as number) << 16) | ((bytes[n - 1] as number) << 24)) >>> 0;
}
