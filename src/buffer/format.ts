// The ring file's on-disk format (docs/ring-format.md is the prose version; keep them in step).
// Everything little-endian. Pure functions over a DataView of the mapping: no I/O here.

/** Two 4 KiB header slots, written alternately, so a torn header write leaves the other intact. */
export const HEADER_SLOT_BYTES = 4096;
export const DATA_OFFSET = 2 * HEADER_SLOT_BYTES;
/** Version 2 added the acknowledged ranges to the header; version 1 files are read as they are. */
export const FORMAT_VERSION = 2;
export const FORMAT_VERSION_1 = 1;
/** "PKRING01" */
export const FILE_MAGIC = [0x50, 0x4b, 0x52, 0x49, 0x4e, 0x47, 0x30, 0x31] as const;

// Header slot layout (offsets within the slot).
const H_MAGIC = 0; // 8 bytes
const H_VERSION = 8; // u32
const H_DATA_OFFSET = 12; // u32
const H_FILE_BYTES = 16; // u64
const H_GENERATION = 24; // u64, +1 per header write; the valid slot with the larger one wins
const H_READ_POS = 32; // u64 logical byte position of the oldest unacknowledged record
const H_READ_SEQ = 40; // u64 its sequence number
const H_WRITE_POS = 48; // u64 logical write position at the time of this header write (a hint)
const H_NEXT_SEQ = 56; // u64 next sequence number then: records below it were made durable by that sync
const H_EPOCH = 64; // u32 epoch of the records being written (see recovery.ts)
const H_FLAGS = 68; // u32 bit 0: written by close(), nothing was appended after it
// Version 1 ends here: u32 CRC-32 of bytes [0, 72).
const H_V1_CRC = 72;
// Version 2: the acknowledged ranges beyond the read position, then the CRC of all that precedes it.
const H_ACKED_COUNT = 72; // u32 n
const H_RESERVED = 76; // u32, zero
const H_ACKED = 80; // n × (u32 first sequence number − readSeq, u32 count); then u32 CRC-32 of bytes [0, 80 + 8n)
/** The smallest header (version 1, 76 bytes); one of version 2 takes 84 + 8n. */
export const HEADER_BYTES = 76;
const HEADER_FIXED_BYTES = H_ACKED;
/**
 * Acknowledged ranges a header keeps, the lowest first (one left out only means its records are
 * sent again after a restart). Outstanding batches are at most 4 per request slot (a hole each);
 * 256 covers 64 slots. The largest header, 2132 bytes, fits its slot.
 */
export const MAX_ACKED_RANGES = 256;
export const FLAG_CLOSED = 1;
/** Epochs are 24-bit in records; 2^24 unclean opens is far beyond any lifetime. */
export const MAX_EPOCH = 0xffffff;

/** Records: 24-byte header, payload, zero padding to the next multiple of 8. */
export const RECORD_HEADER_BYTES = 24;
export const RECORD_ALIGN = 8;
/** "PKR\x01" read as a little-endian u32. */
export const RECORD_SYNC = 0x01524b50;
export const KIND_DATA = 1;
/** "The rest of this lap is empty; the record with this sequence number is at the lap's start." */
export const KIND_WRAP = 2;
const KIND_MASK = 0xff;
// Record header layout.
const R_SYNC = 0; // u32
const R_LENGTH = 4; // u32 payload bytes
const R_SEQ_LO = 8; // u32
const R_SEQ_HI = 12; // u32
const R_KIND = 16; // u32: kind in the low 8 bits, epoch in the high 24
const R_CRC = 20; // u32 CRC-32 of bytes [4, 20) then the payload

const TWO32 = 0x1_0000_0000;

