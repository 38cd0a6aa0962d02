// JSON string escaping on UTF-8 bytes, byte for byte what TextEncoder.encode(JSON.stringify(s))
// gives for the string a UTF-8 decoder makes of them — when they are valid UTF-8. JSON.stringify
// escapes `"`, `\` and the controls below 0x20 (\b \f \n \r \t, else \u00xx in lowercase hex) and
// nothing else (not DEL, not U+2028/9); valid UTF-8 has no lone surrogates, so no \udxxx either.
// Invalid UTF-8 is refused: the decoder's U+FFFD replacement is left to the string path.
//
// A docker json-file line carries its content already escaped, by Go's rules (which escape `<`, `>`,
// `&`, U+2028/9 as \u00xx / \u20xx): rewriteJsonStringBody turns such an escaped body into the bytes
// JSON.stringify gives for its value, without making the string.
import { jsonUnicodeEscape } from "../source/line-format.ts";

/** writeJsonStringBody, rewriteJsonStringBody: not valid UTF-8 (or an escaped lone surrogate): only the string path gives the bytes. */
export const INVALID_UTF8 = -1;
/** writeJsonStringBody: `dst` is too small (escapes grew the text); give it 6 × the input and retry. */
export const NEEDS_SPACE = -2;

// 0: copied as is; 1: escaped; 2: the first byte of a multi-byte sequence (validated).
const CLASS = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) CLASS[c] = 1;
CLASS[0x22] = 1;
CLASS[0x5c] = 1;
for (let c = 0x80; c < 0x100; c++) CLASS[c] = 2;

const HEX = new TextEncoder().encode("0123456789abcdef");

/** Length (2 to 4) of the well-formed UTF-8 sequence starting at src[i], or 0 (WHATWG / Unicode table 3-7). */
export function utf8SequenceLength(src: Uint8Array, i: number, to: number): number {
  const c = src[i] as number;
  if (c < 0xc2) return 0; // ASCII is not a sequence; 0x80–0xC1: continuation or overlong lead
  if (c < 0xe0) return i + 1 < to && ((src[i + 1] as number) & 0xc0) === 0x80 ? 2 : 0;
  if (c < 0xf0) {
    if (i + 2 >= to) return 0;
    const c1 = src[i + 1] as number;
    // E0: no overlongs (A0–BF); ED: no surrogates (80–9F).
    if (c1 < (c === 0xe0 ? 0xa0 : 0x80) || c1 > (c === 0xed ? 0x9f : 0xbf)) return 0;
    return ((src[i + 2] as number) & 0xc0) === 0x80 ? 3 : 0;
  }
  if (c < 0xf5) {
    if (i + 3 >= to) return 0;
    const c1 = src[i + 1] as number;
    // F0: no overlongs (90–BF); F4: nothing above U+10FFFF (80–8F).
    if (c1 < (c === 0xf0 ? 0x90 : 0x80) || c1 > (c === 0xf4 ? 0x8f : 0xbf)) return 0;
    return ((src[i + 2] as number) & 0xc0) === 0x80 && ((src[i + 3] as number) & 0xc0) === 0x80 ? 4 : 0;
  }
  return 0;
}

/**
 * Copies src from i into dst at `at`, byte for byte, up to the first byte JSON escapes (or `to`),
 * checking UTF-8 as it goes; returns where it stopped, or INVALID_UTF8. Four bytes at a time while
 * all four are plain ASCII (one branch for four), then byte by byte: measured faster than one byte
 * at a time, than scanning first and copying the runs with set(subarray(...)) (a view costs ~60 ns
 * under Bun), and than reading 4 bytes through a Uint32Array.
 */
function copyUnescaped(src: Uint8Array, i: number, to: number, dst: Uint8Array, at: number): number {
  const last4 = to - 3;
  for (;;) {
    while (i < last4) {
      const a = src[i] as number;
      const b = src[i + 1] as number;
      const c = src[i + 2] as number;
      const d = src[i + 3] as number;
      if (((CLASS[a] as number) | (CLASS[b] as number) | (CLASS[c] as number) | (CLASS[d] as number)) !== 0) break;
      dst[at] = a;
      dst[at + 1] = b;
      dst[at + 2] = c;
      dst[at + 3] = d;
      i += 4;
      at += 4;
    }
    if (i >= to) return i;
    const c = src[i] as number;
    const k = CLASS[c] as number;
    if (k === 1) return i;
    if (k === 0) {
      dst[at++] = c;
      i++;
      continue;
    }
    const n = utf8SequenceLength(src, i, to);
    if (n === 0) return INVALID_UTF8;
    for (let j = 0; j < n; j++) dst[at++] = src[i++] as number;
  }
}

