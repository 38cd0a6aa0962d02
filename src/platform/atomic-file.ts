// Files replaced as a whole and durably: write a temp file, fsync it, rename it over the old one,
// fsync the directory. A crash leaves the old content or the new, never a mix.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DurableFiles } from "./types.ts";

export function writeFileAtomic(path: string, body: string | Uint8Array): void {
  const tmp = path + ".tmp";
  const fd = openSync(tmp, "w", 0o600);
  try {
    if (typeof body === "string") writeSync(fd, body);
    else writeSync(fd, body);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** The file's text, or null when it does not exist. */
export function readTextIfExists(path: string): string | null {
  if (!existsSync(path)) return null;
  return readFileSync(path, "utf8");
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The data dir's small files on the real disk. */
export function dataDirFiles(dir: string): DurableFiles {
  return {
    pathOf: (name) => join(dir, name),
    read: (name) => readTextIfExists(join(dir, name)),
    write: (name, text) => writeFileAtomic(join(dir, name), text),
  };
}
