// Discovery: which files exist and what they are. The reconciliation scan lists the log root; inotify
// events make it look at one pod or container directory at once. A live `N.log` is opened on sight;
// a live path that vanished or names another file now hands its file over to draining; a rotated
// name never seen before is classified — one of ours, history from before we started, or a file
// created and rotated between two looks, which is read under its rotated name (docs/source.md).
import { join, relative } from "node:path";
import type { RecoveredContainers } from "./catch-up.ts";
import { compileGlobs } from "./glob.ts";
import type { SourceConfig, SourceParts } from "./context.ts";
import type { FileSet } from "./file-set.ts";
import { checkpointKey } from "./checkpoints.ts";
import { bytesHeadMatches, pathHeadMatches } from "./fingerprint.ts";
import type { Opener } from "./opener.ts";
import { containerKey, parsePodLogPath, type PodLogPath } from "./paths.ts";
import { type GzipFile, historyCheckpoint, LAST_RUN_SLACK_MS, ROTATED_NAME, RotatedListings } from "./rotated.ts";
import type { TailedFile } from "./tailed-file.ts";
import { DirWatcher } from "./watcher.ts";

type RotatedClass = "history" | "missed" | "ignored";

/** Decides which live log files to follow: include/exclude globs, excluded containers, our own pod. */
export function logFileFilter(config: SourceConfig, ownPodUid: string | null): (rel: string) => PodLogPath | null {
  const include = compileGlobs(config.include);
  const exclude = compileGlobs(config.exclude);
  const excludedContainers = new Set(config.excludeContainers);
  return (rel) => {
    const parsed = parsePodLogPath(rel); // only `<n>.log`: never .gz, .tmp or rotated names
    if (!parsed || !include(rel) || exclude(rel)) return null;
    if (excludedContainers.has(parsed.container)) return null;
    if (ownPodUid && parsed.podUid === ownPodUid) return null;
    return parsed;
  };
}

export class Discovery {
  /** Live path → device:inode of a file of a pod that is not selected. */
  private readonly skipped = new Map<string, string>();
  /** Rotated names already looked at: history (read or older than us), missed (read now), ignored. */
  private readonly classified = new Map<string, RotatedClass>();
  /** Every path the last scan saw (watch events on them need no scan). */
  private known = new Set<string>();
  /** How many rotated files of each live path its dir's last listing showed (the checkpointer asks). */
  readonly rotatedListed = new RotatedListings();
  private readonly watcher: DirWatcher;
  private stopped = false;
  private readonly root: string;

  constructor(
    private readonly parts: SourceParts,
    private readonly config: SourceConfig,
    private readonly files: FileSet,
    private readonly opener: Opener,
    private readonly accept: (rel: string) => PodLogPath | null,
    /** Containers whose rotated files are read at start (filled here too): where their live files start. */
    private readonly recovered: RecoveredContainers,
  ) {
    this.root = config.root;
    this.watcher = new DirWatcher(parts.fs, this.root, {
      onEvent: (kind, name) => this.onWatchEvent(kind, name),
      onError: (err, first) => {
        // Out of inotify watches (ENOSPC) arrives as an asynchronous error.
        parts.counters.watcherErrors++;
        if (first) {
          parts.log.warn("file watcher failed; relying on the reconciliation scan from now on", {
            error: err.message,
            scanIntervalMs: config.scanIntervalMs,
          });
        }
      },
    });
  }

  /** Starts the watch if it has not started yet (the root may appear later). */
  startWatching(): void {
    this.watcher.start();
  }

  stopWatching(): void {
    this.stopped = true;
    this.watcher.close();
  }

