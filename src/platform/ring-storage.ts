// The ring's disk on the real file system (the RingStorage port of buffer/types.ts): node:fs for
// files and directory, Bun.mmap for the mapping, posix_fallocate through bun:ffi.
import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { RingFileHandle, RingStorage } from "./types.ts";
import { posixFallocate } from "./ffi.ts";
import { collectGarbage, mapFile } from "./mmap.ts";

const EOPNOTSUPP = 95;

export function diskRingStorage(dir: string): RingStorage {
  const path = (name: string) => join(dir, name);
  return {
    dir,
    makeDir: () => void mkdirSync(dir, { recursive: true }),
    exists: (name) => existsSync(path(name)),
    remove: (name) => unlinkSync(path(name)),
    rename: (from, to) => renameSync(path(from), path(to)),
    syncDir() {
      const fd = openSync(dir, constants.O_RDONLY);
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
    open(name, create = false) {
      const p = path(name);
      const flags = create ? constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC : constants.O_RDWR;
      return new DiskFile(p, openSync(p, flags, 0o600));
    },
    // Mappings are unmapped when their arrays are collected.
    releaseMappings: () => collectGarbage(true),
  };
}

class DiskFile implements RingFileHandle {
  constructor(
    private readonly path: string,
    private readonly fd: number,
  ) {}

  size(): number {
    return fstatSync(this.fd).size;
  }

  read(into: Uint8Array, position: number): number {
    return readSync(this.fd, into, 0, into.length, position);
  }

  write(from: Uint8Array, offset: number, length: number, position: number): number {
    return writeSync(this.fd, from, offset, length, position);
  }

  allocate(offset: number, length: number): number {
    try {
      return posixFallocate(this.fd, offset, length);
    } catch {
      return EOPNOTSUPP; // no C library through ffi: the caller writes zeros instead
    }
  }

  truncate(bytes: number): void {
    ftruncateSync(this.fd, bytes);
  }

  sync(): void {
    fsyncSync(this.fd);
  }

  datasync(): Promise<void> {
    // On Linux this also writes back the pages dirtied through a mapping of the file.
    return new Promise((resolve, reject) => fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  map(): Uint8Array<ArrayBuffer> {
    return mapFile(this.path);
  }

  close(): void {
    closeSync(this.fd);
  }
}
