// The memory-mapped ring file (docs/ring-format.md): opening it. Crash-only: every open
// recovers, whatever the last run left — a missing file is created, a file whose two headers are
// both unreadable gets a header rebuilt from its records (or, holding none, is moved aside and
// replaced), a truncated one gets its length back, one of another size is resized keeping every
// record, and the scan (recovery.ts) cuts a torn tail and skips damage. The open ring is a
// RingFile (ring-file.ts).
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { systemClock } from "../platform/clock.ts";
import { diskRingStorage } from "../platform/ring-storage.ts";
import type { Clock } from "../platform/types.ts";
import { RingError, RingOpenError, describeIoError } from "./errors.ts";
import { DATA_OFFSET, fileBytesFor, pickHeader } from "./format.ts";
import { RingFile, type RecoveryCounts } from "./ring-file.ts";
import { createRingFile, moveAside, preallocate, rebuildHeader, resizeRingFile } from "./ring-files.ts";
import { REBASE_AT_BYTES } from "./ring-sync.ts";
import type { Ring, RingStorage, RingTraffic } from "./types.ts";

export { RingClosedError, RingError, RingOpenError } from "./errors.ts";

export const RING_FILE = "ring.dat";

export interface OpenRingOptions {
  dir: string;
  /** buffer.maxBytes: the size of the file, headers included. */
  capacityBytes: number;
  syncIntervalMs: number;
  log?: Logger;
  /** Observes the bytes appended and handed out (the collector's GC pacing, gc-pacer.ts). */
  traffic?: RingTraffic;
  /** Time for the sync timer and the blocked-time statistics (default: the system clock). */
  clock?: Clock;
  /** The disk (default: the real file system at `dir`). */
  storage?: RingStorage;
  /** Rebase logical positions once the durable read position reaches this (default REBASE_AT_BYTES). */
  rebaseAtBytes?: number;
}

const noopLog: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => noopLog };

export async function openRing(opts: OpenRingOptions): Promise<Ring> {
  try {
    return await openRingFile(opts);
  } catch (e) {
    if (e instanceof RingError) throw e;
    throw new RingOpenError(`cannot open the ring in ${opts.dir}: ${describeIoError(e)}`);
  }
}

async function openRingFile(opts: OpenRingOptions): Promise<Ring> {
  const log = opts.log ?? noopLog;
  const clock = opts.clock ?? systemClock;
  const storage = opts.storage ?? diskRingStorage(opts.dir);
  const path = join(opts.dir, RING_FILE);
  const wantFileBytes = fileBytesFor(opts.capacityBytes);
  const counts: RecoveryCounts = { skippedRecords: 0, skippedBytes: 0, cutRecords: 0, cutBytes: 0, movedAsideFiles: 0, movedAsideBytes: 0 };
  const open = () =>
    RingFile.open(storage, RING_FILE, { syncIntervalMs: opts.syncIntervalMs, rebaseAtBytes: opts.rebaseAtBytes ?? REBASE_AT_BYTES, clock, traffic: opts.traffic, log }, counts);

  try {
    storage.makeDir();
    // An interrupted create or resize.
    for (const leftover of [`${RING_FILE}.tmp`, `${RING_FILE}.tmp.tmp`]) if (storage.exists(leftover)) storage.remove(leftover);
  } catch (e) {
    throw new RingOpenError(`cannot use the data dir ${opts.dir} for the ring: ${describeIoError(e)}`);
  }
  if (!storage.exists(RING_FILE)) {
    createRingFile(storage, RING_FILE, wantFileBytes, 1);
    log.info("created ring file", { path, bytes: wantFileBytes });
    return open();
  }
  const checked = checkHeader(storage, path, log);
  const size = checked.size;
  let picked = checked.picked;
  if (picked.kind !== "valid") {
    const reason = picked.kind === "no-magic" ? (size <= DATA_OFFSET ? `too short (${size} bytes)` : "no ring header (wrong magic)") : `both header copies damaged (${picked.reason})`;
    // The records may still be there, checksummed and numbered: move aside only what cannot be read.
    const setAside = size > DATA_OFFSET ? rebuildHeader(storage, RING_FILE, reason, clock, log) : 0;
    if (setAside === 0) {
      moveAside(storage, RING_FILE, reason, clock, log);
      counts.movedAsideFiles++;
      counts.movedAsideBytes += size;
      createRingFile(storage, RING_FILE, wantFileBytes, 1);
      return open();
    }
    counts.movedAsideFiles++;
    counts.movedAsideBytes += setAside;
    storage.releaseMappings(); // the search's mapping of the file, now
    picked = checkHeader(storage, path, log).picked;
    if (picked.kind !== "valid") throw new RingError(`ring file ${path}: the rebuilt header does not read back`);
  }
  if (picked.otherDamaged) log.warn("one ring header copy is damaged; using the other", { path });
  if (picked.header.fileBytes !== wantFileBytes) {
    const resized = resizeRingFile(storage, RING_FILE, wantFileBytes, log, counts);
    if (resized) storage.releaseMappings(); // unmap the old file's pages now
  }
  return open();
}

/**
 * Reads the header of an existing ring file through read(2), before mapping it (a mapping of a
 * short file faults: SIGBUS), and gives a file of the wrong length the length its header says.
 */
function checkHeader(storage: RingStorage, path: string, log: Logger): { picked: ReturnType<typeof pickHeader>; size: number } {
  let file;
  try {
    file = storage.open(RING_FILE);
  } catch (e) {
    throw new RingOpenError(`cannot open the ring file ${path}: ${describeIoError(e)}`);
  }
  try {
    const size = file.size();
    const head = new Uint8Array(DATA_OFFSET);
    const n = file.read(head, 0);
    const picked = pickHeader(new DataView(head.buffer, 0, n));
    if (picked.kind === "valid" && size !== picked.header.fileBytes) {
      if (size < picked.header.fileBytes) {
        log.warn("ring file is shorter than its header says (truncated); restoring its length, missing records will be cut", {
          path,
          bytes: size,
          expectedBytes: picked.header.fileBytes,
        });
        preallocate(file, picked.header.fileBytes, path);
      } else {
        file.truncate(picked.header.fileBytes);
      }
      file.sync();
    }
    return { picked, size };
  } finally {
    file.close();
  }
}
