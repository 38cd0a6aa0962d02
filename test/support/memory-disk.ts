// A disk in memory implementing the ring's storage port (src/buffer/types.ts RingStorage) with its
// crash semantics: contents written since a file's last completed datasync, and names changed since
// the directory's last sync, may be lost or torn at a crash. And a clock that moves only when told.
import type { RingFileHandle, RingStorage } from "../../src/buffer/types.ts";
import type { Clock, Timer } from "../../src/platform/types.ts";

const PAGE = 4096;

interface MemFile {
  /** The page cache: what every reader sees (a mapping is a view of it). */
  bytes: Uint8Array<ArrayBuffer>;
  /** What the disk holds: the contents as of the last completed datasync or sync. */
  durable: Uint8Array<ArrayBuffer>;
}

function enoent(name: string): Error {
  return Object.assign(new Error(`ENOENT: no such file, ${name}`), { code: "ENOENT" });
}

/** How a disk behaves beyond keeping bytes (the simulation's disk is slow, and sometimes full). */
export interface DiskBehaviour {
  /** Completes a datasync: calls `done` when the disk has written (default: at once). */
  datasync?(done: () => void): void;
  /** Whether the disk is full now: allocation fails with ENOSPC. */
  full?(): boolean;
}

const ENOSPC = 28;

export class MemoryDisk implements RingStorage {
  /** Names as everyone sees them, and as of the last syncDir (what a crash keeps). */
  private names = new Map<string, MemFile>();
  private durableNames = new Map<string, MemFile>();
  /** Buffers of durable copies no longer referenced, by length: a datasync reuses one rather than allocating. */
  private spare = new Map<number, Array<Uint8Array<ArrayBuffer>>>();
  datasyncs = 0;

  constructor(
    readonly dir = "/memory-disk/data",
    readonly behaviour: DiskBehaviour = {},
  ) {}

  makeDir(): void {}
  exists(name: string): boolean {
    return this.names.has(name);
  }
  remove(name: string): void {
    if (!this.names.delete(name)) throw enoent(name);
  }
  rename(from: string, to: string): void {
    const f = this.names.get(from);
    if (!f) throw enoent(from);
    this.names.delete(from);
    this.names.set(to, f);
  }
  syncDir(): void {
    this.durableNames = new Map(this.names);
  }
  releaseMappings(): void {}

  /** A copy of `bytes` in a reused buffer when one of its length is spare (copies are the simulation's main cost). */
  copyOf(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
    const copy = this.spare.get(bytes.length)?.pop() ?? new Uint8Array(bytes.length);
    copy.set(bytes);
    return copy;
  }

  /** Takes back a durable copy that nothing references any more. */
  release(copy: Uint8Array<ArrayBuffer>): void {
    const list = this.spare.get(copy.length) ?? [];
    if (list.length < 2) list.push(copy);
    this.spare.set(copy.length, list);
  }

  /** Names of the files now. */
  list(): string[] {
    return [...this.names.keys()].sort();
  }

  /** Raw bytes of a file (the page cache), for checks. */
  bytesOf(name: string): Uint8Array {
    const f = this.names.get(name);
    if (!f) throw enoent(name);
    return f.bytes;
  }

  open(name: string, create = false): RingFileHandle {
    let f = this.names.get(name);
    if (create) {
      f = { bytes: new Uint8Array(0), durable: new Uint8Array(0) };
      this.names.set(name, f);
    }
    if (!f) throw enoent(name);
    return new MemHandle(f, this);
  }

  /**
   * The disk after a power loss: the names as of the last syncDir, and per file the contents of its
   * last completed datasync with each page written since either lost or written back (`keep`).
   */
  crash(keep: (file: string, page: number) => boolean, behaviour: DiskBehaviour = this.behaviour): MemoryDisk {
    const after = new MemoryDisk(this.dir, behaviour);
    for (const [name, f] of this.durableNames) {
      const bytes = new Uint8Array(f.durable.length);
      bytes.set(f.durable);
      for (let at = 0; at < bytes.length; at += PAGE) {
        const end = Math.min(bytes.length, at + PAGE);
        if (end <= f.bytes.length && keep(name, at / PAGE)) bytes.set(f.bytes.subarray(at, end), at);
      }
      after.names.set(name, { bytes, durable: bytes.slice() });
    }
    after.durableNames = new Map(after.names);
    return after;
  }
}

class MemHandle implements RingFileHandle {
  constructor(
    private readonly f: MemFile,
    private readonly disk: MemoryDisk,
  ) {}

  size(): number {
    return this.f.bytes.length;
  }
  read(into: Uint8Array, position: number): number {
    const part = this.f.bytes.subarray(position, position + into.length);
    into.set(part);
    return part.length;
  }
  write(from: Uint8Array, offset: number, length: number, position: number): number {
    this.grow(position + length);
    this.f.bytes.set(from.subarray(offset, offset + length), position);
    return length;
  }
  allocate(offset: number, length: number): number {
    if (offset + length > this.f.bytes.length && this.disk.behaviour.full?.()) return ENOSPC;
    this.grow(offset + length);
    return 0;
  }
  truncate(bytes: number): void {
    const b = new Uint8Array(bytes);
    b.set(this.f.bytes.subarray(0, bytes));
    this.f.bytes = b;
  }
  sync(): void {
    this.setDurable(this.disk.copyOf(this.f.bytes));
  }
  async datasync(): Promise<void> {
    const snapshot = this.disk.copyOf(this.f.bytes); // what was written before the call
    const complete = this.disk.behaviour.datasync;
    if (complete) await new Promise<void>((resolve) => complete(resolve));
    else await Promise.resolve();
    this.setDurable(snapshot);
    this.disk.datasyncs++;
  }
  map(): Uint8Array<ArrayBuffer> {
    return this.f.bytes;
  }
  close(): void {}

  private setDurable(copy: Uint8Array<ArrayBuffer>): void {
    const old = this.f.durable;
    this.f.durable = copy;
    this.disk.release(old);
  }

  private grow(bytes: number): void {
    if (bytes <= this.f.bytes.length) return;
    const b = new Uint8Array(bytes);
    b.set(this.f.bytes);
    this.f.bytes = b;
  }
}

/** A clock that moves only when advance() is called; timers fire in time order. */
export class ManualClock implements Clock {
  private t: number;
  private timers: Array<{ at: number; fn: () => void; every: number; id: number }> = [];
  private nextId = 0;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): Timer {
    return this.add(ms, fn, 0);
  }
  every(ms: number, fn: () => void): Timer {
    return this.add(ms, fn, Math.max(1, ms));
  }
  soon(fn: () => void): void {
    queueMicrotask(fn);
  }
  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by ms, firing due timers in order (and letting their promises settle). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.t = next.at;
      if (next.every) next.at += next.every;
      else this.timers.shift();
      next.fn();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
    this.t = end;
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }

  private add(ms: number, fn: () => void, every: number): Timer {
    const timer = { at: this.t + Math.max(0, ms), fn, every, id: this.nextId++ };
    this.timers.push(timer);
    return { cancel: () => void (this.timers = this.timers.filter((x) => x !== timer)) };
  }
}
