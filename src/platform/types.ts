// The edges of the process that the pipeline receives instead of reaching for them itself: time and
// timers here (the file system, the disk and the network have ports next to the stage that uses
// them). Production passes the real implementations from this folder; the deterministic simulation
// passes virtual ones, so that one seed replays a whole run.

/** A scheduled callback; cancel() is idempotent. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls fn once, after ms. */
  after(ms: number, fn: () => void): Timer;
  /** Calls fn every ms until cancelled. */
  every(ms: number, fn: () => void): Timer;
  /** Calls fn once pending I/O callbacks have run: a yield to the event loop (setImmediate). */
  soon(fn: () => void): void;
}

/**
 * Small files of the data dir, each replaced as a whole and durably: after write() returns, a crash
 * leaves the new content; during it, the old or the new, never a mix (checkpoints, the pod snapshot).
 */
export interface DurableFiles {
  /** Where `name` is, for messages. */
  pathOf(name: string): string;
  /** The content, or null when there is no such file. Throws on other errors. */
  read(name: string): string | null;
  /** Replaces the content; throws (ENOSPC, EIO, …) when it cannot, leaving the old content. */
  write(name: string, text: string): void;
}

/** Gzips request bodies away from the calling thread (GzipWorker). */
export interface Gzipper {
  /**
   * Gzips `input`. The result is `output.subarray(0, n)` when it fits in `output`, else fresh memory.
   * Rejects once closed or failed.
   */
  gzip(input: Uint8Array, output: Uint8Array | null): Promise<Uint8Array<ArrayBuffer>>;
  /** Ends it; jobs not finished reject. */
  close(): void;
}