export function recordSpan(payloadBytes: number): number {
  return (RECORD_HEADER_BYTES + payloadBytes + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}

/** The largest payload whose record fits in a data region of `dataBytes` (a multiple of the alignment). */
export function maxPayloadIn(dataBytes: number): number {
  return dataBytes - RECORD_HEADER_BYTES;
}

/** Data region bytes for a file of fileBytes (the file's size, a multiple of 8). */
export function dataBytesOf(fileBytes: number): number {
  return fileBytes - DATA_OFFSET;
}

/** The file size used for a requested capacity (buffer.maxBytes): rounded down to 4 KiB. */
export function fileBytesFor(maxBytes: number): number {
  return Math.max(DATA_OFFSET + 4096, Math.floor(maxBytes / 4096) * 4096);
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE, zlib's). Bun.hash.crc32 does the payloads (native, ~4 GB/s) and chains through
// its seed argument; this table version does the few header bytes without allocating a view.
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 of view bytes [from, to), continuing from seed (0 to start). */
export function crc32Range(view: DataView, from: number, to: number, seed = 0): number {
  let c = ~seed;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ view.getUint8(i)) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export function crc32Bytes(bytes: Uint8Array, seed = 0): number {
  return Bun.hash.crc32(bytes, seed) >>> 0;
}

// ---------------------------------------------------------------------------------------------
export function getU64(v: DataView, at: number): number {
  return v.getUint32(at + 4, true) * TWO32 + v.getUint32(at, true);
}
export function setU64(v: DataView, at: number, x: number): void {
  v.setUint32(at, x >>> 0, true);
  v.setUint32(at + 4, Math.floor(x / TWO32) >>> 0, true);
}

export interface RingHeader {
  fileBytes: number;
  generation: number;
  readPos: number;
  readSeq: number;
  writePos: number;
  nextSeq: number;
  /** Raised on every open after an unclean end (see recovery.ts). */
  epoch: number;
  flags: number;
  /**
   * Sequence numbers above readSeq acknowledged when the header was written, as sorted disjoint
   * [start, end) pairs, flat: [s0, e0, s1, e1, ...]. Their records are not handed out again.
   * Empty in a version 1 header.
   */
  acked: number[];
}

export type SlotState =
  | { kind: "valid"; header: RingHeader }
  | { kind: "no-magic" }
  | { kind: "damaged"; reason: string };

/** Bytes of the header in a slot, CRC included, for its version and the count at H_ACKED_COUNT. */
function slotCrcAt(v: DataView, base: number, version: number): number {
  if (version === FORMAT_VERSION_1) return H_V1_CRC;
  const n = v.getUint32(base + H_ACKED_COUNT, true);
  return n <= MAX_ACKED_RANGES ? HEADER_FIXED_BYTES + 8 * n : -1;
}

export function readHeaderSlot(v: DataView, slot: 0 | 1): SlotState {
  const base = slot * HEADER_SLOT_BYTES;
  if (v.byteLength < base + HEADER_BYTES) return { kind: "no-magic" };
  for (let i = 0; i < FILE_MAGIC.length; i++) {
    if (v.getUint8(base + H_MAGIC + i) !== FILE_MAGIC[i]) return { kind: "no-magic" };
  }
  const version = v.getUint32(base + H_VERSION, true);
  if (version !== FORMAT_VERSION && version !== FORMAT_VERSION_1) return { kind: "damaged", reason: `unsupported format version ${version} (or a damaged header)` };
  // The CRC's place depends on the version and the count: a damaged one points elsewhere, a mismatch too.
  const crcAt = slotCrcAt(v, base, version);
  if (crcAt < 0 || v.byteLength < base + crcAt + 4 || crc32Range(v, base, base + crcAt) !== v.getUint32(base + crcAt, true)) {
    return { kind: "damaged", reason: "header checksum mismatch" };
  }
  if (v.getUint32(base + H_DATA_OFFSET, true) !== DATA_OFFSET) return { kind: "damaged", reason: "bad data offset" };
  const h: RingHeader = {
    fileBytes: getU64(v, base + H_FILE_BYTES),
    generation: getU64(v, base + H_GENERATION),
    readPos: getU64(v, base + H_READ_POS),
    readSeq: getU64(v, base + H_READ_SEQ),
    writePos: getU64(v, base + H_WRITE_POS),
    nextSeq: getU64(v, base + H_NEXT_SEQ),
    epoch: v.getUint32(base + H_EPOCH, true),
    flags: v.getUint32(base + H_FLAGS, true),
    acked: version === FORMAT_VERSION_1 ? [] : readAcked(v, base),
  };
  const ok =
    h.fileBytes >= DATA_OFFSET + 4096 &&
    h.fileBytes % RECORD_ALIGN === 0 &&
    h.readSeq >= 1 &&
    h.nextSeq >= h.readSeq &&
    h.writePos >= h.readPos &&
    h.writePos - h.readPos <= dataBytesOf(h.fileBytes) &&
    h.readPos % RECORD_ALIGN === 0 &&
    h.epoch <= MAX_EPOCH &&
    h.writePos % RECORD_ALIGN === 0 &&
    Number.isSafeInteger(h.nextSeq) &&
    Number.isSafeInteger(h.writePos);
  if (!ok) return { kind: "damaged", reason: "header fields out of range" };
  if (!ackedInRange(h)) return { kind: "damaged", reason: "acknowledged ranges out of range" };
  return { kind: "valid", header: h };
}

function readAcked(v: DataView, base: number): number[] {
  const n = v.getUint32(base + H_ACKED_COUNT, true);
  const readSeq = getU64(v, base + H_READ_SEQ);
  const out = new Array<number>(2 * n);
  for (let i = 0; i < n; i++) {
    const start = readSeq + v.getUint32(base + H_ACKED + 8 * i, true);
    out[2 * i] = start;
    out[2 * i + 1] = start + v.getUint32(base + H_ACKED + 8 * i + 4, true);
  }
  return out;
}

/** Ranges sorted, disjoint, non-empty, above readSeq and below nextSeq. */
function ackedInRange(h: RingHeader): boolean {
  let prev = h.readSeq + 1;
  for (let i = 0; i < h.acked.length; i += 2) {
    const start = h.acked[i]!;
    const end = h.acked[i + 1]!;
    if (start < prev || end <= start || end > h.nextSeq) return false;
    prev = end;
  }
  return true;
}

/** Writes a version 2 header; returns the number of acknowledged ranges it kept (at most MAX_ACKED_RANGES). */
export function writeHeaderSlot(v: DataView, slot: 0 | 1, h: RingHeader): number {
  const base = slot * HEADER_SLOT_BYTES;
  for (let i = 0; i < FILE_MAGIC.length; i++) v.setUint8(base + H_MAGIC + i, FILE_MAGIC[i]!);
  v.setUint32(base + H_VERSION, FORMAT_VERSION, true);
  v.setUint32(base + H_DATA_OFFSET, DATA_OFFSET, true);
  setU64(v, base + H_FILE_BYTES, h.fileBytes);
  setU64(v, base + H_GENERATION, h.generation);
  setU64(v, base + H_READ_POS, h.readPos);
  setU64(v, base + H_READ_SEQ, h.readSeq);
  setU64(v, base + H_WRITE_POS, h.writePos);
  setU64(v, base + H_NEXT_SEQ, h.nextSeq);
  v.setUint32(base + H_EPOCH, h.epoch, true);
  v.setUint32(base + H_FLAGS, h.flags, true);
  v.setUint32(base + H_RESERVED, 0, true);
  // The lowest ranges, as many as fit; leaving one out only means its records are sent again.
  let n = 0;
  for (let i = 0; i < h.acked.length && n < MAX_ACKED_RANGES; i += 2) {
    const start = Math.max(h.acked[i]!, h.readSeq + 1);
    const end = Math.min(h.acked[i + 1]!, h.nextSeq);
    if (end <= start || start - h.readSeq > 0xffffffff || end - start > 0xffffffff) continue;
    v.setUint32(base + H_ACKED + 8 * n, start - h.readSeq, true);
    v.setUint32(base + H_ACKED + 8 * n + 4, end - start, true);
    n++;
  }
  v.setUint32(base + H_ACKED_COUNT, n, true);
  const crcAt = HEADER_FIXED_BYTES + 8 * n;
  v.setUint32(base + crcAt, crc32Range(v, base, base + crcAt), true);
  return n;
}

/** The newest valid header slot, or why there is none. */
export function pickHeader(
  v: DataView,
): { kind: "valid"; header: RingHeader; slot: 0 | 1; otherDamaged: boolean } | { kind: "no-magic" } | { kind: "damaged"; reason: string } {
  const a = readHeaderSlot(v, 0);
  const b = readHeaderSlot(v, 1);
  if (a.kind === "valid" && b.kind === "valid") {
    return a.header.generation >= b.header.generation
      ? { kind: "valid", header: a.header, slot: 0, otherDamaged: false }
      : { kind: "valid", header: b.header, slot: 1, otherDamaged: false };
  }
  if (a.kind === "valid") return { kind: "valid", header: a.header, slot: 0, otherDamaged: true };
  if (b.kind === "valid") return { kind: "valid", header: b.header, slot: 1, otherDamaged: true };
  if (a.kind === "no-magic" && b.kind === "no-magic") return { kind: "no-magic" };
  return { kind: "damaged", reason: a.kind === "damaged" ? a.reason : (b as { reason: string }).reason };
}

// ---------------------------------------------------------------------------------------------
// Records. `at` is an offset into the DataView of the data region.

export function writeRecordHeader(v: DataView, at: number, kind: number, seq: number, length: number, payload: Uint8Array | null, epoch: number): void {
  v.setUint32(at + R_LENGTH, length, true);
  v.setUint32(at + R_SEQ_LO, seq >>> 0, true);
  v.setUint32(at + R_SEQ_HI, Math.floor(seq / TWO32), true);
  v.setUint32(at + R_KIND, (kind | (epoch << 8)) >>> 0, true);
  const headCrc = crc32Range(v, at + R_LENGTH, at + R_CRC);
  const crc = payload ? crc32Bytes(payload, headCrc) : headCrc;
  v.setUint32(at + R_CRC, crc, true);
  // The sync marker last: a record is recognisable only once the rest of its header is in place.
  v.setUint32(at + R_SYNC, RECORD_SYNC, true);
}

export function recordSync(v: DataView, at: number): number {
  return v.getUint32(at + R_SYNC, true);
}
export function recordLength(v: DataView, at: number): number {
  return v.getUint32(at + R_LENGTH, true);
}
export function recordSeq(v: DataView, at: number): number {
  return v.getUint32(at + R_SEQ_HI, true) * TWO32 + v.getUint32(at + R_SEQ_LO, true);
}
export function recordKind(v: DataView, at: number): number {
  return v.getUint32(at + R_KIND, true) & KIND_MASK;
}
export function recordEpoch(v: DataView, at: number): number {
  return v.getUint32(at + R_KIND, true) >>> 8;
}

/**
 * Bytes from logical position `pos` to the start of the next lap when no record starts at `pos`
 * (what is left of the lap is too short for a record header, or holds a wrap marker); 0 when one does.
 * For positions the writer reached: a reader walking records steps over lap ends with it.
 */
export function lapEndAt(v: DataView, dataBytes: number, pos: number): number {
  const phys = pos % dataBytes;
  return dataBytes - phys < RECORD_HEADER_BYTES || recordKind(v, phys) === KIND_WRAP ? dataBytes - phys : 0;
}

/**
 * Checks a record at `at` of a data region of dataBytes: sync marker, kind, length within the lap,
 * CRC. Returns its span in bytes, or 0 when it is not a valid record.
 */
export function validRecordSpan(v: DataView, bytes: Uint8Array, at: number, dataBytes: number): number {
  if (at + RECORD_HEADER_BYTES > dataBytes) return 0;
  if (v.getUint32(at + R_SYNC, true) !== RECORD_SYNC) return 0;
  const kind = v.getUint32(at + R_KIND, true) & KIND_MASK;
  const len = v.getUint32(at + R_LENGTH, true);
  if (kind === KIND_WRAP) {
    if (len !== 0) return 0;
  } else if (kind !== KIND_DATA) return 0;
  const span = recordSpan(len);
  if (at + span > dataBytes) return 0;
  const headCrc = crc32Range(v, at + R_LENGTH, at + R_CRC);
  const crc = len === 0 ? headCrc : crc32Bytes(bytes.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + len), headCrc);
  if (crc !== v.getUint32(at + R_CRC, true)) return 0;
  if (v.getUint32(at + R_SEQ_HI, true) >= 0x200000) return 0; // beyond a safe integer
  return span;
}
