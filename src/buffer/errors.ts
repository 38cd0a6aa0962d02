// The ring's errors. A RingOpenError refuses the start (the CLI exits 2).

export class RingError extends Error {
  override name = "RingError";
}

/** The ring cannot be opened (data dir unusable, disk full): a refused start (the CLI exits 2). */
export class RingOpenError extends RingError {
  override name = "RingOpenError";
}

export class RingClosedError extends Error {
  override name = "RingClosedError";
  constructor() {
    super("the ring is closed");
  }
}

/** An I/O error as "CODE: message" (or the error as text). */
export function describeIoError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}: ${err.message}` : String(e);
}