  /**
   * Lists the whole root: opens new files, classifies new rotated names, hands vanished paths over to
   * draining. False when the root cannot be listed (nothing is concluded from that).
   */
  scanAll(initial: boolean): boolean {
    const { fs, log } = this.parts;
    let podDirs: string[];
    try {
      podDirs = fs.readdir(this.root);
    } catch (err) {
      // Files already open are still read through their descriptors (deletions show as nlink 0).
      log.warn("log root is not readable; will retry", { root: this.root, error: (err as NodeJS.ErrnoException).code });
      return false;
    }
    this.startWatching();
    const seen = new Set<string>();
    this.rotatedListed.clear(); // every container dir is listed again: removed ones go
    for (const podDir of podDirs) {
      let containers: string[];
      try {
        containers = fs.readdir(join(this.root, podDir));
      } catch {
        continue; // not a directory, or removed meanwhile
      }
      for (const container of containers) this.scanContainer(podDir, container, initial, seen);
    }
    this.known = seen;
    for (const path of this.classified.keys()) if (!seen.has(path)) this.classified.delete(path);
    this.files.pruneHistory(this.containersIn(seen));
    this.files.unlinkMissing(seen);
    for (const path of this.skipped.keys()) if (!seen.has(path)) this.skipped.delete(path);
    return true;
  }

  /** The container instances that have a live or rotated log file among `paths`. */
  private containersIn(paths: Iterable<string>): Set<string> {
    const keys = new Set<string>();
    for (const path of paths) {
      const rel = relative(this.root, path);
      const m = ROTATED_NAME.exec(rel.slice(rel.lastIndexOf("/") + 1));
      const parsed = parsePodLogPath(m ? rel.slice(0, rel.lastIndexOf("/") + 1) + m[1] : rel);
      if (parsed) keys.add(containerKey(parsed));
    }
    return keys;
  }

  /** A file of a pod that is not selected: closed, and its paths remembered so that it is not opened again. */
  skip(f: TailedFile): void {
    this.parts.counters.filesSkipped++;
    for (const p of f.paths) this.skipped.set(p, f.inodeKey);
    this.files.forget(f);
  }

  private onWatchEvent(kind: "rename" | "change", name: string): void {
    if (this.stopped) return;
    const path = join(this.root, name);
    const f = this.files.byPath.get(path);
    if (f) f.dirty = true;
    if (kind === "rename" || (!f && !this.known.has(path))) {
      // A created, renamed or removed path may be a new file, a rotation or a deletion: look at its
      // container dir (or pod dir) now — a file must be open before it can be rotated or deleted.
      // Only that dir is listed, so pod churn and rotations cost no full scans.
      const parts = name.split("/");
      const podDir = parts[0];
      if (!podDir) return;
      if (parts.length >= 2) this.scanContainer(podDir, parts[1] as string, false, null);
      else this.scanPodDir(podDir);
    }
    this.parts.notify();
  }

  /** A pod dir appeared or vanished: its containers are looked at, or its files drained. */
  private scanPodDir(podDir: string): void {
    const dir = join(this.root, podDir);
    let containers: string[];
    try {
      containers = this.parts.fs.readdir(dir);
    } catch {
      this.unlinkUnder(dir + "/", null); // removed: drain what it had through the descriptors
      return;
    }
    for (const c of containers) this.scanContainer(podDir, c, false, null);
  }

  private unlinkUnder(prefix: string, present: Set<string> | null): void {
    this.files.unlinkUnder(prefix, present);
    for (const path of this.skipped.keys()) if (path.startsWith(prefix) && !present?.has(path)) this.skipped.delete(path);
  }

