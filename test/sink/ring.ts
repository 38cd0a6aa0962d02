// The ring the sink tests run against: the real mmapped ring file (src/buffer/ring.ts).
import { mkdirSync } from "node:fs";
import { openRing } from "../../src/buffer/ring.ts";
import type { Ring } from "../../src/buffer/types.ts";
import { appendPayloads, type PayloadBatch, readPayloads } from "../support/ring-payloads.ts";

export interface TestRing extends Ring {
  /** The ring's read position: the oldest sequence number not yet acknowledged. */
  readSeq(): number;
  /** Appends payloads (packed, through appendPacked). */
  append(payloads: readonly Uint8Array[]): Promise<number>;
  /** readRanges with a view per record. */
  read(maxRecords: number, maxBytes: number): PayloadBatch | null;
}

export async function openTestRing(dir: string, capacityBytes: number): Promise<TestRing> {
  mkdirSync(dir, { recursive: true });
  const ring = await openRing({ dir, capacityBytes, syncIntervalMs: 100, log: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } } });
  return Object.assign(Object.create(null), {
    append: (payloads: readonly Uint8Array[]) => appendPayloads(ring, payloads),
    appendPacked: ring.appendPacked.bind(ring),
    lastSeq: ring.lastSeq.bind(ring),
    read: (maxRecords: number, maxBytes: number) => readPayloads(ring, maxRecords, maxBytes),
    readRanges: ring.readRanges.bind(ring),
    waitForData: ring.waitForData.bind(ring),
    ack: ring.ack.bind(ring),
    forEachUnread: ring.forEachUnread.bind(ring),
    sync: ring.sync.bind(ring),
    durableSeq: ring.durableSeq.bind(ring),
    onDurable: ring.onDurable.bind(ring),
    stats: ring.stats.bind(ring),
    close: ring.close.bind(ring),
    readSeq: () => ring.stats().readSeq,
  }) as TestRing;
}
