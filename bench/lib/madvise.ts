// madvise for benchmarks that compare the kernel's readahead on a mapping (bench/ring-read.bench.ts).
import { dlopen, FFIType, ptr } from "bun:ffi";

const libc = dlopen("libc.so.6", { madvise: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 } }).symbols;

/** MADV_RANDOM (no readahead on faults) or MADV_NORMAL over a whole page-aligned mapping. */
export function adviseReadahead(mapping: Uint8Array, random: boolean): void {
  if (libc.madvise(ptr(mapping), mapping.byteLength, random ? 1 : 0) !== 0) throw new Error("madvise failed");
}