  /**
   * One container dir: rotated siblings first (a file created and rotated between two looks is found
   * under its rotated name and read), then the live `N.log` files.
   */
  private scanContainer(podDir: string, container: string, initial: boolean, seen: Set<string> | null): void {
    const dir = join(this.root, podDir, container);
    let names: string[];
    this.rotatedListed.listing(dir);
    try {
      names = this.parts.fs.readdir(dir);
    } catch {
      if (!seen) this.unlinkUnder(dir + "/", null);
      return;
    }
    const live: Array<[string, PodLogPath]> = [];
    const rotated: Array<{ path: string; liveRel: string; stamp: string; gz: boolean }> = [];
    for (const name of names) {
      const rel = `${podDir}/${container}/${name}`;
      const path = join(dir, name);
      seen?.add(path);
      const m = ROTATED_NAME.exec(name);
      if (m) {
        this.rotatedListed.add(dir, m[1] as string, m[2] as string);
        if (!this.classified.has(path)) rotated.push({ path, liveRel: `${podDir}/${container}/${m[1]}`, stamp: m[2] as string, gz: m[3] !== undefined });
        continue;
      }
      const parsed = this.accept(rel);
      if (parsed) live.push([path, parsed]);
    }
    // Oldest first (a plain file before its .gz): files found missed are read in rotation order.
    rotated.sort(byRotation);
    // At start, once a rotated file is read, every newer one of the same live name is too: a line it
    // ends inside of must meet its continuation, not the next file read (duplicates of a known file
    // are the lesser harm). Another restart's files (`0.log.*` beside `1.log.*`) are another stream.
    const readOn = new Set<string>();
    for (const r of rotated) if (this.classifyRotated(r.liveRel, r.path, r.gz, initial, readOn.has(r.liveRel)) && initial) readOn.add(r.liveRel);
    if (!seen) this.unlinkUnder(dir + "/", new Set(names.map((n) => join(dir, n))));
    const opened: TailedFile[] = [];
    for (const [path, parsed] of live) {
      const added = this.parts.counters.filesAdded;
      this.discover(path, parsed, initial);
      const f = this.files.byPath.get(path);
      if (f && this.parts.counters.filesAdded > added) opened.push(f);
    }
    if (opened.length > 0) this.rotatedWhileOpening(podDir, container, new Set(names), initial, opened, seen);
  }

  /**
   * The runtime may rotate between the listing and the open of a live name: the open then found the
   * successor, and the file the listing named has a rotated name the listing lacked. Listed again
   * (nothing was read since), such a file is opened now, before the live file that replaced it, as
   * that name's file would have been: a line it ends inside of must meet its continuation at the
   * successor's first byte. Found by a later look instead, it waited behind its successor: the
   * continuation became a record of its own and the head was glued to a later line. At start, one
   * the last run knew is left to the catch-up after the first scan (from its checkpoint, first).
   */
  private rotatedWhileOpening(podDir: string, container: string, listed: Set<string>, initial: boolean, opened: TailedFile[], seen: Set<string> | null): void {
    const dir = join(this.root, podDir, container);
    let names: string[];
    try {
      names = this.parts.fs.readdir(dir);
    } catch {
      return;
    }
    const raced: Array<{ path: string; liveRel: string; stamp: string; gz: boolean }> = [];
    for (const name of names) {
      const m = ROTATED_NAME.exec(name);
      const path = join(dir, name);
      seen?.add(path);
      if (m && !listed.has(name) && !this.classified.has(path)) raced.push({ path, liveRel: `${podDir}/${container}/${m[1]}`, stamp: m[2] as string, gz: m[3] !== undefined });
    }
    raced.sort(byRotation);
    const before = new Map<TailedFile, TailedFile[]>();
    for (const r of raced) {
      const live = opened.find((f) => f.livePath === join(this.root, r.liveRel));
      if (!live) continue; // not the predecessor of a file opened now: the next look classifies it
      if (live.fromEnd) {
        this.history(live.livePath, r.path, r.gz, live.order - 0.5); // readFrom end: it was there at start
        continue;
      }
      if (!this.classifyRotated(r.liveRel, r.path, r.gz, initial, false, true)) continue;
      const f = [...this.files.open.values()].find((o) => o.info.path === r.path);
      if (f && f.containerKey === live.containerKey) before.set(live, [...(before.get(live) ?? []), f]);
    }
    for (const [live, files] of before) files.forEach((f, i) => (f.order = live.order - 1 + (i + 1) / (files.length + 1)));
    for (const live of before.keys()) this.files.orderRotatedAmongThemselves(live.containerKey);
  }

