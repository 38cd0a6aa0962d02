// Errors that refuse a start (exit 2): the operator must fix something before anything is read.

/** A command line that cannot be understood. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const START_ERRORS = new Set([
  "ConfigError",
  "UsageError",
  "DataDirLockedError",
  "DataDirError",
  "MetadataConfigError",
  "AddressInUseError",
  "RingOpenError",
]);

export function isStartError(err: unknown): boolean {
  return err instanceof Error && START_ERRORS.has(err.name);
}

/** Prints an error for the operator; returns the exit status (2 for a refused start, 1 otherwise). */
export function reportStartError(err: unknown): number {
  if (isStartError(err)) {
    process.stderr.write(`pipekit-log-collector: ${(err as Error).message}\n`);
    return 2;
  }
  process.stderr.write(`pipekit-log-collector: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}
