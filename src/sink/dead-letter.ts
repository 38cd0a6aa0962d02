// The dead-letter file (docs/pipeline.md, README "Architecture"): records the messenger refused on their own, one JSON line each
// with the status and the first bytes of the answer, so an operator can inspect and replay them.
// Size-capped: the live file rotates to `.1` at half the cap, so both together stay within it.
// Each line is fsynced before the record is acknowledged in the ring: a dead letter is never lost.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";

export const DEAD_LETTER_FILE = "dead-letter.jsonl";
/** Bytes of the messenger's answer kept with each dead letter. */
export const ANSWER_SNIPPET_BYTES = 512;

export interface DeadLetter {
  seq: number;
  status: number;
  /** The start of the messenger's answer body (already free of secrets). */
  answer: string;
  /** The refused record as serialised in the ring. */
  record: Uint8Array;
  time: number;
}

export interface DeadLetterStats {
  /** Lines written. */
  written: number;
  /** Bytes written (all files, since start). */
  bytes: number;
  rotations: number;
  /** Records whose JSON was too large for half the cap, stored truncated. */
  truncated: number;
}

const decoder = new TextDecoder();

/** One dead-letter line (pure): the record embedded as JSON when it parses, else as text. */
export function formatDeadLetter(d: DeadLetter, maxLineBytes: number): string {
  const text = decoder.decode(d.record);
  let recordJson: string | null = null;
  try {
    JSON.parse(text);
    recordJson = text;
  } catch {
    recordJson = null;
  }
  const head = `{"time":${JSON.stringify(new Date(d.time).toISOString())},"seq":${d.seq},"status":${d.status},"answer":${JSON.stringify(d.answer)},`;
  const line = recordJson !== null ? `${head}"record":${recordJson}}\n` : `${head}"recordText":${JSON.stringify(text)}}\n`;
  if (Buffer.byteLength(line) <= maxLineBytes) return line;
  // Too large to keep whole: keep the evidence (its start and its size).
  const keep = Math.max(0, Math.floor(maxLineBytes / 2) - head.length - 64);
  return `${head}"recordBytes":${d.record.length},"recordTruncated":${JSON.stringify(text.slice(0, keep))}}\n`;
}

export class DeadLetterFile {
  readonly path: string;
  readonly rotatedPath: string;
  readonly #dir: string;
  readonly #maxBytes: number;
  #size = 0;
  readonly #stats: DeadLetterStats = { written: 0, bytes: 0, rotations: 0, truncated: 0 };

  constructor(dir: string, maxBytes: number) {
    this.#dir = dir;
    this.#maxBytes = maxBytes;
    this.path = join(dir, DEAD_LETTER_FILE);
    this.rotatedPath = this.path + ".1";
    try {
      this.#size = statSync(this.path).size;
    } catch {
      this.#size = 0;
    }
  }

  /** Appends and fsyncs one dead letter; throws on I/O errors (the caller keeps the record). */
  write(d: DeadLetter): void {
    const half = Math.max(1024, Math.floor(this.#maxBytes / 2));
    const line = formatDeadLetter(d, half);
    if (!line.includes('"record":') && !line.includes('"recordText":')) this.#stats.truncated++;
    const bytes = Buffer.from(line);
    mkdirSync(this.#dir, { recursive: true });
    if (this.#size > 0 && this.#size + bytes.length > half) this.#rotate();
    const fd = openSync(this.path, "a", 0o600);
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#size += bytes.length;
    this.#stats.written++;
    this.#stats.bytes += bytes.length;
  }

  #rotate(): void {
    renameSync(this.path, this.rotatedPath);
    // Make the rename durable before writing the new file (a rename is durable only once its directory is synced).
    const dirFd = openSync(this.#dir, "r");
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    this.#size = 0;
    this.#stats.rotations++;
  }

  stats(): DeadLetterStats {
    return { ...this.#stats };
  }
}