  /**
   * A rotated name we have not looked at yet. If it is a file we followed (by inode; a .gz by the name
   * it was compressed from, else by the fingerprint of its head), nothing to do. Present at start:
   * history, not read (rotated files are not tailed). Otherwise it was created and rotated while we
   * were not looking: read it whole, before the live file of its container. `raced`: it was the live
   * file when its dir was listed (rotatedWhileOpening), so never history for its age.
   */
  /** Returns whether the file is being read now (opened here, or by the catch-up). */
  private classifyRotated(liveRel: string, path: string, gz: boolean, initial: boolean, readOn: boolean, raced = false): boolean {
    const parsed = this.accept(liveRel);
    if (!parsed) return this.classify(path, "ignored");
    const livePath = join(this.root, liveRel);
    if (this.skipped.has(livePath)) return this.classify(path, "ignored"); // a pod that is not selected
    const key = containerKey(parsed);
    let mem: GzipFile | null = null;
    if (gz) {
      const plainClass = this.classified.get(path.slice(0, -3));
      if (plainClass) return this.classify(path, plainClass);
    }
    for (const o of this.files.open.values()) {
      if (o.info.path !== path) continue;
      // Opened by the catch-up, from the last run's checkpoint. Read on after an older file read
      // whole, it is read whole too: that file may end inside a line this one continues before the
      // checkpoint (duplicates are the lesser harm, as for the live file).
      if (initial && readOn) o.rewind();
      return this.classify(path, "history") || true;
    }
    if (initial && !readOn && !raced && !this.changedSinceLastRun(path)) return this.history(livePath, path, gz, this.files.nextOrder());
    if (gz) {
      mem = this.parts.gzip.read(path);
      if (!mem) return false; // gone, or damaged (warned): look again at the next scan
      const bytes = mem.bytes;
      if (this.knownGzip(key, bytes) || (initial && !readOn && this.lastRunKnew(livePath, (cp) => bytesHeadMatches(bytes, cp)))) return this.classify(path, "history");
    } else {
      const known = this.knownPlain(key, path, initial && !readOn ? livePath : null);
      if (known === null) return false; // gone meanwhile
      if (known) return this.classify(path, "history");
    }
    this.classified.set(path, "missed");
    const f = this.opener.openRotated(path, mem, livePath, parsed, null);
    if (!f) return false;
    // Its reading order is right as it is: rotated names are classified (oldest first) before the live
    // files of the same listing are discovered, so every open file of its container is older and the
    // live file that replaced it is opened after it.
    if (initial) {
      this.recovered.add(key, true); // read whole: the live file came after it, and is read whole too
      this.takeCheckpointsOf(livePath, path, f, mem?.bytes ?? null);
      this.parts.counters.filesRecovered++;
      this.parts.log.warn("a file was rotated while the collector was down, before it was read; reading it under its rotated name", { path });
    } else {
      this.parts.counters.filesMissedRotated++;
      this.parts.log.warn("a file was rotated before it was opened; reading it under its rotated name", { path });
    }
    return true;
  }

  /**
   * A rotated file read whole at start may be one the last run had a checkpoint of (read on after an
   * older one, or rotated while we started): that checkpoint is taken, or it would be given up after
   * the first scan and its bytes counted lost while they are being read. Plain: same inode and head;
   * a .gz: its head (a checkpoint taken while its file was empty could be any file's).
   */
  private takeCheckpointsOf(livePath: string, path: string, f: TailedFile, mem: Uint8Array | null): void {
    this.parts.checkpoints.takeAll(livePath, (cp) =>
      mem ? cp.fpLen > 0 && bytesHeadMatches(mem, cp) : cp.dev === f.dev && cp.ino === f.ino && pathHeadMatches(this.parts.fs, path, cp),
    );
  }

  /** A rotated file present at start, left unread; remembered as done when its age would not tell the next start (rotated.ts). */
  private history(livePath: string, path: string, gz: boolean, order: number): false {
    const cp = historyCheckpoint(this.parts.fs, this.parts.clock.now(), livePath, path, gz);
    if (cp) this.parts.checkpoints.rememberDone(cp, order);
    return this.classify(path, "history");
  }

  /** Records what a rotated name is; false (not being read). */
  private classify(path: string, what: RotatedClass): false {
    this.classified.set(path, what);
    return false;
  }

  /**
   * At start, whether a rotated file may hold lines the last run never made durable: written since
   * its last checkpoint save (or just before it: the file may not have been open yet then). Rotated
   * files older than that, and those the last run knew (followed, or read to their end), are history.
   * At a first start they are history unless renamed or written since this process started: live
   * then, rotated before the first look, the runtime writing on into it until it reopens.
   */
  private changedSinceLastRun(path: string): boolean {
    const savedAt = this.parts.checkpoints.lastRunSavedAt;
    try {
      const st = this.parts.fs.stat(path);
      return savedAt === null ? st.ctimeMs > this.parts.startedAt : st.mtimeMs >= savedAt - LAST_RUN_SLACK_MS;
    } catch {
      return false;
    }
  }

