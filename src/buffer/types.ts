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
  /** The read position's sequence number in the last header on disk: a restart hands out nothing older. */
  durableReadSeq?: number;
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
  /**
   * How old the oldest change not yet durable may be: milliseconds since the header of the last
   * completed sync was taken, 0 when nothing changed since. What a crash now reads and sends again.
   */
  unsyncedMs?: number;
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
  /**
   * Calls visit for every record a restart would hand out now — from the read position on, not
   * acknowledged — oldest first; record bytes are data[start, end), valid during the call only.
   * Hands nothing out (the prefix table reads which prefixes the ring still uses at open).
   */
  forEachUnread(visit: (seq: number, data: Uint8Array, start: number, end: number) => void): void;
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

export type { RingFileHandle, RingStorage } from "../platform/types.ts";
