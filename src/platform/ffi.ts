// libc calls that Node's fs does not offer (flock, posix_fallocate), through bun:ffi.
// bun:ffi works in `bun build --compile` executables; no native addon is needed.
import { dlopen, FFIType, read } from "bun:ffi";

const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

const symbols = {
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  posix_fallocate: { args: [FFIType.i32, FFIType.i64, FFIType.i64], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

type Libc = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
let libc: Libc | null = null;

function loadLibc(): Libc {
  if (libc) return libc;
  const errors: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      libc = dlopen(name, symbols).symbols;
      return libc;
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  }
  throw new Error(`cannot load the C library through bun:ffi (${errors.join("; ")})`);
}

function errno(): number {
  const p = loadLibc().__errno_location();
  return p ? read.i32(p, 0) : 0;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 4: "EINTR", 5: "EIO", 9: "EBADF", 11: "EWOULDBLOCK", 22: "EINVAL", 27: "EFBIG",
  28: "ENOSPC", 30: "EROFS", 37: "ENOLCK", 95: "EOPNOTSUPP", 122: "EDQUOT",
};
export function errnoName(code: number): string {
  return ERRNO_NAMES[code] ?? `errno ${code}`;
}

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;
const EINTR = 4;

/**
 * Non-blocking exclusive flock on fd. Returns true when acquired, false when another open file
 * description (another process, or another open in this one) holds it; throws on other errors.
 */
export function tryFlockExclusive(fd: number): boolean {
  const lib = loadLibc();
  for (;;) {
    if (lib.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EWOULDBLOCK) return false;
    throw new Error(`flock failed: ${errnoName(e)}`);
  }
}

/**
 * Allocates real blocks for [offset, offset+length) so a full disk shows now, not as a SIGBUS
 * later when a page of the mapping is first written. Returns 0 or an errno (posix_fallocate
 * reports its error as the return value, not through errno).
 */
export function posixFallocate(fd: number, offset: number, length: number): number {
  return loadLibc().posix_fallocate(fd, offset, length);
}
