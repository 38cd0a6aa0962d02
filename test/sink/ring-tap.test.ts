// The ring tap against the real mmapped ring: latency samples, per-process accounting, and the
// hand-over of unacknowledged records to a replacement reader.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseRfc3339Ms, RingTap, recordTimestampMs } from "../../src/sink/ring-tap.ts";
import { openRing } from "../../src/buffer/ring.ts";
import { appendPayloads, readPayloads } from "../support/ring-payloads.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "tap-"));
  dirs.push(d);
  return d;
}
const enc = new TextEncoder();
const dec = new TextDecoder();
function record(i: number, timestamp: string): Uint8Array {
  return enc.encode(JSON.stringify({ orgUUID: "o", runUUID: "r", pipeUUID: "p", nodeID: "n", podName: "pod", containerName: "main", timestamp, stream: "stdout", message: `line ${i}` }));
}
const msgOf = (p: Uint8Array) => JSON.parse(dec.decode(p)).message as string;

test("RFC 3339 timestamps with nanoseconds and offsets", () => {
  expect(parseRfc3339Ms("2024-05-01T12:00:00.123456789Z")).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 123));
  expect(parseRfc3339Ms("2024-05-01T12:00:00Z")).toBe(Date.UTC(2024, 4, 1, 12));
  expect(parseRfc3339Ms("2024-05-01T14:00:00.5+02:00")).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 500));
  expect(parseRfc3339Ms("2024-05-01T07:30:00-04:30")).toBe(Date.UTC(2024, 4, 1, 12));
  expect(parseRfc3339Ms("yesterday")).toBeNull();
  expect(parseRfc3339Ms("2024-05-01 12:00")).toBeNull();
  expect(recordTimestampMs(record(1, "2024-05-01T12:00:00.000000001Z"))).toBe(Date.UTC(2024, 4, 1, 12));
  expect(recordTimestampMs(enc.encode('{"message":"no time"}'))).toBeNull();
});

test("latency is observed at acknowledgement for the first and last record of each read; acks split own and replayed", async () => {
  const dir = tempDir();
  // An earlier process left 3 records unacknowledged.
  let ring = await openRing({ dir, capacityBytes: 1 << 20, syncIntervalMs: 10 });
  await appendPayloads(ring, [0, 1, 2].map((i) => record(i, "2024-01-01T00:00:00Z")));
  await ring.close();

  ring = await openRing({ dir, capacityBytes: 1 << 20, syncIntervalMs: 10 });
  const firstOwn = ring.stats().nextSeq;
  expect(firstOwn).toBe(4);
  const observed: number[] = [];
  let clock = Date.UTC(2024, 0, 1, 0, 0, 10); // 10 s after the lines were written
  const tap = new RingTap(ring, firstOwn, (s) => observed.push(s), () => clock);
  await appendPayloads(ring, [3, 4, 5, 6].map((i) => record(i, i === 6 ? "2024-01-01T00:00:05Z" : "2024-01-01T00:00:01Z")));

  const a = readPayloads(tap, 3, 1 << 20)!; // replayed 1..3
  expect(a.firstSeq).toBe(1);
  const b = readPayloads(tap, 100, 1 << 20)!; // own 4..7
  expect(b.firstSeq).toBe(4);
  expect(tap.highestHandedOut).toBe(7);
  expect(tap.outstandingRecords()).toBe(7);

  tap.ack(1, 3);
  expect(observed).toEqual([10, 10]); // first and last of the first read
  clock += 1000;
  tap.ack(4, 2); // bisected part: first sample (seq 4) only
  expect(observed).toEqual([10, 10, 10]);
  tap.ack(6, 2);
  expect(observed).toEqual([10, 10, 10, 6]); // seq 7: written at 00:00:05, acked at 00:00:11
  expect(tap.counters).toMatchObject({ ackedOwn: 4, ackedReplayed: 3, latencyUnparsed: 0 });
  expect(tap.outstandingRecords()).toBe(0);
  expect(ring.stats().records).toBe(0);
  await ring.close();
});

test("rewind hands the unacknowledged records of a stopped reader to the next one, in order, before new ones", async () => {
  const ring = await openRing({ dir: tempDir(), capacityBytes: 1 << 20, syncIntervalMs: 10 });
  const tap = new RingTap(ring, 1, () => {});
  await appendPayloads(ring, [0, 1, 2, 3, 4, 5].map((i) => record(i, "2024-01-01T00:00:00Z")));
  readPayloads(tap, 2, 1 << 20); // seqs 1-2
  readPayloads(tap, 10, 1 << 20); // seqs 3-6
  tap.ack(3, 1); // out of order: 3 acknowledged; 1, 2, 4, 5, 6 not
  expect(tap.outstandingRecords()).toBe(5);
  // The reader is replaced: nothing new is handed out before the held records.
  tap.rewind();
  await appendPayloads(ring, [record(6, "2024-01-01T00:00:00Z")]);
  const got: Array<[number, string[]]> = [];
  for (;;) {
    const r = readPayloads(tap, 2, 1 << 20);
    if (!r) break;
    got.push([r.firstSeq, r.payloads.map(msgOf)]);
  }
  expect(got).toEqual([
    [1, ["line 0", "line 1"]],
    [4, ["line 3", "line 4"]],
    [6, ["line 5"]],
    [7, ["line 6"]],
  ]);
  expect(tap.counters.rehanded).toBe(5);
  tap.ack(1, 2);
  tap.ack(4, 4);
  expect(ring.stats().records).toBe(0);
  await ring.close();
});

test("waitForData resolves at once while records wait to be handed again", async () => {
  const ring = await openRing({ dir: tempDir(), capacityBytes: 1 << 20, syncIntervalMs: 10 });
  const tap = new RingTap(ring, 1, () => {});
  await appendPayloads(ring, [record(0, "bad time")]);
  readPayloads(tap, 10, 1 << 20);
  expect(tap.counters.latencyUnparsed).toBe(1);
  tap.rewind();
  const r = await Promise.race([tap.waitForData().then(() => "data"), Bun.sleep(200).then(() => "timeout")]);
  expect(r).toBe("data");
  await ring.close();
});