function writeEscape(c: number, dst: Uint8Array, at: number): number {
  dst[at++] = 0x5c; // backslash
  switch (c) {
    case 0x22:
      dst[at++] = 0x22;
      return at;
    case 0x5c:
      dst[at++] = 0x5c;
      return at;
    case 0x08:
      dst[at++] = 0x62; // b
      return at;
    case 0x09:
      dst[at++] = 0x74; // t
      return at;
    case 0x0a:
      dst[at++] = 0x6e; // n
      return at;
    case 0x0c:
      dst[at++] = 0x66; // f
      return at;
    case 0x0d:
      dst[at++] = 0x72; // r
      return at;
  }
  dst[at++] = 0x75; // u00xx
  dst[at++] = 0x30;
  dst[at++] = 0x30;
  dst[at++] = HEX[c >> 4] as number;
  dst[at++] = HEX[c & 15] as number;
  return at;
}

/**
 * Writes src[from, to) as the inside of a JSON string (no quotes) into dst at `at`. Returns the
 * new end, INVALID_UTF8, or NEEDS_SPACE (dst ran out; nothing beyond dst.length was written).
 * dst needs (to − from) bytes when nothing is escaped, at most 6 × (to − from).
 */
export function writeJsonStringBody(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): number {
  // Invariant: at + (to − i) ≤ dst.length, so a byte copied as is always fits; an escape checks.
  if (at + (to - from) > dst.length) return NEEDS_SPACE;
  let i = from;
  while (i < to) {
    const stop = copyUnescaped(src, i, to, dst, at);
    if (stop < 0) return INVALID_UTF8;
    at += stop - i;
    i = stop;
    if (i === to) break;
    const c = src[i] as number;
    if (at + (to - i) + 6 > dst.length) return NEEDS_SPACE;
    at = writeEscape(c, dst, at);
    i++;
  }
  return at;
}

/** Writes code point cp (not a surrogate, not below 0x80) as UTF-8. */
function writeUtf8(cp: number, dst: Uint8Array, at: number): number {
  if (cp < 0x800) {
    dst[at++] = 0xc0 | (cp >> 6);
  } else if (cp < 0x10000) {
    dst[at++] = 0xe0 | (cp >> 12);
    dst[at++] = 0x80 | ((cp >> 6) & 0x3f);
  } else {
    dst[at++] = 0xf0 | (cp >> 18);
    dst[at++] = 0x80 | ((cp >> 12) & 0x3f);
    dst[at++] = 0x80 | ((cp >> 6) & 0x3f);
  }
  dst[at++] = 0x80 | (cp & 0x3f);
  return at;
}

/**
 * Writes the JSON string body src[from, to) — escaped, as inside the quotes of a JSON document —
 * re-escaped as JSON.stringify escapes its value, into dst at `at`: byte for byte
 * TextEncoder.encode(JSON.stringify(JSON.parse(`"${utf8(src[from, to))}"`))) without the quotes.
 * Returns the new end, INVALID_UTF8 (invalid UTF-8, a lone surrogate, or not a well-formed body:
 * a raw control character, quote or unknown escape), or NEEDS_SPACE. Never longer than its input:
 * dst needs (to − from) bytes.
 */
export function rewriteJsonStringBody(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): number {
  if (at + (to - from) > dst.length) return NEEDS_SPACE;
  let i = from;
  while (i < to) {
    const stop = copyUnescaped(src, i, to, dst, at);
    if (stop < 0) return INVALID_UTF8;
    at += stop - i;
    i = stop;
    if (i === to) break;
    const c = src[i] as number;
    if (c !== 0x5c || i + 1 >= to) return INVALID_UTF8; // a raw control character or quote
    const e = src[i + 1] as number;
    if (e !== 0x75) {
      // \" \\ \b \f \n \r \t are JSON.stringify's own; \/ is a plain slash.
      if (e === 0x2f) dst[at++] = 0x2f;
      else if (e === 0x22 || e === 0x5c || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        dst[at++] = 0x5c;
        dst[at++] = e;
      } else return INVALID_UTF8;
      i += 2;
      continue;
    }
    let cp = jsonUnicodeEscape(src, i, to);
    if (cp < 0) return INVALID_UTF8;
    i += 6;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const low = cp <= 0xdbff ? jsonUnicodeEscape(src, i, to) : -1;
      if (low < 0xdc00 || low > 0xdfff) return INVALID_UTF8; // lone: JSON.stringify writes it as \udxxx
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
      i += 6;
    }
    if (cp < 0x20 || cp === 0x22 || cp === 0x5c) at = writeEscape(cp, dst, at);
    else if (cp < 0x80) dst[at++] = cp;
    else at = writeUtf8(cp, dst, at);
  }
  return at;
}
