// One followed file: its descriptor (or, for a .gz read after downtime, its decompressed bytes),
// where reading stands, its line reader, its watermark and its place in its container's rotation.
// It reads through the descriptor, never the path: after a rotation the path is another file.
import type { Logger } from "../log.ts";
import { checkpointKey } from "./checkpoints.ts";
import { type Fingerprint, FINGERPRINT_BYTES, readFingerprint } from "./fingerprint.ts";
import type { LineBatch } from "./line-batch.ts";
import type { LineReader } from "./line-reader.ts";
import type { PartialMerger } from "./partial.ts";
import type { ResumeStreams, SourceFileInfo, SourceFileStatus, SourceFs } from "./types.ts";
import { Watermark } from "./watermark.ts";

/** What a read found at the end of a file, for the source to act on. */
export interface TailEvents {
  /** The file is shorter than where reading stood: it was truncated in place (now read from 0). */
  truncated(file: TailedFile, readOffset: number): void;
  /** Its last link is gone (nlink 0): deleted, readable only through the descriptor. */
  unlinked(file: TailedFile): void;
}

export interface TailedFileInit {
  serial: string;
  info: SourceFileInfo;
  livePath: string;
  containerKey: string;
  fd: number;
  mem: Uint8Array | null;
  dev: number;
  ino: number;
  size: number;
  start: number;
  /** Where each stream stood at `start` (resumed at a checkpoint that says), else null. */
  streams: ResumeStreams | null;
  fp: Fingerprint;
  order: number;
  reader: LineReader;
}

export class TailedFile {
  /** Unique per opened file (inodes are reused; this is not). */
  readonly serial: string;
  readonly info: SourceFileInfo;
  /** The live name (`…/N.log`) this file had: checkpoint path and rotated-sibling lookup. */
  readonly livePath: string;
  /** Live paths naming it now (more than one through symlinks). */
  readonly paths = new Set<string>();
  readonly containerKey: string;
  readonly dev: number;
  readonly ino: number;
  /** device:inode (the checkpoint's key; the file under any of its paths). */
  readonly inodeKey: string;
  readonly reader: LineReader;
  readonly watermark: Watermark;
  /** Read through this descriptor (-1: closed), or from `mem` (a decompressed .gz after downtime). */
  fd: number;
  mem: Uint8Array | null;
  /** Next byte to read. */
  readPos: number;
  /** Size at the last fstat. */
  size: number;
  /** draining: rotated away or deleted; read to its end, then closed. */
  state: "active" | "draining" = "active";
  /** Will not grow again: closed at its end without waiting for a successor. */
  final = false;
  drainingSince = 0;
  deleted = false;
  deletedAt = 0;
  /** Held by the pipeline (waiting for metadata): open, not read. */
  held = false;
  /** Waits for an older file of the same container (its rotated predecessor) to be drained. */
  blocked = false;
  /** There may be bytes to read (an event, a scan, or the last read filled a slice). */
  dirty = true;
  /** Reading order among files of one container instance (older first). */
  order: number;
  fp: Fingerprint;
  /** Closed and out of the table (a retired file may still hold a checkpoint). */
  gone = false;
  /** Started at its end (readFrom: end, present at start, no checkpoint). */
  fromEnd = false;
  /** Watchdog: since when reading has not moved while the file is longer. */
  stuckSince: number | null = null;
  stuckAtPos = 0;

  constructor(
    init: TailedFileInit,
    private readonly fs: SourceFs,
    private readonly events: TailEvents,
  ) {
    this.serial = init.serial;
    this.info = init.info;
    this.livePath = init.livePath;
    this.containerKey = init.containerKey;
    this.fd = init.fd;
    this.mem = init.mem;
    this.dev = init.dev;
    this.ino = init.ino;
    this.inodeKey = checkpointKey(init.dev, init.ino);
    this.size = init.size;
    this.readPos = init.start;
    this.watermark = new Watermark(init.start, init.streams);
    this.fp = init.fp;
    this.order = init.order;
    this.reader = init.reader;
  }

  /**
   * The first offset not safe yet — the reader's line end, or the first fragment here of a line not
   * emitted — and where each stream stands there (PartialMerger.resumeAt).
   */
  safePoint(merger: PartialMerger): { offset: number; streams: ResumeStreams | null } {
    // Resumed at a checkpoint and no line read yet: still there.
    const resume = this.reader.resumeNotApplied;
    if (resume) return { offset: this.reader.lineEnd, streams: resume };
    return merger.resumeAt(this.containerKey, this.serial, this.reader.lineEnd);
  }

