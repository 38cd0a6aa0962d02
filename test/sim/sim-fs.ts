// A simulated node file system for the source (the SourceFs port) and for the simulated kubelet and
// container runtime that write the logs: directories, inodes with link counts (a deleted file stays
// readable through open descriptors; its inode number is reused as soon as it is free), descriptors
// owned by a process (a crash closes them), renames, truncation, and a recursive watch whose events
// arrive asynchronously, as inotify's do.
import { basename, dirname } from "node:path";
import type { FileStat, SourceFs, TreeWatch, TreeWatchHandlers } from "../../src/source/types.ts";
import type { Rng } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";
import { FINGERPRINT_BYTES } from "../../src/source/fingerprint.ts";

interface Inode {
  ino: number;
  /** Which file this is: unique over the run (inode numbers are reused at once; these are not). */
  file: number;
  data: Uint8Array;
  size: number;
  nlink: number;
  open: number;
  /** How far any process has read it. */
  readTo: number;
  /** How far each process has read it (by owner): what one read may never have become durable in another. */
  readBy: Map<number, number>;
  mtimeMs: number;
  ctimeMs: number;
}

type Entry = { kind: "dir"; children: Map<string, Entry> } | { kind: "file"; ino: number };

interface Descriptor {
  ino: number;
  owner: number;
}

interface Watch {
  root: string;
  handlers: TreeWatchHandlers;
  owner: number;
  closed: boolean;
}

const DEV = 2049;

