// Per-file checkpoints (the watermark: the lowest offset not yet safe, docs/source.md), persisted as
// one JSON file in the data dir that is replaced atomically, so a crash leaves the old or the new set.
import { z } from "zod";
import { dataDirFiles } from "../platform/atomic-file.ts";
import type { DurableFiles } from "../platform/types.ts";
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

export const CHECKPOINTS_FILE = "checkpoints.json";

/** `checkpoints.json` in the data dir. */
export class CheckpointStore implements CheckpointStorage {
  readonly path: string;
  private readonly files: DurableFiles;

  /** The data dir's path (its real files), or its files as a port. */
  constructor(dataDir: string | DurableFiles) {
    this.files = typeof dataDir === "string" ? dataDirFiles(dataDir) : dataDir;
    this.path = this.files.pathOf(CHECKPOINTS_FILE);
  }

  load(onError: (msg: string) => void): FileCheckpoint[] {
    try {
      const text = this.files.read(CHECKPOINTS_FILE);
      return text === null ? [] : decodeCheckpoints(text);
    } catch (err) {
      onError(`checkpoint file ${this.path} is unreadable (${(err as Error).message}); files without a checkpoint follow source.readFrom`);
      return [];
    }
  }

  save(files: readonly FileCheckpoint[]): void {
    this.files.write(CHECKPOINTS_FILE, encodeCheckpoints(files));
  }
}
