// The two kinds of record payload the ring holds (docs/ring-format.md "Compact records"). The ring
// itself stores opaque bytes; this is the layer above it that stores each file's constant prefix
// once (prefix-table.ts):
//   - a full record: the JSON record itself, first byte `{` (every record an older version wrote);
//   - a compact record: COMPACT_TAG, the prefix id as an unsigned LEB128 varint, then the record's
//     suffix — the JSON from the timestamp's value on. Its full record is prefix + suffix.
// COMPACT_TAG is a control character: no JSON text starts with it.

export const COMPACT_TAG = 0x01;
/** Prefix ids are below 2^35: at most five varint bytes. */
export const MAX_PREFIX_ID = 2 ** 35 - 1;
const MAX_VARINT_BYTES = 5;

/** The bytes a compact record starts with: the tag and the prefix id. */
export function compactHead(id: number): Uint8Array {
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_PREFIX_ID) throw new RangeError(`prefix id ${id} out of range`);
  const out: number[] = [COMPACT_TAG];
  let v = id;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** Where a compact record's prefix id is read: its value and the length of tag + varint. */
export interface CompactHead {
  id: number;
  length: number;
}

/**
 * Reads the prefix id of the record data[start, end) into `into`; false when the record is not a
 * compact one (a full record, or any other payload) or its varint is malformed (then into.id = 0).
 */
export function readCompactHead(data: Uint8Array, start: number, end: number, into: CompactHead): boolean {
  into.id = 0;
  into.length = 0;
  if (start >= end || data[start] !== COMPACT_TAG) return false;
  let id = 0;
  let scale = 1;
  for (let i = start + 1; i < end && i <= start + MAX_VARINT_BYTES; i++) {
    const b = data[i] as number;
    id += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (id < 1) return false;
      into.id = id;
      into.length = i + 1 - start;
      return true;
    }
    scale *= 0x80;
  }
  return false;
}

/** True when the record's first byte is the compact tag (well-formed or not). */
export function isCompact(data: Uint8Array, start: number, end: number): boolean {
  return start < end && data[start] === COMPACT_TAG;
}

/** The compact form of a full record that starts with `prefix` (for tests and tools). */
export function compactRecord(full: Uint8Array, prefix: Uint8Array, id: number): Uint8Array {
  for (let i = 0; i < prefix.length; i++) if (full[i] !== prefix[i]) throw new Error("the record does not start with its prefix");
  const head = compactHead(id);
  const out = new Uint8Array(head.length + full.length - prefix.length);
  out.set(head);
  out.set(full.subarray(prefix.length), head.length);
  return out;
}

/**
 * The full record of a stored one: a compact record's prefix (from `prefixOf`) spliced before its
 * suffix; any other payload as it is. Null when the record is compact and its prefix is unknown
 * (a damaged or lost prefix table) or its head malformed. The one expansion every reader uses.
 */
export function expandRecord(stored: Uint8Array, prefixOf: (id: number) => Uint8Array | undefined): Uint8Array | null {
  if (!isCompact(stored, 0, stored.length)) return stored;
  const head: CompactHead = { id: 0, length: 0 };
  if (!readCompactHead(stored, 0, stored.length, head)) return null;
  const prefix = prefixOf(head.id);
  if (!prefix) return null;
  const out = new Uint8Array(prefix.length + stored.length - head.length);
  out.set(prefix);
  out.set(stored.subarray(head.length), prefix.length);
  return out;
}
