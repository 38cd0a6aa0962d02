// Inspecting and damaging ring files from the outside (through read/write, not the mapping).
import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { DATA_OFFSET, KIND_WRAP, RECORD_HEADER_BYTES, dataBytesOf, pickHeader, recordKind, recordLength, recordSeq, recordSpan, type RingHeader } from "../../src/buffer/format.ts";

export interface RecordLoc {
  seq: number;
  /** Offset of the record header in the file. */
  fileOffset: number;
  length: number;
  pos: number;
}

export function header(path: string): RingHeader {
  const buf = readFileSync(path);
  const p = pickHeader(new DataView(buf.buffer, buf.byteOffset, DATA_OFFSET));
  if (p.kind !== "valid") throw new Error(`no valid header: ${p.kind}`);
  return p.header;
}

/** The records from the header's read position to its write position (a clean file). */
export function records(path: string): RecordLoc[] {
  const buf = readFileSync(path);
  const h = header(path);
  const D = dataBytesOf(h.fileBytes);
  const v = new DataView(buf.buffer, buf.byteOffset + DATA_OFFSET, D);
  const out: RecordLoc[] = [];
  for (let pos = h.readPos; pos < h.writePos; ) {
    const phys = pos % D;
    if (D - phys < RECORD_HEADER_BYTES || recordKind(v, phys) === KIND_WRAP) {
      pos += D - phys;
      continue;
    }
    const length = recordLength(v, phys);
    out.push({ seq: recordSeq(v, phys), fileOffset: DATA_OFFSET + phys, length, pos });
    pos += recordSpan(length);
  }
  return out;
}

export function flipBit(path: string, offset: number, bit = 0): void {
  const fd = openSync(path, "r+");
  try {
    const b = new Uint8Array(1);
    readSync(fd, b, 0, 1, offset);
    b[0]! ^= 1 << bit;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

export function writeAt(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

export function readAt(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const b = new Uint8Array(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}
