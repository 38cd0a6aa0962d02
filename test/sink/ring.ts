// The ring the sink tests run against: the real mmapped ring file (src/buffer/ring.ts).
import { mkdirSync } from "node:fs";
import { openRing } from "../../src/buffer/ring.ts";
import type { Ring } from "../../src/buffer/types.ts";

export interface TestRing extends Ring {
  /** The ring's read position: the oldest sequence number not yet acknowledged. */
  readSeq(): number;
}

export async function openTestRing(dir: string, capacityBytes: number): Promise<TestRing> {
  mkdirSync(dir, { recursive: true });
  const ring = await openRing({ dir, capacityBytes, syncIntervalMs: 100, log: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } } });
  return Object.assign(Object.create(null), {
    append: ring.append.bind(ring),
    appendPacked: ring.appendPacked.bind(ring),
    lastSeq: ring.lastSeq.bind(ring),
    read: ring.read.bind(ring),
    readRanges: ring.readRanges.bind(ring),
    waitForData: ring.waitForData.bind(ring),
    ack: ring.ack.bind(ring),
    sync: ring.sync.bind(ring),
    durableSeq: ring.durableSeq.bind(ring),
    onDurable: ring.onDurable.bind(ring),
    stats: ring.stats.bind(ring),
    close: ring.close.bind(ring),
    readSeq: () => ring.stats().readSeq,
  }) as TestRing;
}
