// A file's identity beyond device + inode (inodes are reused at once): a hash of its first bytes.
import type { SourceFs } from "./types.ts";

/** How much of a file's head the fingerprint covers once the file has that many bytes. */
export const FINGERPRINT_BYTES = 1024;

export interface Fingerprint {
  /** Bytes hashed (0: none yet, matches anything). */
  fpLen: number;
  fpHash: number;
}

/** FNV-1a over a byte range (not cryptographic; detects inode reuse). */
export function fingerprint(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The fingerprint of the first min(length, FINGERPRINT_BYTES) bytes of `mem`. */
export function bytesFingerprint(mem: Uint8Array): Fingerprint {
  const len = Math.min(mem.length, FINGERPRINT_BYTES);
  return { fpLen: len, fpHash: fingerprint(mem.subarray(0, len)) };
}

/** Whether the first fp.fpLen bytes of `mem` hash to fp.fpHash. */
export function bytesHeadMatches(mem: Uint8Array, fp: Fingerprint): boolean {
  if (fp.fpLen === 0) return true;
  return mem.length >= fp.fpLen && fingerprint(mem.subarray(0, fp.fpLen)) === fp.fpHash;
}

/** Whether the head of the open file `fd` matches. */
export function fdHeadMatches(fs: SourceFs, fd: number, fp: Fingerprint): boolean {
  if (fp.fpLen === 0) return true;
  const head = new Uint8Array(fp.fpLen);
  if (fs.read(fd, head, 0, fp.fpLen, 0) !== fp.fpLen) return false;
  return fingerprint(head) === fp.fpHash;
}

/** Whether the head of the file at `path` matches (false when it cannot be read). */
export function pathHeadMatches(fs: SourceFs, path: string, fp: Fingerprint): boolean {
  return withOpenFile(fs, path, false, (fd) => fdHeadMatches(fs, fd, fp));
}

/** The fingerprint of the first min(size, FINGERPRINT_BYTES) bytes of `fd`, or null if it cannot be read whole. */
export function readFingerprint(fs: SourceFs, fd: number, size: number): Fingerprint | null {
  const len = Math.min(size, FINGERPRINT_BYTES);
  const head = new Uint8Array(len);
  try {
    if (fs.read(fd, head, 0, len, 0) !== len) return null;
  } catch {
    return null;
  }
  return { fpLen: len, fpHash: fingerprint(head) };
}

/** The fingerprint of the head of the file at `path` (of `size` bytes), or null if it cannot be read. */
export function pathFingerprint(fs: SourceFs, path: string, size: number): Fingerprint | null {
  return withOpenFile(fs, path, null, (fd) => readFingerprint(fs, fd, size));
}

/** `use` of the file at `path` opened for the call, or `failed` when it cannot be opened or read. */
function withOpenFile<T>(fs: SourceFs, path: string, failed: T, use: (fd: number) => T): T {
  let fd: number;
  try {
    fd = fs.open(path);
  } catch {
    return failed;
  }
  try {
    return use(fd);
  } catch {
    return failed;
  } finally {
    fs.close(fd);
  }
}
