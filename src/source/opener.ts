// Opening a file to follow: a live file at its checkpoint (when its identity matches one from the
// last run), at its start or, for files present at start with `readFrom: end`, at its end; a rotated
// file (plain or decompressed .gz) from its checkpoint or from its first byte.
import type { SourceConfig, SourceParts } from "./context.ts";
import type { FileSet } from "./file-set.ts";
import { checkpointKey } from "./checkpoints.ts";
import { bytesFingerprint, FINGERPRINT_BYTES, type Fingerprint, fdHeadMatches } from "./fingerprint.ts";
import type { PodLogPath } from "./paths.ts";
import type { GzipFile } from "./rotated.ts";
import type { TailedFile } from "./tailed-file.ts";
import type { FileCheckpoint } from "./types.ts";

const NO_FINGERPRINT: Fingerprint = { fpLen: 0, fpHash: 0 };

export class Opener {
  constructor(
    private readonly parts: SourceParts,
    private readonly config: SourceConfig,
    private readonly files: FileSet,
  ) {}

  /**
   * Opens a live file found at `path` (atStart: present at start, for `readFrom: end`; fromFirstByte:
   * read whole even if its checkpoint matches, as the rotated files before it are).
   */
  openLive(path: string, parsed: PodLogPath, atStart: boolean, fromFirstByte = false): void {
    const { fs, log } = this.parts;
    let fd: number;
    try {
      fd = fs.open(path);
    } catch (err) {
      log.warn("cannot open log file", { path, error: (err as NodeJS.ErrnoException).code });
      return;
    }
    const st = fs.fstat(fd);
    const id = checkpointKey(st.dev, st.ino);
    if (this.files.byInode.has(id)) {
      fs.close(fd); // raced with another path to the same file
      return;
    }
    let start = 0;
    let streams: FileCheckpoint["streams"];
    let fp = NO_FINGERPRINT;
    let fromEnd = false;
    const saved = this.parts.checkpoints.claim(st.dev, st.ino, (cp) => fdHeadMatches(fs, fd, cp));
    if (saved) {
      start = saved.offset <= st.size && !fromFirstByte ? saved.offset : 0;
      if (start === saved.offset) streams = saved.streams;
      fp = { fpLen: saved.fpLen, fpHash: saved.fpHash };
    } else if (atStart && this.config.readFrom === "end") {
      start = st.size;
      fromEnd = true;
    }
    const f = this.files.track({ path, livePath: path, parsed, fd, mem: null, dev: st.dev, ino: st.ino, size: st.size, start, streams, fp });
    f.fromEnd = fromEnd;
    this.files.link(path, f);
    this.files.byInode.set(id, f);
    log.debug("following file", { path, offset: start });
  }

  /**
   * Opens a rotated file to read it to its end and close it: from the checkpoint `cp` it had when it
   * was live, or whole. `gz` is a .gz, read already: its content is final. A plain one may still take the
   * runtime's last writes (kubelet renames, then asks the runtime to reopen): it is closed like any
   * rotated file, once its successor has bytes or after the grace. Null when it cannot be opened, or
   * a .gz has nothing unread.
   */
  openRotated(path: string, gz: GzipFile | null, livePath: string, parsed: PodLogPath, cp: FileCheckpoint | null): TailedFile | null {
    const fs = this.parts.fs;
    const mem = gz?.bytes ?? null;
    let fd = -1;
    let dev: number;
    let ino: number;
    let size: number;
    if (gz) {
      size = gz.bytes.length;
      // Keep the identity the checkpoint knew (the .gz is a new inode; its content is the same file).
      dev = cp?.dev ?? gz.dev;
      ino = cp?.ino ?? gz.ino;
    } else {
      try {
        fd = fs.open(path);
      } catch {
        return null;
      }
      const st = fs.fstat(fd);
      dev = st.dev;
      ino = st.ino;
      size = st.size;
    }
    const start = cp ? Math.min(cp.offset, size) : 0;
    const streams = cp && start === cp.offset ? cp.streams : undefined;
    if (start >= size && mem) return null; // nothing unread (a plain file may still grow)
    let fp = cp ? { fpLen: cp.fpLen, fpHash: cp.fpHash } : NO_FINGERPRINT;
    // A .gz is not read through a descriptor, so nothing fingerprints it later: its head does now (a
    // checkpoint without one would match any .gz of its container after a restart).
    if (mem && fp.fpLen < Math.min(mem.length, FINGERPRINT_BYTES)) fp = bytesFingerprint(mem);
    const f = this.files.track({ path, livePath, parsed, fd, mem, dev, ino, size, start, streams, fp });
    f.startDraining(this.parts.clock.now());
    f.final = mem !== null;
    if (fd >= 0) this.files.byInode.set(f.inodeKey, f);
    return f;
  }
}
