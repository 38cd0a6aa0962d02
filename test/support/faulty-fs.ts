// The real file system with faults a test can switch on, for the source: a reader that believes it is
// at the end of a file (the "logs silently stop until restart" failure of other tailers), and the
// watch's asynchronous error (what running out of inotify watches looks like), and an inode number
// reused (the kernel gives a freed inode's number to the next file at once, when it likes).
import { nodeSourceFs } from "../../src/platform/source-fs.ts";
import type { FileStat, SourceFs, TreeWatchHandlers } from "../../src/source/types.ts";

export class FaultyFs implements SourceFs {
  /** Descriptors whose reads return 0 (end of file) while the file grows. */
  private readonly stalled = new Set<number>();
  private readonly openFds = new Map<number, string>();
  private readonly watchers = new Set<TreeWatchHandlers>();
  /** Real inode number → the number stat and fstat report. */
  private readonly inodes = new Map<number, number>();
  private readonly afterListing = new Map<string, () => void>();
  private readonly afterRead = new Map<string, () => void>();
  private readonly afterOpen = new Map<string, () => void>();

  constructor(private readonly real: SourceFs = nodeSourceFs) {}

  /** Every descriptor open on `path` now reads as if at its end; descriptors opened later read normally. Returns how many. */
  stall(path: string): number {
    let n = 0;
    for (const [fd, p] of this.openFds) {
      if (p !== path) continue;
      this.stalled.add(fd);
      n++;
    }
    return n;
  }

  /** Raises `err` `times` times on every live watch, as queued asynchronous `error` events. */
  raiseWatchError(err: Error, times = 1): number {
    const live = [...this.watchers];
    for (let i = 0; i < times; i++) for (const h of live) h.onError(err);
    return live.length;
  }

  /** The file at `path` reports inode number `ino` from now on: the number of a file deleted before it. */
  reportInode(path: string, ino: number): void {
    this.inodes.set(this.real.stat(path).ino, ino);
  }

  private renumber(st: FileStat): FileStat {
    const ino = this.inodes.get(st.ino);
    return ino === undefined ? st : { ...st, ino };
  }

  open(path: string): number {
    const fd = this.real.open(path);
    this.openFds.set(fd, path);
    const after = this.afterOpen.get(path);
    if (after) {
      this.afterOpen.delete(path);
      after();
    }
    return fd;
  }

  /** Runs `change` once, right after the next open of `path`: a rotation racing a reader that has just looked at the file. */
  onNextOpen(path: string, change: () => void): void {
    this.afterOpen.set(path, change);
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    if (this.stalled.has(fd)) return 0;
    return this.real.read(fd, buf, offset, length, position);
  }

  fstat(fd: number): FileStat {
    return this.renumber(this.real.fstat(fd));
  }

  close(fd: number): void {
    this.openFds.delete(fd);
    this.stalled.delete(fd);
    this.real.close(fd);
  }

  stat(path: string): FileStat {
    return this.renumber(this.real.stat(path));
  }

  readdir(path: string): string[] {
    const names = this.real.readdir(path);
    const after = this.afterListing.get(path);
    if (after) {
      this.afterListing.delete(path);
      after();
    }
    return names;
  }

  /** Runs `change` once, right after the next listing of `dir` was taken: a rotation that races the reader between listing and open. */
  onNextListing(dir: string, change: () => void): void {
    this.afterListing.set(dir, change);
  }

  /** Runs `change` once, right after the next whole-file read of `path`: the kubelet pruning a .gz the reader just read. */
  onNextRead(path: string, change: () => void): void {
    this.afterRead.set(path, change);
  }

  readFile(path: string): Uint8Array {
    const bytes = this.real.readFile(path);
    const after = this.afterRead.get(path);
    if (after) {
      this.afterRead.delete(path);
      after();
    }
    return bytes;
  }

  watch(root: string, handlers: TreeWatchHandlers) {
    const w = this.real.watch(root, handlers);
    this.watchers.add(handlers);
    return {
      close: () => {
        this.watchers.delete(handlers);
        w.close();
      },
    };
  }
}
