// The edges of the process that the stages receive instead of reaching for them themselves (the
// ports): time and timers, the log files as the source reads them, the ring's disk, the data dir's
// small files. Production passes the real implementations from this folder; the deterministic
// simulation passes virtual ones, so that one seed replays a whole run. (The network is a fetch
// function: src/sink/types.ts.)

/** A scheduled callback; cancel() is idempotent. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls fn once, after ms. */
  after(ms: number, fn: () => void): Timer;
  /** Calls fn every ms until cancelled. */
  every(ms: number, fn: () => void): Timer;
  /** Calls fn once pending I/O callbacks have run: a yield to the event loop (setImmediate). */
  soon(fn: () => void): void;
}

/**
 * Small files of the data dir, each replaced as a whole and durably: after write() returns, a crash
 * leaves the new content; during it, the old or the new, never a mix (checkpoints, the pod snapshot).
 */
export interface DurableFiles {
  /** Where `name` is, for messages. */
  pathOf(name: string): string;
  /** The content, or null when there is no such file. Throws on other errors. */
  read(name: string): string | null;
  /** Replaces the content; throws (ENOSPC, EIO, …) when it cannot, leaving the old content. */
  write(name: string, text: string): void;
}

// ---- the ring's disk ------------------------------------------------------------------------

/**
 * The ring's disk: the files of its directory, as the ring uses them (names are relative to the
 * directory). Production: platform/ring-storage.ts (node:fs, Bun.mmap, posix_fallocate); the
 * deterministic simulation passes a simulated disk.
 *
 * Without a crash every write is visible at once to every reader: write() and stores into a
 * mapping share one page cache. What survives a crash (power loss; a killed process loses
 * nothing, the page cache outlives it):
 *  - Contents: a byte written by write() or by a store into a mapping survives only if a
 *    datasync() or sync() of that file began after the write and completed. Anything written
 *    since may read back, after the crash, as its old value, its new value or any mix of the two
 *    (pages are written back independently and in no particular order: torn writes).
 *  - Size: a change by allocate() or truncate() survives once a sync() of the file completed.
 *  - Names: a file created by open(name, true), a rename() and a remove() survive only once a
 *    syncDir() that began after them completed; until then a crash may undo any of them.
 * The ring relies on nothing else: a header is written only after the records it covers were made
 * durable, and its two slots alternate so that a torn header leaves the other intact.
 */
export interface RingStorage {
  /** The directory, for messages. */
  readonly dir: string;
  /** Creates the directory (and its parents) if missing. */
  makeDir(): void;
  exists(name: string): boolean;
  remove(name: string): void;
  /** Renames within the directory, replacing `to` if it exists. */
  rename(from: string, to: string): void;
  /** fsync of the directory: makes creations, renames and removals durable. */
  syncDir(): void;
  /** Opens a file for reading and writing; `create` truncates it to empty, creating it (mode 0600) if missing. */
  open(name: string, create?: boolean): RingFileHandle;
  /** Releases, now, mappings that are no longer referenced (else they go when garbage is collected). */
  releaseMappings(): void;
}

/** One open file of RingStorage. Throws errors with a `code` (ENOENT, EIO, ...) as node:fs does. */
export interface RingFileHandle {
  /** Size in bytes. */
  size(): number;
  /** Reads up to `into.length` bytes at `position`; returns how many (fewer at the end of the file). */
  read(into: Uint8Array, position: number): number;
  /** Writes `length` bytes of `from` starting at `offset` to `position` (pwrite); returns how many were written. */
  write(from: Uint8Array, offset: number, length: number, position: number): number;
  /**
   * Allocates blocks for [offset, offset + length), growing the file as needed, so that a full
   * disk shows now rather than on a later store into the mapping. Returns 0, or an errno:
   * 95 (EOPNOTSUPP) or 22 (EINVAL) when the file system cannot, 28 (ENOSPC) or 122 (EDQUOT) when full.
   */
  allocate(offset: number, length: number): number;
  truncate(bytes: number): void;
  /** fsync: contents and size durable. */
  sync(): void;
  /**
   * fdatasync, off the event loop: every write made before the call is durable once it resolves.
   * Rejects on an I/O error; then nothing written since the last completed datasync is known durable.
   */
  datasync(): Promise<void>;
  /**
   * The whole file as a shared mapping: stores into it are writes (durable as any write, above) and
   * write()s show in it at once. Map only a file whose size is final (a store past the end faults).
   * It stays valid after close() and goes when no longer referenced.
   */
  map(): Uint8Array<ArrayBuffer>;
  close(): void;
}

// ---- the log files, as the source reads them --------------------------------------------------

export interface FileStat {
  dev: number;
  ino: number;
  size: number;
  nlink: number;
  isFile: boolean;
  /** Last modification (epoch ms). */
  mtimeMs: number;
  /** Last change of the inode (epoch ms): a write, or a rename (Linux file systems mark renamed files changed). */
  ctimeMs: number;
}

/** A recursive watch of a directory tree; events say "look here soon", never what happened. */
export interface TreeWatch {
  close(): void;
}

export interface TreeWatchHandlers {
  /** `rename`: created, renamed or removed; `change`: written. `name` is relative to the root. */
  onEvent(kind: "rename" | "change", name: string): void;
  /** The watch failed asynchronously (e.g. ENOSPC: out of inotify watches); no more events come. */
  onError(err: Error): void;
}

/**
 * The file system as the source uses it. Failures throw Errors with a Node-style `code` (ENOENT,
 * EACCES, …). Reads go through descriptors: after a rotation a path names another file.
 */
export interface SourceFs {
  open(path: string): number;
  /** Reads up to `length` bytes at `position` into buf[offset…]; 0 at the end of the file. */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  fstat(fd: number): FileStat;
  close(fd: number): void;
  /** Follows symlinks. */
  stat(path: string): FileStat;
  readdir(path: string): string[];
  readFile(path: string): Uint8Array;
  /** Watches `root` recursively; throws ENOENT when it does not exist yet. */
  watch(root: string, handlers: TreeWatchHandlers): TreeWatch;
}

/** Gzips request bodies away from the calling thread (GzipWorker). */
export interface Gzipper {
  /**
   * Gzips `input`. The result is `output.subarray(0, n)` when it fits in `output`, else fresh memory.
   * Rejects once closed or failed.
   */
  gzip(input: Uint8Array, output: Uint8Array | null): Promise<Uint8Array<ArrayBuffer>>;
  /** Ends it; jobs not finished reject. */
  close(): void;
}
