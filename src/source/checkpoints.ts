// Per-file checkpoints (SPEC §4): the lowest offset not yet safe, persisted atomically
// (write temp, fsync, rename, fsync the directory) so a crash leaves the old or the new file whole.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

export interface FileCheckpoint {
  /** The identity of the file: device + inode + fingerprint of its first bytes. */
  dev: number;
  ino: number;
  fpLen: number;
  fpHash: number;
  /** Last path seen (for status and for the .gz fallback after downtime). */
  path: string;
  offset: number;
  /** Size when last saved: if the file is gone for good at the next start, size − offset was lost. */
  size?: number;
}

const CheckpointFileSchema = z.object({
  version: z.literal(1),
  files: z.array(
    z.object({
      dev: z.number(),
      ino: z.number(),
      fpLen: z.number().int().nonnegative(),
      fpHash: z.number().int(),
      path: z.string(),
      offset: z.number().int().nonnegative(),
      size: z.number().int().nonnegative().optional(),
    }),
  ),
});

export function checkpointKey(dev: number, ino: number): string {
  return `${dev}:${ino}`;
}

export class CheckpointStore {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, "checkpoints.json");
  }

  /** Loads saved checkpoints; a damaged file is reported and treated as empty (files are re-read). */
  load(onError: (msg: string) => void): Map<string, FileCheckpoint> {
    const out = new Map<string, FileCheckpoint>();
    if (!existsSync(this.path)) return out;
    try {
      const parsed = CheckpointFileSchema.parse(JSON.parse(readFileSync(this.path, "utf8")));
      for (const f of parsed.files) out.set(checkpointKey(f.dev, f.ino), f);
    } catch (err) {
      onError(`checkpoint file ${this.path} is unreadable (${(err as Error).message}); files without a checkpoint follow source.readFrom`);
    }
    return out;
  }

  save(files: Iterable<FileCheckpoint>): void {
    const body = JSON.stringify({ version: 1, files: [...files] });
    const tmp = this.path + ".tmp";
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    fsyncDir(join(this.path, ".."));
  }
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** FNV-1a over a byte range: the fingerprint of a file's head (not cryptographic; detects inode reuse). */
export function fingerprint(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
