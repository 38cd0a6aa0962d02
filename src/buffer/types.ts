// The ring's interface, as the source (producer) and the sink (consumer) see it (docs/ring-format.md), and the
// ports the ring is given: its disk (RingStorage) and an observer of its traffic (RingTraffic).
// Sequence numbers start at 1 and are consecutive for the lifetime of the ring file.

/**
 * Records handed out by readRanges: where they sit in the ring's data region, not a view per
 * record (a view object per record was the collector's largest source of live garbage).
 * Record i is data[offsets[2i], offsets[2i + 1]); valid only until acknowledged (the writer may
 * reuse the space after that), so a reader copies them (splices them into a body) before ack.
 */
export interface RingRanges {
  firstSeq: number;
  count: number;
  /** Sum of record lengths. */
  bytes: number;
  /** The ring's data region; a Buffer so that records can be copied out without a view (Buffer.copy). */
  data: Buffer;
  offsets: Uint32Array;
}

/**
 * Serialised records packed back to back in one buffer (the router's encoding output):
 * record i is bytes[i === 0 ? 0 : ends[i - 1], ends[i]), for i < count.
 */
export interface PackedRecords {
  bytes: Uint8Array;
  ends: Uint32Array;
  count: number;
}

export interface RingStats {
  capacityBytes: number;
  usedBytes: number;
  /** Records not acknowledged (those acknowledged beyond the read position still take room: usedBytes). */
  records: number;
  /** Sequence numbers: next to append, oldest unacknowledged, last durable. */
  nextSeq: number;
  readSeq: number;
  durableSeq: number;
  appendedRecords: number;
  ackedRecords: number;
  /** Damage found when the file was opened. */
  recoverySkippedRecords: number;
  recoverySkippedBytes: number;
  recoveryCutBytes: number;
  /** Total milliseconds appenders spent waiting on a full ring; whether one waits now. */
  blockedMs: number;
  full: boolean;
  lastSyncMs: number;
  syncs: number;
  // Added by the ring implementation (optional so that fakes need not provide them).
  /** Records cut as a torn tail when the file was opened (recoveryCutBytes says how many bytes). */
  recoveryCutRecords?: number;
  /** Files moved aside at open because they were no ring file (or both headers were damaged), and their bytes. */
  recoveryMovedAsideFiles?: number;
  recoveryMovedAsideBytes?: number;
  /** Total milliseconds spent in fdatasync. */
  syncTotalMs?: number;
  /** Payload bytes appended since open. */
  appendedBytes?: number;
  /** Size of the ring file (capacityBytes is its data region: the file minus the two headers). */
  fileBytes?: number;
}

export interface Ring {
  /**
   * Appends serialised records, packed in one buffer, in order; resolves with the sequence number
   * of the last one once they are in the file (not yet durable). Waits while the ring is full
   * (backpressure). A single record larger than the ring can ever hold rejects with an error.
   * The ring copies whatever it still needs before this call returns, so the caller may overwrite
   * `records` as soon as it returns (not resolves).
   */
  appendPacked(records: PackedRecords): Promise<number>;
  /** The largest record (payload bytes) the ring can ever hold. */
  maxRecordBytes(): number;
  /** Sequence number of the last appended record (0 when none ever). */
  lastSeq(): number;
  /**
   * The next records not yet handed to a reader, oldest first, at most maxRecords and maxBytes
   * (at least one record if any is available, even above maxBytes), as ranges of the data region;
   * null when none is waiting. A reopened ring hands out again everything not acknowledged by the
   * last header write before it closed or crashed (read position and acknowledged ranges).
   */
  readRanges(maxRecords: number, maxBytes: number): RingRanges | null;
  /** Resolves when readRanges() would return something (or the ring closes). */
  waitForData(): Promise<void>;
  /**
   * Acknowledges records in any order; the read position advances over the contiguous acked prefix,
   * and the next sync's header lists the acknowledged ranges beyond it (a restart skips those).
   */
  ack(firstSeq: number, count: number): void;
  /** fdatasync now; then notifies durable listeners. */
  sync(): Promise<void>;
  /** Highest sequence number known to be on disk (after a completed sync). */
  durableSeq(): number;
  /** Called after each sync that made new records durable; returns an unsubscribe function. */
  onDurable(listener: (seq: number) => void): () => void;
  stats(): RingStats;
  /** Final sync and unmap. */
  close(): Promise<void>;
}

/**
 * Observes the payload bytes passing through the ring: appended, and handed out to the reader.
 * Called synchronously on the append and read paths, once per call (not per record).
 * The collector's GC pacing (gc-pacer.ts) is one: garbage grows with this traffic.
 */
export interface RingTraffic {
  moved(bytes: number): void;
}

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
