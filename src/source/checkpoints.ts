// Per-file checkpoints (the watermark: the lowest offset not yet safe, docs/source.md), persisted as
// one JSON file in the data dir that is replaced atomically, so a crash leaves the old or the new set.
import { join } from "node:path";
import { z } from "zod";
import { readTextIfExists, writeFileAtomic } from "../platform/atomic-file.ts";
import type { CheckpointStorage, FileCheckpoint } from "./types.ts";

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

/** The encoded form of a set of checkpoints (one JSON document). */
export function encodeCheckpoints(files: readonly FileCheckpoint[]): string {
  return JSON.stringify({ version: 1, files });
}

/** Decodes what encodeCheckpoints wrote; throws on anything else. */
export function decodeCheckpoints(text: string): FileCheckpoint[] {
  return CheckpointFileSchema.parse(JSON.parse(text)).files;
}

/** `checkpoints.json` in the data dir. */
export class CheckpointStore implements CheckpointStorage {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, "checkpoints.json");
  }

  load(onError: (msg: string) => void): FileCheckpoint[] {
    try {
      const text = readTextIfExists(this.path);
      return text === null ? [] : decodeCheckpoints(text);
    } catch (err) {
      onError(`checkpoint file ${this.path} is unreadable (${(err as Error).message}); files without a checkpoint follow source.readFrom`);
      return [];
    }
  }

  save(files: readonly FileCheckpoint[]): void {
    writeFileAtomic(this.path, encodeCheckpoints(files));
  }
}
