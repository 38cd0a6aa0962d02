// What the source's parts share: the injected edges (file system, clock), the log, the counters,
// the pipeline they hand lines to, and the checkpointer. Built once by Source.
import type { Config } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import type { Clock } from "../platform/types.ts";
import type { Checkpointer } from "./checkpointer.ts";
import type { GzipReader } from "./rotated.ts";
import type { SourceCounters, SourceFs, SourceOutput } from "./types.ts";

export type SourceConfig = Config["source"];

export interface SourceParts {
  readonly fs: SourceFs;
  readonly clock: Clock;
  readonly log: Logger;
  readonly counters: SourceCounters;
  readonly output: SourceOutput;
  readonly checkpoints: Checkpointer;
  /** When this process started (epoch ms; set by Source.start): at a first start, a file rotated since is no history. */
  startedAt: number;
  /** Rotated `.gz` files, read whole (a damaged one warned about once). */
  readonly gzip: GzipReader;
  /** Something changed: run a reading turn soon. */
  notify(): void;
}

export function newSourceCounters(): SourceCounters {
  return {
    linesRead: 0,
    linesMalformed: 0,
    linesTruncated: 0,
    bytesRead: 0,
    filesAdded: 0,
    filesRotated: 0,
    filesTruncated: 0,
    filesDeleted: 0,
    filesSkipped: 0,
    filesGivenUp: 0,
    bytesLost: 0,
    filesRecovered: 0,
    filesMissedRotated: 0,
    partialFlushTimeouts: 0,
    watchdogReopens: 0,
    watcherErrors: 0,
    checkpointWrites: 0,
    checkpointWriteErrors: 0,
    checkpointsPruned: 0,
    wakeups: 0,
    filesWatched: 0,
    filesHeld: 0,
    deletedHeldBytes: 0,
    lagBytes: 0,
  };
}
