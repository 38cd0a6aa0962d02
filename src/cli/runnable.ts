// What `run` needs beyond the schema that the config alone can tell (no file, no environment read
// here): somewhere to send, a key to send with, and a ring that can hold the largest record a line
// can make. The checks that read the disk or the environment are in preflight.ts.
import { DATA_OFFSET, dataBytesOf, fileBytesFor, recordSpan } from "../buffer/format.ts";
import type { Config } from "../config/schema.ts";

/**
 * A line's message is at most source.maxLineBytes bytes of UTF-8 (longer lines are cut). JSON
 * escaping can turn one byte into six (a control character becomes \u00XX): a record that then
 * outgrows the ring has its message cut to fit, and is counted (the router's recordsCut), so the
 * ring need only hold the longest line unescaped.
 *//**
 * Everything in a record but its message, bounded: field names and punctuation (~130 bytes), the
 * pod name (at most 253), the container name (63), the identifiers (label values at most 63 each;
 * Argo's node ID about a pod name), the timestamp and the stream. 8 KiB holds them many times over.
 */
export const RECORD_ENVELOPE_BOUND = 8 * 1024;

/** Bytes the record of the longest line takes in the ring, unescaped: header, message and envelope, aligned. */
export function largestRecordSpan(maxLineBytes: number): number {
  return recordSpan(maxLineBytes + RECORD_ENVELOPE_BOUND);
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** "1048576 bytes (1MiB)": the exact figure, and a readable one. */
function size(n: number): string {
  const readable = n >= MiB ? `${+(n / MiB).toFixed(2)}MiB` : n >= KiB ? `${+(n / KiB).toFixed(2)}KiB` : "";
  return readable ? `${n} bytes (${readable})` : `${n} bytes`;
}

/**
 * Why the ring cannot hold one record of the longest line, or null. A record larger than the ring
 * is refused by it at run time, and its file then stops there for good; refused at start instead,
 * with the two values that would fit.
 */
export function ringTooSmall(config: Pick<Config, "buffer" | "source">): string | null {
  const { maxBytes } = config.buffer;
  const { maxLineBytes } = config.source;
  const ring = dataBytesOf(fileBytesFor(maxBytes));
  const need = largestRecordSpan(maxLineBytes);
  if (need <= ring) return null;
  const minMaxBytes = Math.ceil((need + DATA_OFFSET) / MiB) * MiB;
  // The span is 8-aligned and the ring a multiple of 4 KiB, so this line's record fits exactly.
  const maxLine = Math.floor((ring - recordSpan(RECORD_ENVELOPE_BOUND)) / KiB) * KiB;
  return (
    `buffer.maxBytes: ${size(maxBytes)} cannot hold one record of the longest line source.maxLineBytes allows ` +
    `(${size(maxLineBytes)}, plus up to ${RECORD_ENVELOPE_BOUND / KiB}KiB of identifiers: ${need} bytes); ` +
    `raise buffer.maxBytes to ${minMaxBytes / MiB}MiB or more, or lower source.maxLineBytes to ${maxLine / KiB}KiB or less`
  );
}

/** Every problem the config alone shows for `run`, one line each ("key: what is wrong"). */
export function runnableProblems(config: Config): string[] {
  const problems: string[] = [];
  if (!config.messenger.baseUri) problems.push("messenger.baseUri: required (or set PIPEKIT_MESSENGER_BASE_URI)");
  if (!config.messenger.apiKey && !config.messenger.apiKeyFile) {
    problems.push("messenger.apiKey: required (set PIPEKIT_API_KEY, messenger.apiKey or messenger.apiKeyFile)");
  }
  const ring = ringTooSmall(config);
  if (ring) problems.push(ring);
  return problems;
}
