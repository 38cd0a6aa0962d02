// Per-file checkpoints (the watermark: the lowest offset not yet safe, docs/source.md), persisted as
// one JSON file in the data dir that is replaced atomically, so a crash leaves the old or the new set.
import { z } from "zod";
import { dataDirFiles } from "../platform/atomic-file.ts";
import type { DurableFiles } from "../platform/types.ts";
import type { CheckpointStorage, SavedCheckpoints } from "./types.ts";

const StreamResumeSchema = z.union([z.literal("between"), z.literal("inside"), z.number().int().nonnegative()]);

const CheckpointFileSchema = z.object({
  version: z.literal(1),
  savedAt: z.number().optional(),
  files: z.array(
    z.object({
      dev: z.number(),
      ino: z.number(),
      fpLen: z.number().int().nonnegative(),
      fpHash: z.number().int(),
      path: z.string(),
      offset: z.number().int().nonnegative(),
      streams: z.object({ stdout: StreamResumeSchema, stderr: StreamResumeSchema }).optional(),
      size: z.number().int().nonnegative().optional(),
      done: z.boolean().optional(),
    }),
  ),
});

export function checkpointKey(dev: number, ino: number): string {
  return `${dev}:${ino}`;
}

/**
 * One file's checkpoint among those saved: device, inode and head (inodes are reused at once, so a
 * closed file still holding a checkpoint and the open one that has its inode now are two entries).
 */
export function checkpointIdentity(cp: { dev: number; ino: number; fpLen: number; fpHash: number }): string {
  return `${cp.dev}:${cp.ino}:${cp.fpLen}:${cp.fpHash}`;
}

/** The encoded form of a set of checkpoints (one JSON document). */
export function encodeCheckpoints(saved: SavedCheckpoints): string {
  return JSON.stringify({ version: 1, savedAt: saved.savedAt ?? undefined, files: saved.files });
}

/** Decodes what encodeCheckpoints wrote (or an older file without savedAt); throws on anything else. */
export function decodeCheckpoints(text: string): SavedCheckpoints {
  const parsed = CheckpointFileSchema.parse(JSON.parse(text));
  return { files: parsed.files, savedAt: parsed.savedAt ?? null };
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

  load(onError: (msg: string) => void): SavedCheckpoints {
    try {
      const text = this.files.read(CHECKPOINTS_FILE);
      return text === null ? { files: [], savedAt: null } : decodeCheckpoints(text);
    } catch (err) {
      onError(`checkpoint file ${this.path} is unreadable (${(err as Error).message}); files without a checkpoint follow source.readFrom`);
      return { files: [], savedAt: null };
    }
  }

  save(saved: SavedCheckpoints): void {
    this.files.write(CHECKPOINTS_FILE, encodeCheckpoints(saved));
  }
}
