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

/**
 * Where the fields of a docker json-file line are, as scanDockerLine finds them (byte offsets);
 * reused, never retained.
 */
export interface DockerFields {
  /** The log string as escaped in the file, without its final "\n" escape: bytes[logStart, logEnd). */
  logStart: number;
  logEnd: number;
  stderr: boolean;
  /** The time string: bytes[tsStart, tsEnd), printable ASCII without quotes or escapes. */
  tsStart: number;
  tsEnd: number;
}

const te = new TextEncoder();
const LOG_OPEN = te.encode('{"log":"');
const STREAM_KEY = te.encode('","stream":"');
const TIME_KEY = te.encode('","time":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

// In a JSON string: 0 a byte copied as is; 1 a control character (not allowed raw); 2 `"`; 3 `\`.
const STRING_CLASS = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_CLASS[c] = 1;
STRING_CLASS[QUOTE] = 2;
STRING_CLASS[BACKSLASH] = 3;
// The one-character escapes JSON allows after a backslash (besides u).
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;
const HEX_DIGIT = new Uint8Array(256).fill(0xff);
for (let d = 0; d < 16; d++) {
  HEX_DIGIT["0123456789abcdef".charCodeAt(d)] = d;
  HEX_DIGIT["0123456789ABCDEF".charCodeAt(d)] = d;
}

/** The code unit of the `\uXXXX` escape whose backslash is bytes[i], or -1 when there is none before `end`. */
export function jsonUnicodeEscape(bytes: Uint8Array, i: number, end: number): number {
  if (i + 5 >= end || bytes[i + 1] !== 0x75) return -1;
  const a = HEX_DIGIT[bytes[i + 2] as number] as number;
  const b = HEX_DIGIT[bytes[i + 3] as number] as number;
  const c = HEX_DIGIT[bytes[i + 4] as number] as number;
  const d = HEX_DIGIT[bytes[i + 5] as number] as number;
  return (a | b | c | d) > 15 ? -1 : (a << 12) | (b << 8) | (c << 4) | d;
}

/** Whether bytes[at, end) begins with `what`. */
function matches(bytes: Uint8Array, at: number, end: number, what: Uint8Array): boolean {
  if (at + what.length > end) return false;
  for (let j = 0; j < what.length; j++) if (bytes[at + j] !== what[j]) return false;
  return true;
}

/**
 * A complete docker json-file line on bytes, without creating a string: exactly
 * `{"log":"<content>\n","stream":"<stdout|stderr>","time":"<ts>"}` as the json-file driver writes
 * it — a log string of valid JSON escapes and no raw control characters, ending in a newline, and a
 * time of printable ASCII without escapes. Fills `out` and returns true; false for anything else (a
 * partial line, other keys or order, whitespace, malformed JSON), which the string path
 * (parseDockerLine) decides. When true, parseDockerLine gives the same stream and time, partial
 * false, and as content the JSON value of bytes[logStart, logEnd).
 */
export function scanDockerLine(bytes: Uint8Array, start: number, end: number, out: DockerFields): boolean {
  if (!matches(bytes, start, end, LOG_OPEN)) return false;
  const logStart = start + LOG_OPEN.length;
  let i = logStart;
  /** Where the last character's escape began, when the last character is an escaped newline. */
  let newlineAt = -1;
  for (;;) {
    if (i >= end) return false;
    const k = STRING_CLASS[bytes[i] as number] as number;
    if (k === 0) {
      newlineAt = -1;
      i++;
      continue;
    }
    if (k === 2) break; // the closing quote
    if (k === 1 || i + 1 >= end) return false;
    const e = bytes[i + 1] as number;
    if (e === 0x75) {
      const unit = jsonUnicodeEscape(bytes, i, end);
      if (unit < 0) return false;
      newlineAt = unit === 0x0a ? i : -1;
      i += 6;
    } else if (SIMPLE_ESCAPE[e] === 1) {
      newlineAt = e === 0x6e ? i : -1;
      i += 2;
    } else return false;
  }
  if (newlineAt < 0) return false; // no final newline: a partial line
  const logEnd = newlineAt;
  if (!matches(bytes, i, end, STREAM_KEY)) return false;
  i += STREAM_KEY.length;
  const stream = i + 6 <= end ? isStream(bytes, i, i + 6) : null;
  if (!stream || !matches(bytes, i + 6, end, TIME_KEY)) return false;
  const tsStart = i + 6 + TIME_KEY.length;
  let t = tsStart;
  while (t < end && bytes[t] !== QUOTE) {
    const c = bytes[t] as number;
    if (c < 0x20 || c > 0x7e || c === BACKSLASH) return false;
    t++;
  }
  if (t + 2 !== end || bytes[t + 1] !== 0x7d) return false; // `"}` ends the line
  out.logStart = logStart;
  out.logEnd = logEnd;
  out.stderr = stream === "stderr";
  out.tsStart = tsStart;
  out.tsEnd = t;
  return true;
}

/** The value of a JSON string's escaped content bytes[start, end), as JSON.parse gives it (invalid UTF-8 replaced with U+FFFD). */
export function decodeJsonString(bytes: Uint8Array, start: number, end: number): string {
  return start < end ? (JSON.parse(`"${utf8.decode(bytes.subarray(start, end))}"`) as string) : "";
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