  private lastRunKnew(livePath: string, same: (cp: { fpLen: number; fpHash: number; dev: number; ino: number }) => boolean): boolean {
    return this.parts.checkpoints.knows(livePath, same);
  }

  /** Whether a .gz's content starts like a file of this container we opened (open ones count too, .gz ones read after downtime included). */
  private knownGzip(key: string, mem: Uint8Array): boolean {
    const history = this.files.history.get(key);
    for (const o of this.files.open.values()) {
      if (o.containerKey !== key) continue;
      if (o.fd >= 0) {
        o.refreshSize(); // its size may be that of its last read: its head may have grown since
        o.updateFingerprint();
      }
      if (o.fp.fpLen > 0) history?.set(o.inodeKey, o.fp);
    }
    return history !== undefined && [...history.values()].some((h) => h.fpLen > 0 && bytesHeadMatches(mem, h));
  }

  /**
   * Whether a plain rotated file is one we opened: open (the descriptor pins the inode), or closed
   * with the same head (inodes are reused at once); at start (`livePath`), also one the last run
   * knew. Null when it cannot be looked at now.
   */
  private knownPlain(key: string, path: string, livePath: string | null): boolean | null {
    let st;
    try {
      st = this.parts.fs.stat(path);
    } catch {
      return null;
    }
    const id = checkpointKey(st.dev, st.ino);
    const closed = this.files.history.get(key)?.get(id);
    if (this.files.byInode.has(id) || (closed !== undefined && closed.fpLen > 0 && pathHeadMatches(this.parts.fs, path, closed))) return true;
    return livePath !== null && this.lastRunKnew(livePath, (cp) => cp.dev === st.dev && cp.ino === st.ino && pathHeadMatches(this.parts.fs, path, cp));
  }

  private discover(path: string, parsed: PodLogPath, initial: boolean): void {
    let st;
    try {
      st = this.parts.fs.stat(path); // follows symlinks: one file is read once, whatever links to it
    } catch {
      return;
    }
    if (!st.isFile) return;
    const id = checkpointKey(st.dev, st.ino);
    const known = this.files.byPath.get(path);
    if (known && known.inodeKey === id) return;
    if (this.skipped.get(path) === id) return;
    this.skipped.delete(path);
    if (known) this.files.unlink(known, path); // the path names another file now: a rotation
    const alias = this.files.byInode.get(id);
    if (alias) return this.files.link(path, alias);
    const key = containerKey(parsed);
    this.opener.openLive(path, parsed, initial && !this.recovered.has(key), initial && this.recovered.rereads(key));
  }

  /**
   * Whether the live path of `f` still names it; if not (rotated, deleted) and the change was not seen
   * yet, its container dir is looked at now: a successor is opened.
   */
  stillLive(f: TailedFile): boolean {
    let st;
    try {
      st = this.parts.fs.stat(f.livePath);
    } catch {
      st = null;
    }
    if (st && st.dev === f.dev && st.ino === f.ino) return true;
    this.lookAgain(f.livePath);
    return false;
  }

  /** Lists the container dir of a live path now (inotify may be late or gone); whether that opened a file. */
  lookAgain(livePath: string): boolean {
    const parts = relative(this.root, livePath).split("/");
    if (parts.length !== 3) return false;
    const before = this.parts.counters.filesAdded;
    this.scanContainer(parts[0] as string, parts[1] as string, false, null);
    return this.parts.counters.filesAdded > before;
  }

  /** The live path relative to the root, accepted, for catch-up after downtime. */
  acceptLive(livePath: string): PodLogPath | null {
    return this.accept(relative(this.root, livePath));
  }
}

/** Rotation order: by stamp, a plain file before its .gz. */
function byRotation(a: { stamp: string; gz: boolean }, b: { stamp: string; gz: boolean }): number {
  return a.stamp === b.stamp ? Number(a.gz) - Number(b.gz) : a.stamp < b.stamp ? -1 : 1;
}