function fsError(code: string, op: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} '${path}'`), { code });
}

export class SimFs {
  private readonly top: Entry & { kind: "dir" } = { kind: "dir", children: new Map() };
  private readonly inodes = new Map<number, Inode>();
  private readonly free: number[] = [];
  private nextIno = 100;
  private readonly fds = new Map<number, Descriptor>();
  private nextFd = 3;
  private readonly watches = new Set<Watch>();
  /** Counts of what happened, for the run's summary. */
  readonly stats = { reads: 0, inodesReused: 0, watchEvents: 0 };
  /** Files (by `file`, not inode number) some process opened, and when it first did. */
  readonly firstOpenedAt = new Map<number, number>();
  /** Files freed that no process ever opened (gone between two looks). */
  readonly neverOpenedFreed = new Set<number>();
  /** Files freed when their last descriptor closed before they were read to their end (a file given up). */
  readonly closedUnread = new Set<number>();
  /** The files each process read whole into its memory (a .gz): its copy outlives their deletion. */
  readonly readWhole = new Map<number, Set<number>>();
  /** The path each file was created at (a rotated file at its live path; a .gz at its own). */
  readonly createdAs = new Map<number, string>();
  /** Each file's largest size (what a .gz of it declares, or a rotated sibling's size, is at most this). */
  readonly peakSize = new Map<number, number>();
  /** Called when a process has listed a directory. */
  onListed: (owner: number, path: string) => void = () => {};
  /** Called when a file is freed (no name, no descriptor). */
  onFree: (file: number) => void = () => {};
  private nextFile = 1;
  /** Traces what happens to these inodes (replaying one seed: SIM_INODES=180,181). */
  readonly traced = new Set<number>((process.env.SIM_INODES ?? "").split(",").filter(Boolean).map(Number));
  /** Traces these files only, whatever inode number they have (SIM_FILES=580,605: files are not reused). */
  readonly tracedFiles = new Set<number>((process.env.SIM_FILES ?? "").split(",").filter(Boolean).map(Number));
  note: (what: string) => void = () => {};

  private trace(ino: number, what: string): void {
    const file = this.inodes.get(ino)?.file ?? -1;
    if (this.traced.has(ino) || this.tracedFiles.has(file)) this.note(`inode ${ino}${file >= 0 ? ` (file ${file})` : ""}: ${what} (size ${this.inodes.get(ino)?.size ?? "freed"})`);
  }

  constructor(
    private readonly clock: Scheduler,
    private readonly rng: Rng,
  ) {}

  /**
   * Called before each path operation a process makes (open, stat, readdir, readFile): what the
   * kubelet may do between two calls that the collector makes within one step of its own (the
   * simulation's --kubelet-in-step). Null: the world acts only between steps.
   */
  betweenCalls: (() => void) | null = null;

  /** The SourceFs view of one process (its descriptors and watches die with it). */
  port(owner: number): SourceFs {
    const before = () => this.betweenCalls?.();
    return {
      open: (path) => (before(), this.open(path, owner)),
      read: (fd, buf, offset, length, position) => this.read(fd, buf, offset, length, position),
      fstat: (fd) => this.fstat(fd),
      close: (fd) => this.close(fd),
      stat: (path) => (before(), this.stat(path)),
      readdir: (path) => {
        before();
        const names = this.readdir(path);
        this.onListed(owner, path);
        return names;
      },
      readFile: (path) => {
        before();
        const bytes = this.readFile(path);
        const file = this.fileOf(this.inoAt(path) ?? -1);
        this.readWhole.set(owner, (this.readWhole.get(owner) ?? new Set()).add(file));
        return bytes;
      },
      watch: (root, handlers) => this.watch(root, handlers, owner),
    };
  }

  /** A process ended: its descriptors close (a deleted file only it held is gone now), its watches stop. */
  endProcess(owner: number): void {
    for (const [fd, d] of this.fds) if (d.owner === owner) this.close(fd);
    for (const w of this.watches) if (w.owner === owner) w.closed = true;
  }

  /** The watch fails asynchronously (ENOSPC: out of inotify watches). */
  failWatches(err: Error): void {
    for (const w of this.watches) {
      if (w.closed) continue;
      this.clock.soonFor(w.owner, () => {
        if (!w.closed) w.handlers.onError(err);
      });
    }
  }

  // ---- what processes do ------------------------------------------------------------------

  open(path: string, owner: number): number {
    const e = this.lookup(path, "open");
    if (e.kind !== "file") throw fsError("EISDIR", "open", path);
    const inode = this.inodes.get(e.ino) as Inode;
    inode.open++;
    if (!this.firstOpenedAt.has(inode.file)) this.firstOpenedAt.set(inode.file, this.clock.peek());
    const fd = this.nextFd++;
    this.fds.set(fd, { ino: e.ino, owner });
    this.trace(e.ino, `opened by process ${owner} as ${path} (fd ${fd})`);
    return fd;
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    const inode = this.byFd(fd, "read");
    this.stats.reads++;
    const n = Math.max(0, Math.min(length, inode.size - position));
    if (n > 0) buf.set(inode.data.subarray(position, position + n), offset);
    // A fingerprint's read of the head (at most FINGERPRINT_BYTES at offset 0) reads no line: a file
    // smaller than that, given up before its lines were read, was not read to its end (seed 30483).
    if (position === 0 && length <= FINGERPRINT_BYTES) return n;
    if (position + n > inode.readTo) inode.readTo = position + n;
    const owner = (this.fds.get(fd) as Descriptor).owner;
    if (position + n > (inode.readBy.get(owner) ?? 0)) inode.readBy.set(owner, position + n);
    return n;
  }

  fstat(fd: number): FileStat {
    const inode = this.byFd(fd, "fstat");
    return { dev: DEV, ino: inode.ino, size: inode.size, nlink: inode.nlink, isFile: true, mtimeMs: inode.mtimeMs, ctimeMs: inode.ctimeMs };
  }

  close(fd: number): void {
    const d = this.fds.get(fd);
    if (!d) throw fsError("EBADF", "close", String(fd));
    this.fds.delete(fd);
    const inode = this.inodes.get(d.ino) as Inode;
    inode.open--;
    // Given up: the process that closed it last had not read it to its end. Whether another did does
    // not matter: one that crashed (or stopped with the data dir disk full) read it, the next one
    // resumed it from an older checkpoint and gave it up — the first reading may never have been durable.
    const readTo = inode.readBy.get(d.owner) ?? 0;
    if (inode.open === 0 && inode.nlink === 0 && readTo < inode.size) this.closedUnread.add(inode.file);
    this.trace(inode.ino, `fd ${fd} closed, read to ${readTo} by process ${d.owner} (${inode.readTo} by any)`);
    this.release(inode);
  }

  stat(path: string): FileStat {
    const e = this.lookup(path, "stat");
    if (e.kind === "dir") return { dev: DEV, ino: 1, size: 4096, nlink: 2, isFile: false, mtimeMs: 0, ctimeMs: 0 };
    const inode = this.inodes.get(e.ino) as Inode;
    return { dev: DEV, ino: inode.ino, size: inode.size, nlink: inode.nlink, isFile: true, mtimeMs: inode.mtimeMs, ctimeMs: inode.ctimeMs };
  }

  readdir(path: string): string[] {
    const e = this.lookup(path, "scandir");
    if (e.kind !== "dir") throw fsError("ENOTDIR", "scandir", path);
    const names = [...e.children.keys()];
    // Real directories list in no particular order: a seeded shuffle finds order dependence.
    for (let i = names.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i);
      [names[i], names[j]] = [names[j] as string, names[i] as string];
    }
    return names;
  }

  readFile(path: string): Uint8Array {
    const e = this.lookup(path, "open");
    if (e.kind !== "file") throw fsError("EISDIR", "read", path);
    const inode = this.inodes.get(e.ino) as Inode;
    return inode.data.slice(0, inode.size);
  }

  watch(root: string, handlers: TreeWatchHandlers, owner: number): TreeWatch {
    this.lookup(root, "watch");
    const w: Watch = { root, handlers, owner, closed: false };
    this.watches.add(w);
    return {
      close: () => {
        w.closed = true;
        this.watches.delete(w);
      },
    };
  }

  // ---- what the kubelet and the container runtime do -----------------------------------------

  mkdirp(path: string): void {
    let dir = this.top;
    let at = "";
    for (const part of path.split("/").filter(Boolean)) {
      at += "/" + part;
      let next = dir.children.get(part);
      if (!next) {
        next = { kind: "dir", children: new Map() };
        dir.children.set(part, next);
        this.emit(at, "rename");
      }
      if (next.kind !== "dir") throw fsError("ENOTDIR", "mkdir", at);
      dir = next;
    }
  }

  /** Creates an empty file (or returns the existing one's inode). */
  create(path: string): number {
    const dir = this.dirOf(path, "open");
    const name = basename(path);
    const existing = dir.children.get(name);
    if (existing) {
      if (existing.kind !== "file") throw fsError("EISDIR", "open", path);
      return existing.ino;
    }
    const ino = this.newInode();
    this.createdAs.set(this.fileOf(ino), path);
    dir.children.set(name, { kind: "file", ino });
    this.trace(ino, `created as ${path}`);
    this.emit(path, "rename");
    return ino;
  }

  /** A writer's descriptor on an inode (the container runtime's): keeps it alive through a deletion. */
  hold(ino: number): void {
    (this.inodes.get(ino) as Inode).open++;
  }

  /** The writer closes it (reopened the live name). */
  unhold(ino: number): void {
    const inode = this.inodes.get(ino);
    if (!inode) return;
    inode.open--;
    this.release(inode);
  }

  /** Appends to an inode (through a writer's descriptor: the file may have been renamed or deleted). */
  append(ino: number, bytes: Uint8Array, path: string | null): void {
    const inode = this.inodes.get(ino);
    if (!inode) throw fsError("EBADF", "write", String(ino));
    const need = inode.size + bytes.length;
    if (need > inode.data.length) {
      const grown = new Uint8Array(Math.max(need, inode.data.length * 2, 4096));
      grown.set(inode.data.subarray(0, inode.size));
      inode.data = grown;
    }
    inode.data.set(bytes, inode.size);
    inode.size = need;
    if (need > (this.peakSize.get(inode.file) ?? 0)) this.peakSize.set(inode.file, need);
    inode.mtimeMs = inode.ctimeMs = this.clock.peek();
    if (path !== null && inode.nlink > 0) this.emit(path, "change");
  }

  /** Writes a whole new file (a .gz the kubelet made). */
  writeWhole(path: string, bytes: Uint8Array): number {
    const ino = this.create(path);
    this.append(ino, bytes, path);
    return ino;
  }

  rename(from: string, to: string): void {
    const fromDir = this.dirOf(from, "rename");
    const e = fromDir.children.get(basename(from));
    if (!e) throw fsError("ENOENT", "rename", from);
    const toDir = this.dirOf(to, "rename");
    const replaced = toDir.children.get(basename(to));
    fromDir.children.delete(basename(from));
    toDir.children.set(basename(to), e);
    if (replaced?.kind === "file") this.unlinkInode(replaced.ino);
    if (e.kind === "file") {
      (this.inodes.get(e.ino) as Inode).ctimeMs = this.clock.peek(); // as Linux file systems do
      this.trace(e.ino, `renamed ${from} -> ${to}`);
    }
    this.emit(from, "rename");
    this.emit(to, "rename");
  }

  unlink(path: string): void {
    const dir = this.dirOf(path, "unlink");
    const e = dir.children.get(basename(path));
    if (!e) throw fsError("ENOENT", "unlink", path);
    if (e.kind !== "file") throw fsError("EISDIR", "unlink", path);
    dir.children.delete(basename(path));
    this.trace(e.ino, `unlinked ${path}`);
    this.unlinkInode(e.ino);
    this.emit(path, "rename");
  }

  /** Removes a directory tree (a pod's log dir after the pod is gone). */
  removeTree(path: string): void {
    const dir = this.dirOf(path, "rmdir");
    const e = dir.children.get(basename(path));
    if (!e) return;
    const drop = (x: Entry) => {
      if (x.kind === "file") this.trace(x.ino, `removed with ${path}`);
      if (x.kind === "file") this.unlinkInode(x.ino);
      else for (const c of x.children.values()) drop(c);
    };
    drop(e);
    dir.children.delete(basename(path));
    this.emit(path, "rename");
  }

  truncate(path: string): void {
    const e = this.lookup(path, "truncate");
    if (e.kind !== "file") throw fsError("EISDIR", "truncate", path);
    const inode = this.inodes.get(e.ino) as Inode;
    inode.size = 0;
    inode.mtimeMs = inode.ctimeMs = this.clock.peek();
    this.emit(path, "change");
  }

  /** The inode a path names now, or null. */
  inoAt(path: string): number | null {
    try {
      const e = this.lookup(path, "stat");
      return e.kind === "file" ? e.ino : null;
    } catch {
      return null;
    }
  }

  /** The file an inode number names now (see Inode.file), or -1. */
  fileOf(ino: number): number {
    return this.inodes.get(ino)?.file ?? -1;
  }

  sizeOf(ino: number): number {
    return this.inodes.get(ino)?.size ?? 0;
  }

  exists(path: string): boolean {
    try {
      this.lookup(path, "stat");
      return true;
    } catch {
      return false;
    }
  }

  /** The files on disk (or held open) that this process has not read to their end. */
  unreadBy(owner: number): Set<number> {
    const out = new Set<number>();
    for (const i of this.inodes.values()) if ((i.readBy.get(owner) ?? 0) < i.size) out.add(i.file);
    return out;
  }

  /** Bytes of inodes that have no name but are held open (what `lsof +L1` shows). */
  deletedOpenBytes(): number {
    let n = 0;
    for (const i of this.inodes.values()) if (i.nlink === 0 && i.open > 0) n += i.size;
    return n;
  }

  // ---- internals --------------------------------------------------------------------------

  private newInode(): number {
    const reused = this.free.pop();
    if (reused !== undefined) this.stats.inodesReused++;
    const ino = reused ?? this.nextIno++;
    this.inodes.set(ino, { ino, file: this.nextFile++, data: new Uint8Array(0), size: 0, nlink: 1, open: 0, readTo: 0, readBy: new Map(), mtimeMs: this.clock.peek(), ctimeMs: this.clock.peek() });
    return ino;
  }

  private unlinkInode(ino: number): void {
    const inode = this.inodes.get(ino) as Inode;
    inode.nlink--;
    this.release(inode);
  }

  private release(inode: Inode): void {
    if (inode.nlink > 0 || inode.open > 0) return;
    this.trace(inode.ino, "freed");
    this.inodes.delete(inode.ino);
    this.free.push(inode.ino);
    if (!this.firstOpenedAt.has(inode.file)) this.neverOpenedFreed.add(inode.file);
    this.onFree(inode.file);
  }

  private byFd(fd: number, op: string): Inode {
    const d = this.fds.get(fd);
    if (!d) throw fsError("EBADF", op, String(fd));
    return this.inodes.get(d.ino) as Inode;
  }

  private lookup(path: string, op: string): Entry {
    let e: Entry = this.top;
    for (const part of path.split("/").filter(Boolean)) {
      if (e.kind !== "dir") throw fsError("ENOTDIR", op, path);
      const next = e.children.get(part);
      if (!next) throw fsError("ENOENT", op, path);
      e = next;
    }
    return e;
  }

  private dirOf(path: string, op: string): Entry & { kind: "dir" } {
    const d = this.lookup(dirname(path), op);
    if (d.kind !== "dir") throw fsError("ENOTDIR", op, path);
    return d;
  }

  /** inotify: the watch of a root sees events under it, a moment later. */
  private emit(path: string, kind: "rename" | "change"): void {
    for (const w of this.watches) {
      if (w.closed || !path.startsWith(w.root + "/")) continue;
      const name = path.slice(w.root.length + 1);
      this.stats.watchEvents++;
      this.clock.soonFor(w.owner, () => {
        if (!w.closed) w.handlers.onEvent(kind, name);
      });
    }
  }
}
