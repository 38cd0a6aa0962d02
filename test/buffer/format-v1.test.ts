// A ring file of format version 1 (written before the headers recorded acknowledged ranges) still
// opens and delivers its records; the first sync upgrades it in place (docs/ring-format.md).
// test/fixtures/ring-v1.dat was written by the version 1 code: the smallest ring (12 KiB), lapped
// twice, records 1..60 of payload(i, 100 + (i % 5) * 20), 1..48 acknowledged in order, then 53..56
// and 59 acknowledged out of order (version 1 does not keep those), closed.
import { afterEach, expect, test } from "bun:test";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FORMAT_VERSION, FORMAT_VERSION_1, HEADER_SLOT_BYTES } from "../../src/buffer/format.ts";
import { openRing, RING_FILE } from "../../src/buffer/ring.ts";
import { header } from "./filetools.ts";
import { cleanupDirs, drainCopies, indexOf, payload, tempDir } from "./helpers.ts";
import { appendPayloads } from "../support/ring-payloads.ts";

afterEach(cleanupDirs);

const FIXTURE = join(import.meta.dir, "../fixtures/ring-v1.dat");
const sentPayload = (i: number) => payload(i, 100 + (i % 5) * 20);
const versions = (path: string) => {
  const b = readFileSync(path);
  return [b.readUInt32LE(8), b.readUInt32LE(HEADER_SLOT_BYTES + 8)];
};

function copyFixture(): { dir: string; path: string } {
  const dir = tempDir("ringv1-");
  const path = join(dir, RING_FILE);
  copyFileSync(FIXTURE, path);
  return { dir, path };
}

test("a version 1 file opens, delivers every record it holds unacknowledged, and is upgraded in place", async () => {
  const { dir, path } = copyFixture();
  expect(versions(path)).toEqual([FORMAT_VERSION_1, FORMAT_VERSION_1]);
  expect(header(path)).toMatchObject({ readSeq: 49, nextSeq: 61, acked: [] });
  const ring = await openRing({ dir, capacityBytes: 12288, syncIntervalMs: 60_000 });
  expect(ring.stats().recoverySkippedRecords + ring.stats().recoveryCutBytes + (ring.stats().recoveryMovedAsideFiles ?? 0)).toBe(0);
  const got = drainCopies(ring);
  // Version 1 kept no acknowledged ranges: 53..56 and 59 come again, as they always did.
  expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 12 }, (_, i) => 49 + i));
  for (const g of got) expect(Array.from(g.bytes)).toEqual(Array.from(sentPayload(g.seq)));
  // The open's sync wrote a version 2 header into one slot; the other still holds the version 1 one.
  expect(versions(path).sort()).toEqual([FORMAT_VERSION_1, FORMAT_VERSION]);
  // From now on acknowledged ranges are kept.
  ring.ack(52, 3);
  ring.ack(58, 2);
  await appendPayloads(ring, [sentPayload(61)]);
  await ring.close();
  expect(versions(path)).toEqual([FORMAT_VERSION, FORMAT_VERSION]);
  const again = await openRing({ dir, capacityBytes: 12288, syncIntervalMs: 60_000 });
  expect(drainCopies(again).map((g) => indexOf(g.bytes))).toEqual([49, 50, 51, 55, 56, 57, 60, 61]);
  await again.close();
});

test("a version 1 file opened with another buffer.maxBytes is resized keeping every record", async () => {
  const { dir } = copyFixture();
  const ring = await openRing({ dir, capacityBytes: 64 * 1024, syncIntervalMs: 60_000 });
  const got = drainCopies(ring);
  expect(got.map((g) => indexOf(g.bytes))).toEqual(Array.from({ length: 12 }, (_, i) => 49 + i));
  expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 12 }, (_, i) => 49 + i));
  await ring.close();
});
