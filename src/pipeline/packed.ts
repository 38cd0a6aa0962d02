// The router's output buffer: records written back to back into one growable buffer (the ring's
// PackedRecords), reused for every emit — the ring copies them before appendPacked returns.
import type { PackedRecords } from "../buffer/types.ts";

const DEFAULT_BYTES = 1 << 20;
const DEFAULT_RECORDS = 1024;

export class RecordBuffer implements PackedRecords {
  bytes: Uint8Array;
  ends: Uint32Array;
  /** Records closed so far. */
  count = 0;
  /** End of what is written (the record being written, if any, starts at `recordStart`). */
  at = 0;
  private readonly te = new TextEncoder();

  constructor(private readonly initialBytes = DEFAULT_BYTES) {
    this.bytes = new Uint8Array(initialBytes);
    this.ends = new Uint32Array(DEFAULT_RECORDS);
  }

  /** Where the record being written starts. */
  get recordStart(): number {
    return this.count === 0 ? 0 : (this.ends[this.count - 1] as number);
  }

  /** Empties the buffer; one that an outsized record grew gives its memory back. */
  clear(): void {
    this.count = 0;
    this.at = 0;

    if (this.bytes.length > 4 * this.initialBytes) this.bytes = new Uint8Array(this.initialBytes);
    if (this.ends.length > 16 * DEFAULT_RECORDS) this.ends = new Uint32Array(DEFAULT_RECORDS);
  }

  /** Makes room for `n` more bytes after `at` (what is before `at` is kept; `bytes` may be replaced). */
  reserve(n: number): void {
    const need = this.at + n;
    if (need <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(need, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.at));
    this.bytes = grown;
  }

  /** Closes the record that ends at `at`. */
  end(): void {
    if (this.count === this.ends.length) {
      const grown = new Uint32Array(this.ends.length * 2);
      grown.set(this.ends);
      this.ends = grown;
    }
    this.ends[this.count++] = this.at;
  }

  /** Bytes of the last record closed. */
  get lastRecordBytes(): number {
    return this.count === 0 ? 0 : (this.ends[this.count - 1] as number) - (this.count === 1 ? 0 : (this.ends[this.count - 2] as number));
  }

  /** Takes back the last record closed. */
  dropLast(): void {
    if (this.count === 0) return;
    this.count--;
    this.at = this.recordStart;
  }

  /** Appends bytes (not closing a record). */
  writeBytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.bytes.set(b, this.at);
    this.at += b.length;
  }

  /** Appends a string's UTF-8 bytes (not closing a record). */
  writeString(s: string): void {
    this.reserve(s.length * 3); // UTF-16 unit → at most 3 bytes
    this.at += this.te.encodeInto(s, this.bytes.subarray(this.at)).written;
  }

  /** Record i's bytes (a view; for tests and inspection). */
  record(i: number): Uint8Array {
    return this.bytes.subarray(i === 0 ? 0 : (this.ends[i - 1] as number), this.ends[i] as number);
  }
}
