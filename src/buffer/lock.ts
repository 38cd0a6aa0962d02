// One collector per data dir: an flock on <dir>/lock held for the life of the process. The kernel
// drops it when the process dies, however it dies, so a stale lock never blocks a restart.
import { closeSync, constants, mkdirSync, openSync, accessSync } from "node:fs";
import { join } from "node:path";
import { tryFlockExclusive } from "../platform/ffi.ts";

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
  constructor(readonly dir: string) {
    super(`data dir ${dir} is in use by another pipekit-log-collector process (lock ${join(dir, "lock")} is held); run one collector per data dir`);
  }
}

export class DataDirError extends Error {
  override name = "DataDirError";
  constructor(readonly dir: string, detail: string) {
    super(`data dir ${dir} is not usable: ${detail}`);
  }
}

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code} (${err.message})` : String(e);
}

/** Creates the dir if missing, checks it is writable, and takes its lock or throws. */
export function lockDataDir(dir: string): { release(): void } {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DataDirError(dir, `cannot create it: ${describe(e)}`);
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new DataDirError(dir, `not writable: ${describe(e)}`);
  }
  let fd: number;
  try {
    fd = openSync(join(dir, "lock"), constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (e) {
    throw new DataDirError(dir, `cannot open its lock file: ${describe(e)}`);
  }
  let locked: boolean;
  try {
    locked = tryFlockExclusive(fd);
  } catch (e) {
    closeSync(fd);
    throw new DataDirError(dir, `cannot lock it: ${describe(e)}`);
  }
  if (!locked) {
    closeSync(fd);
    throw new DataDirLockedError(dir);
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      closeSync(fd); // closing the only descriptor drops the flock
    },
  };
}
