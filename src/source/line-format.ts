// Line formats (docs/source.md, "Lines"): CRI and docker json-file, parsed from raw bytes.
// Pure functions; the reader hands them one line without its trailing "\n".

export type Stream = "stdout" | "stderr";

/** One physical line, parsed. `partial` means the runtime split it and more follows. */
export interface LineFragment {
  timestamp: string;
  stream: Stream;
  partial: boolean;
  /** The content, as a string (invalid UTF-8 replaced with U+FFFD). */
  content: string;
}

export type LineFormat = "cri" | "docker";

const SPACE = 0x20;
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const latin1 = new TextDecoder("latin1");

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return latin1.decode(bytes.subarray(start, end));
}

function isStream(bytes: Uint8Array, start: number, end: number): Stream | null {
  const len = end - start;
  // "stdout" / "stderr": s t d o u t | s t d e r r
  if (len !== 6 || bytes[start] !== 0x73 || bytes[start + 1] !== 0x74 || bytes[start + 2] !== 0x64) return null;
  if (bytes[start + 3] === 0x6f && bytes[start + 4] === 0x75 && bytes[start + 5] === 0x74) return "stdout";
  if (bytes[start + 3] === 0x65 && bytes[start + 4] === 0x72 && bytes[start + 5] === 0x72) return "stderr";
  return null;
}

/** A loose RFC 3339 check: digits, separators, and a zone. Timestamps pass through as written. */
function looksLikeTimestamp(bytes: Uint8Array, start: number, end: number): boolean {
  const len = end - start;
  if (len < 20 || len > 40) return false;
  // YYYY-MM-DDThh:mm:ss
  return (
    bytes[start + 4] === 0x2d &&
    bytes[start + 7] === 0x2d &&
    (bytes[start + 10] === 0x54 || bytes[start + 10] === 0x74) &&
    bytes[start + 13] === 0x3a &&
    bytes[start + 16] === 0x3a
  );
}

/** Where the fields of a CRI line are (byte offsets), as scanCriLine finds them; reused, never retained. */
export interface CriFields {
  /** The timestamp is bytes[start, tsEnd). */
  tsEnd: number;
  stderr: boolean;
  partial: boolean;
  /** The content is bytes[contentStart, end); contentStart === end when empty. */
  contentStart: number;
}

/**
 * CRI on bytes, without creating a string: `<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <content>`.
 * Fills `out` and returns true, or returns false when malformed.
 * The content may be empty (`... stdout F ` or `... stdout F`).
 */
export function scanCriLine(bytes: Uint8Array, start: number, end: number, out: CriFields): boolean {
  const s1 = bytes.indexOf(SPACE, start);
  if (s1 < 0 || s1 >= end || !looksLikeTimestamp(bytes, start, s1)) return false;
  const s2 = bytes.indexOf(SPACE, s1 + 1);
  if (s2 < 0 || s2 >= end) return false;
  const stream = isStream(bytes, s1 + 1, s2);
  if (!stream) return false;
  const tagStart = s2 + 1;
  if (tagStart >= end) return false;
  const tag = bytes[tagStart];
  if (tag !== 0x50 && tag !== 0x46) return false; // P | F
  // Tags end at the next space, or at the end of the line (empty content).
  let contentStart: number;
  const s3 = bytes.indexOf(SPACE, tagStart);
  if (s3 < 0 || s3 >= end) {
    // `F` or `F:x` without content: valid only if the tag field is well-formed.
    if (end - tagStart > 1 && bytes[tagStart + 1] !== 0x3a) return false;
    contentStart = end;
  } else {
    if (s3 - tagStart > 1 && bytes[tagStart + 1] !== 0x3a) return false;
    contentStart = s3 + 1;
  }
  out.tsEnd = s1;
  out.stderr = stream === "stderr";
  out.partial = tag === 0x50;
  out.contentStart = contentStart;
  return true;
}

/** A CRI timestamp's bytes as a string (ASCII when well-formed; latin1 keeps any byte one char). */
export function decodeTimestamp(bytes: Uint8Array, start: number, end: number): string {
  return ascii(bytes, start, end);
}

/** The content bytes of a line as a string; invalid UTF-8 is replaced with U+FFFD. */
export function decodeContent(bytes: Uint8Array, start: number, end: number): string {
  return start < end ? utf8.decode(bytes.subarray(start, end)) : "";
}

const scratchFields: CriFields = { tsEnd: 0, stderr: false, partial: false, contentStart: 0 };

/**
 * CRI: `<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <content>`. Returns null when malformed.
 * The content may be empty (`... stdout F ` or `... stdout F`).
 */
export function parseCriLine(bytes: Uint8Array, start: number, end: number): LineFragment | null {
  const f = scratchFields;
  if (!scanCriLine(bytes, start, end, f)) return null;
  return {
    timestamp: ascii(bytes, start, f.tsEnd),
    stream: f.stderr ? "stderr" : "stdout",
    partial: f.partial,
    content: decodeContent(bytes, f.contentStart, end),
  };
}

interface DockerLine {
  log?: unknown;
  stream?: unknown;
  time?: unknown;
}

/** docker json-file: `{"log":"...\n","stream":"stdout","time":"..."}`; a log without "\n" is partial. */
export function parseDockerLine(bytes: Uint8Array, start: number, end: number): LineFragment | null {
  let obj: DockerLine;
  try {
    obj = JSON.parse(utf8.decode(bytes.subarray(start, end))) as DockerLine;
  } catch {
    return null;
  }
  if (!obj || typeof obj !== "object" || typeof obj.log !== "string") return null;
  if (obj.stream !== "stdout" && obj.stream !== "stderr") return null;
  const partial = !obj.log.endsWith("\n");
  return {
    timestamp: typeof obj.time === "string" ? obj.time : "",
    stream: obj.stream,
    partial,
    content: partial ? obj.log : obj.log.slice(0, -1),
  };
}

/** Guesses the format from a file's first line: docker json-file starts with `{`. */
export function detectFormat(bytes: Uint8Array, start: number, end: number): LineFormat {
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    if (b === 0x20 || b === 0x09) continue;
    return b === 0x7b ? "docker" : "cri";
  }
  return "cri";
}
