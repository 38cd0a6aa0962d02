// The one place that calls Bun.mmap and Bun.gc. A MAP_SHARED mapping of a file: writes go to the page
// cache and reach the disk on fdatasync of any descriptor of the file (Linux), or on writeback.
// Unmapping happens when the array is garbage collected: callers drop every reference.

export function mapFile(path: string, offset = 0, size?: number): Uint8Array<ArrayBuffer> {
  const opts: { shared: boolean; offset?: number; size?: number } = { shared: true };
  if (offset) opts.offset = offset;
  if (size !== undefined) opts.size = size;
  return Bun.mmap(path, opts);
}

/** Asks the runtime for a collection so dropped mappings and garbage are released now. */
export function collectGarbage(full: boolean): void {
  Bun.gc(full);
}