  /** Reads one slice into `out` through `buf`; returns the bytes read (0 at the end, or on an error, which is logged). */
  readSlice(buf: Uint8Array, now: number, out: LineBatch, log: Logger): number {
    if (this.mem) {
      const n = Math.min(buf.length, this.mem.length - this.readPos);
      if (n <= 0) return 0;
      const chunk = this.mem.subarray(this.readPos, this.readPos + n);
      this.readPos += n;
      this.reader.feed(chunk, now, out);
      return n;
    }
    if (this.fd < 0) return 0;
    const carried = this.reader.carryInto(buf);
    const at = Math.max(0, carried);
    let n: number;
    try {
      n = this.fs.read(this.fd, buf, at, buf.length - at, this.readPos);
    } catch (err) {
      log.warn("read failed", { path: this.info.path, error: (err as NodeJS.ErrnoException).code });
      return 0;
    }
    if (n === 0) {
      this.atEnd();
      return 0;
    }
    this.readPos += n;
    if (this.readPos > this.size) this.size = this.readPos;
    this.stuckSince = null;
    this.reader.feed(buf.subarray(0, at + n), now, out, carried >= 0);
    return n;
  }

  /** At the end of what was written: is the file shorter than our position, or deleted? */
  private atEnd(): void {
    const st = this.fs.fstat(this.fd);
    this.size = st.size;
    if (st.size < this.readPos) {
      const at = this.readPos;
      this.readPos = 0;
      this.reader.reset(0);
      this.watermark.reset(0);
      this.fp = { fpLen: 0, fpHash: 0 };
      this.dirty = true;
      this.events.truncated(this, at);
    }
    if (st.nlink === 0) this.events.unlinked(this);
  }

  /** Refreshes the size through the descriptor (a scan); reports a deletion. */
  refreshSize(): void {
    if (this.fd < 0) return;
    let nlink: number;
    try {
      const st = this.fs.fstat(this.fd);
      this.size = st.size;
      nlink = st.nlink;
    } catch {
      return; // closed meanwhile
    }
    if (nlink === 0) this.events.unlinked(this);
  }

  /** The number of links the file has now (1 when it cannot be told). */
  links(): number {
    if (this.fd < 0) return 1;
    try {
      return this.fs.fstat(this.fd).nlink;
    } catch {
      return 1;
    }
  }

  /** Its last live path is gone (rotated or deleted): read it to its end, then close it. */
  startDraining(now: number): boolean {
    if (this.state !== "active") return false;
    this.state = "draining";
    this.drainingSince = now;
    this.dirty = true;
    return true;
  }

  /**
   * Whether a draining file will not grow again: it is final or deleted, the runtime has written to
   * its successor (so it reopened), or it has drained for longer than `graceMs`.
   */
  drained(now: number, graceMs: number, successor: TailedFile | undefined): boolean {
    if (this.final || this.deleted) return true;
    if (now - this.drainingSince >= graceMs) return true;
    if (!successor || successor === this || successor.fd < 0) return false;
    try {
      successor.size = Math.max(successor.size, this.fs.fstat(successor.fd).size);
    } catch {
      return false;
    }
    return successor.size > 0;
  }

  /** The fingerprint covers the first FINGERPRINT_BYTES of the file once it has them. */
  updateFingerprint(): void {
    if (this.fd < 0 || this.fp.fpLen >= FINGERPRINT_BYTES || this.size <= this.fp.fpLen) return;
    const fp = readFingerprint(this.fs, this.fd, this.size);
    if (fp) this.fp = fp;
  }

  /**
   * Reads again from the last complete line, through a fresh descriptor of the same file when one of
   * its paths still names it (the watchdog's remedy for a reader that stopped advancing).
   */
  reopen(): void {
    const path = [...this.paths][0];
    if (path) {
      try {
        const fd = this.fs.open(path);
        const st = this.fs.fstat(fd);
        if (st.dev === this.dev && st.ino === this.ino) {
          this.closeDescriptor();
          this.fd = fd;
        } else this.fs.close(fd); // the path names another file now: keep reading ours through its descriptor
      } catch {
        // keep the old descriptor
      }
    }
    this.readPos = this.reader.lineEnd;
    this.reader.reset(this.readPos);
    this.stuckSince = null;
    this.dirty = true;
  }

  /** Reads from the first byte after all (a live file that turns out to follow recovered rotated ones). */
  rewind(): void {
    this.fromEnd = false;
    this.readPos = 0;
    this.reader.reset(0);
    this.watermark.reset(0);
  }

  /** Closes the descriptor and drops decompressed bytes: nothing more is read. */
  close(): void {
    this.closeDescriptor();
    this.mem = null;
  }

  private closeDescriptor(): void {
    if (this.fd < 0) return;
    try {
      this.fs.close(this.fd);
    } catch {
      // already closed
    }
    this.fd = -1;
  }

  status(): SourceFileStatus {
    const i = this.info;
    const offset = this.watermark.checkpoint;
    return {
      path: i.path,
      namespace: i.namespace,
      pod: i.podName,
      podUid: i.podUid,
      container: i.container,
      restart: i.restart,
      state: this.held ? "held" : this.blocked ? "waiting-predecessor" : this.state,
      deleted: this.deleted,
      offset,
      readOffset: this.readPos,
      size: this.size,
      lag: Math.max(0, this.size - offset),
    };
  }
}
