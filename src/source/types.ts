// The source stage's contracts: what it hands the pipeline (file info, decisions, lines), what it
// needs from it (SourceOutput), and the file system port it reads through. The real file system is
// src/platform/source-fs.ts; the deterministic simulation passes a simulated one.
import type { Stream } from "./line-format.ts";
import type { PodLogPath } from "./paths.ts";

export interface SourceFileInfo extends PodLogPath {
  /**
   * Identifies one followed file for as long as anything refers to it: device:inode:serial (inode
   * numbers are reused at once, so device:inode alone may name a later file too).
   */
  id: string;
  path: string;
  /** When the collector first saw this file (ms): the start of its metadata wait. */
  firstSeenAt: number;
}

/** read: read and emit lines; hold: keep it open, do not read yet; skip: never read it. */
export type FileDecision = "read" | "hold" | "skip";

/** One complete log line, partials merged. */
export interface MergedLine {
  timestamp: string;
  stream: Stream;
  message: string;
  truncated: boolean;
}

/** Receives the lines of a batch in file order (Lines.visit). */
export interface LineVisitor {
  /**
   * A complete CRI line kept as bytes, not decoded: timestamp chunk[tsStart, tsEnd), content
   * chunk[contentStart, contentEnd) (raw, possibly invalid UTF-8). `index` is its place in the batch:
   * Lines.line(index) decodes it as the string path would.
   */
  range(chunk: Uint8Array, tsStart: number, tsEnd: number, stderr: boolean, contentStart: number, contentEnd: number, index: number): void;
  /** A line that was merged, decoded or is otherwise unusual. */
  merged(line: MergedLine, index: number): void;
}

/**
 * The lines of one slice of one file, as the source hands them over. Byte ranges point into the
 * source's read buffer: consume the batch before the emit that carried it resolves.
 */
export interface Lines {
  readonly length: number;
  /** Line i decoded as a MergedLine. */
  line(i: number): MergedLine;
  /** Every line in order, as bytes where the source kept bytes. */
  visit(visitor: LineVisitor): void;
}

/** What the source needs from the rest of the pipeline. */
export interface SourceOutput {
  decide(file: SourceFileInfo, now: number): FileDecision;
  /** Takes a file's lines; resolves (after any backpressure) with the ring sequence number that covers them. */
  emit(file: SourceFileInfo, lines: Lines): Promise<number>;
  /** The file is followed from now on: its pod's metadata must outlive a deletion until it is closed. */
  opened?(file: SourceFileInfo): void;
  /** The file is closed for good (drained, given up or skipped). */
  closed?(file: SourceFileInfo): void;
}

/** Plain numbers for /status and /metrics: `*Total`-like counters only grow; the rest are gauges. */
export interface SourceCounters {
  linesRead: number;
  linesMalformed: number;
  linesTruncated: number;
  bytesRead: number;
  filesAdded: number;
  filesRotated: number;
  filesTruncated: number;
  filesDeleted: number;
  filesSkipped: number;
  /** Deleted-but-open files closed unread because of maxDeletedHeldBytes. */
  filesGivenUp: number;
  /** Unread bytes of given-up files. */
  bytesLost: number;
  /** Rotated files (plain or .gz) read after downtime to finish a checkpointed file. */
  filesRecovered: number;
  /** Files created and rotated before we opened them, read under their rotated name. */
  filesMissedRotated: number;
  partialFlushTimeouts: number;
  watchdogReopens: number;
  watcherErrors: number;
  checkpointWrites: number;
  /** Checkpoint saves that failed (a full disk, say): the previous checkpoints stay. */
  checkpointWriteErrors: number;
  checkpointsPruned: number;
  /** Times the reading loop or the scan timer woke up (idle cost). */
  wakeups: number;
  /** Gauges. */
  filesWatched: number;
  filesHeld: number;
  deletedHeldBytes: number;
  lagBytes: number;
}

/** One watched file as /status shows it. */
export interface SourceFileStatus {
  path: string;
  namespace: string;
  pod: string;
  podUid: string;
  container: string;
  restart: number;
  state: "active" | "draining" | "held" | "waiting-predecessor";
  deleted: boolean;
  /** Checkpoint: everything before it is safe. */
  offset: number;
  readOffset: number;
  size: number;
  /** size − checkpoint. */
  lag: number;
}

export type { FileStat, SourceFs, TreeWatch, TreeWatchHandlers } from "../platform/types.ts";

/** Whether checkpoints can be saved: since when they cannot, and why (null: they can). */
export interface CheckpointHealth {
  failingSince: number | null;
  lastError: string | null;
}


/**
 * Where one stream of a container stood at a checkpoint's offset (docs/source.md, "Lines of both
 * streams overlapping"): between two lines; inside a line not delivered yet whose head is in an
 * earlier file (what the reader brings from that file goes on here); or inside a line delivered
 * already, whose fragments in this file begin before the number given (skipped when resumed here).
 */
export type StreamResume = "between" | "inside" | number;

/** Where both streams stood at a checkpoint's offset. */
export interface ResumeStreams {
  stdout: StreamResume;
  stderr: StreamResume;
}

/** A file's saved position (the checkpoint of the watermark), with what identifies the file. */
export interface FileCheckpoint {
  /** The identity of the file: device + inode + fingerprint of its first bytes. */
  dev: number;
  ino: number;
  fpLen: number;
  fpHash: number;
  /** Last live path seen (for status and for finding it rotated after downtime). */
  path: string;
  offset: number;
  /** Where each stream stood at `offset` (absent: not known, as from an older version). */
  streams?: ResumeStreams;
  /** Size when last saved. */
  size?: number;
  /** Read to its end and closed: kept a while so that the file is recognised rotated or compressed. */
  done?: boolean;
}

/** What a checkpoint file holds. */
export interface SavedCheckpoints {
  files: FileCheckpoint[];
  /** When it was saved (epoch ms; null: unknown, an older file). */
  savedAt: number | null;
}

/** Where checkpoints persist: replaced atomically as a whole (a crash leaves the old or the new set). */
export interface CheckpointStorage {
  /** Where it is, for messages. */
  readonly path: string;
  /** The saved checkpoints; a damaged file is reported through onError and treated as empty. */
  load(onError: (msg: string) => void): SavedCheckpoints;
  save(saved: SavedCheckpoints): void;
}
