import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { openRing, RingOpenError } from "../../src/buffer/ring.ts";
import { header } from "./filetools.ts";
import { cleanupDirs, drainCopies, indexOf, payload, readAll, tempDir, text } from "./helpers.ts";
import { appendPayloads, readPayloads } from "../support/ring-payloads.ts";

afterEach(cleanupDirs);

const KiB = 1024;

describe("ring basics", () => {
  test("creates a preallocated (not sparse) file of buffer.maxBytes", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 1 << 20, syncIntervalMs: 50 });
    const st = statSync(join(dir, "ring.dat"));
    expect(st.size).toBe(1 << 20);
    expect(st.blocks * 512).toBeGreaterThanOrEqual(1 << 20);
    expect(ring.stats().capacityBytes).toBe((1 << 20) - 8192);
    await ring.close();
  });

  test("append, read without removing, ack, reopen hands out only unacked records", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 256 * KiB, syncIntervalMs: 50 });
    expect(ring.lastSeq()).toBe(0);
    const last = await appendPayloads(ring, [payload(1), payload(2), payload(3)]);
    expect(last).toBe(3);
    expect(await appendPayloads(ring, [payload(4)])).toBe(4);
    const b = readPayloads(ring, 2, 1 << 20)!;
    expect(b.firstSeq).toBe(1);
    expect(b.payloads.map(indexOf)).toEqual([1, 2]);
    expect(b.bytes).toBe(b.payloads[0]!.length + b.payloads[1]!.length);
    const c = readPayloads(ring, 10, 1 << 20)!;
    expect(c.firstSeq).toBe(3);
    expect(c.payloads.map(indexOf)).toEqual([3, 4]);
    expect(readPayloads(ring, 10, 1 << 20)).toBeNull(); // never the same record twice in one lifetime
    ring.ack(3, 2); // out of order: the read position cannot move yet
    expect(ring.stats().readSeq).toBe(1);
    expect(ring.stats().records).toBe(2); // 1 and 2 wait; 3 and 4 are acknowledged
    ring.ack(1, 1);
    expect(ring.stats().readSeq).toBe(2);
    await ring.close();

    const again = await openRing({ dir, capacityBytes: 256 * KiB, syncIntervalMs: 50 });
    expect(again.stats().readSeq).toBe(2);
    expect(again.stats().records).toBe(1);
    const all = readAll(again);
    expect(all.length).toBe(1);
    expect(all[0]!.firstSeq).toBe(2);
    expect(all[0]!.payloads.map(indexOf)).toEqual([2]); // 3 and 4 were acknowledged: the header says so
    again.ack(2, 1);
    expect(again.stats().readSeq).toBe(5); // and the read position passes them with 2
    expect(again.lastSeq()).toBe(4);
    expect(await appendPayloads(again, [payload(5)])).toBe(5);
    await again.close();
  });

  test("read respects maxBytes but returns at least one record", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 256 * KiB, syncIntervalMs: 50 });
    await appendPayloads(ring, [payload(1, 100), payload(2, 100), payload(3, 100)]);
    const b = readPayloads(ring, 10, 150)!;
    expect(b.payloads.length).toBe(1);
    const c = readPayloads(ring, 10, 10)!;
    expect(c.payloads.length).toBe(1);
    expect(c.firstSeq).toBe(2);
    await ring.close();
  });

  test("sync makes records durable and notifies listeners only after the fdatasync", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 256 * KiB, syncIntervalMs: 60_000 });
    const seen: number[] = [];
    const off = ring.onDurable((s) => seen.push(s));
    await appendPayloads(ring, [payload(1), payload(2)]);
    expect(ring.durableSeq()).toBe(0);
    expect(seen).toEqual([]);
    const syncsBefore = ring.stats().syncs;
    await ring.sync();
    expect(ring.durableSeq()).toBe(2);
    expect(seen).toEqual([2]);
    expect(ring.stats().syncs).toBe(syncsBefore + 1);
    await ring.sync(); // nothing changed: no new notification
    expect(seen).toEqual([2]);
    off();
    await appendPayloads(ring, [payload(3)]);
    await ring.sync();
    expect(seen).toEqual([2]);
    await ring.close();
  });

  test("the interval timer syncs after a change and then stays quiet", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 256 * KiB, syncIntervalMs: 20 });
    const seen: number[] = [];
    ring.onDurable((s) => seen.push(s));
    await appendPayloads(ring, [payload(1)]);
    await Bun.sleep(80);
    expect(seen).toEqual([1]);
    const syncs = ring.stats().syncs;
    await Bun.sleep(100);
    expect(ring.stats().syncs).toBe(syncs); // idle: no more wake-ups
    await ring.close();
  });

  test("waitForData resolves on append and on close", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 256 * KiB, syncIntervalMs: 50 });
    let woke = false;
    const w = ring.waitForData().then(() => (woke = true));
    await Bun.sleep(5);
    expect(woke).toBe(false);
    await appendPayloads(ring, [payload(1)]);
    await w;
    expect(woke).toBe(true);
    await ring.waitForData(); // data is waiting: immediate
    readPayloads(ring, 10, 1 << 20);
    let woke2 = false;
    const w2 = ring.waitForData().then(() => (woke2 = true));
    await ring.close();
    await w2;
    expect(woke2).toBe(true);
  });

  test("a full ring makes appenders wait; acks let them continue; nothing unacked is overwritten", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const size = 1000;
    const n = 300; // ~300 KB through a 56 KiB data region: several laps
    let appended = 0;
    const producer = (async () => {
      for (let i = 1; i <= n; i++) {
        await appendPayloads(ring, [payload(i, size)]);
        appended = i;
      }
    })();
    await Bun.sleep(20);
    expect(appended).toBeLessThan(n);
    expect(ring.stats().full).toBe(true);
    const got: number[] = [];
    while (got.length < n) {
      await ring.waitForData();
      const b = readPayloads(ring, 7, 1 << 20);
      if (!b) continue;
      for (const p of b.payloads) {
        expect(p.length).toBe(size);
        got.push(indexOf(p));
      }
      await Bun.sleep(0);
      ring.ack(b.firstSeq, b.payloads.length);
    }
    await producer;
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(ring.stats().blockedMs).toBeGreaterThan(0);
    expect(ring.stats().records).toBe(0);
    await ring.close();
  });

  test("a record larger than the ring is refused; an exact-fit one is accepted on an empty ring", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 50 });
    const D = ring.stats().capacityBytes;
    await expect(appendPayloads(ring, [new Uint8Array(D)])).rejects.toThrow(/cannot fit/);
    await appendPayloads(ring, [payload(1, 100)]);
    ring.ack(1, 1);
    // Must wrap to fit, on an empty ring: it may wait for a sync but must not deadlock.
    const big = new Uint8Array(D - 24).fill(0x61);
    expect(await appendPayloads(ring, [big])).toBe(2);
    const b = readPayloads(ring, 1, 1 << 30)!;
    expect(b.payloads[0]!.length).toBe(D - 24);
    await ring.close();
  });

  test("payloads come back byte-identical", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 128 * KiB, syncIntervalMs: 50 });
    const src = [new Uint8Array(0), new Uint8Array([0, 255, 1]), new TextEncoder().encode('{"m":"héllo"}')];
    await appendPayloads(ring, src);
    const b = readPayloads(ring, 10, 1 << 20)!;
    expect(b.payloads.map((p) => Array.from(p))).toEqual(src.map((p) => Array.from(p)));
    expect(text(b.payloads[2]!)).toBe('{"m":"héllo"}');
    await ring.close();
  });
});

describe("packed appends", () => {
  /** Packs payloads into one reused scratch buffer, as the router does. */
  function pack(scratch: Uint8Array, ends: Uint32Array, payloads: Uint8Array[]) {
    let at = 0;
    payloads.forEach((p, i) => {
      scratch.set(p, at);
      at += p.length;
      ends[i] = at;
    });
    return { bytes: scratch, ends, count: payloads.length };
  }

  test("packed records come back byte-identical, empty and binary ones included", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 128 * KiB, syncIntervalMs: 50 });
    const src = [payload(1, 80), new Uint8Array(0), new Uint8Array([0, 255, 1]), payload(4, 300)];
    expect(await ring.appendPacked(pack(new Uint8Array(4096), new Uint32Array(8), src))).toBe(4);
    const b = readPayloads(ring, 10, 1 << 20)!;
    expect(b.firstSeq).toBe(1);
    expect(b.payloads.map((p) => Array.from(p))).toEqual(src.map((p) => Array.from(p)));
    await ring.close();
  });

  test("the caller may overwrite its buffer as soon as appendPacked returns, even on a full ring", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const scratch = new Uint8Array(64 * KiB);
    const ends = new Uint32Array(64);
    const size = 1000;
    const n = 400; // several laps of a 56 KiB data region
    const pending: Promise<number>[] = [];
    for (let i = 1; i <= n; i += 20) {
      const group = Array.from({ length: 20 }, (_, k) => payload(i + k, size));
      pending.push(ring.appendPacked(pack(scratch, ends, group)));
      scratch.fill(0x7a); // what a reused scratch buffer would hold next: must not reach the ring
      ends.fill(0);
    }
    await Bun.sleep(10);
    expect(ring.stats().full).toBe(true); // most groups wait, holding copies of their records
    const got: number[] = [];
    while (got.length < n) {
      await ring.waitForData();
      const b = readPayloads(ring, 16, 1 << 20);
      if (!b) continue;
      for (const p of b.payloads) got.push(indexOf(p));
      ring.ack(b.firstSeq, b.payloads.length);
    }
    expect(await Promise.all(pending)).toEqual(Array.from({ length: n / 20 }, (_, k) => (k + 1) * 20));
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    await ring.close();
  });

  test("an append that does not fit whole waits whole: none of its records is in the ring before all of them fit", async () => {
    // The source marks a file once its hand-over resolves, and a crash replays only what was appended
    // since the last sync: records of a hand-over appended while the rest waited for room were read,
    // delivered and durable, yet behind the file's checkpoint — sent again after a crash, however long
    // before it they were appended.
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const scratch = new Uint8Array(64 * KiB);
    const ends = new Uint32Array(64);
    const size = 1000;
    for (let i = 1; i <= 50; i++) await ring.appendPacked(pack(scratch, ends, [payload(i, size)])); // ~6 KiB left of a 56 KiB data region
    const group = ring.appendPacked(pack(scratch, ends, Array.from({ length: 10 }, (_, k) => payload(51 + k, size))));
    let done = false;
    void group.then(() => (done = true));
    await Bun.sleep(20);
    expect(done).toBe(false);
    expect(ring.lastSeq()).toBe(50); // not the 6 that would have fitted
    const first = readPayloads(ring, 100, 1 << 20);
    expect(first?.payloads.map(indexOf)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    ring.ack(first!.firstSeq, first!.payloads.length);
    expect(await group).toBe(60);
    expect(readPayloads(ring, 100, 1 << 20)?.payloads.map(indexOf)).toEqual(Array.from({ length: 10 }, (_, i) => 51 + i));
    await ring.close();
  });

  test("records that could not all fit even in an empty ring are written as room frees", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const scratch = new Uint8Array(128 * KiB);
    const ends = new Uint32Array(128);
    const n = 80; // ~80 KiB: more than the data region holds
    const all = ring.appendPacked(pack(scratch, ends, Array.from({ length: n }, (_, i) => payload(i + 1, 1000))));
    const got: number[] = [];
    while (got.length < n) {
      await ring.waitForData();
      const b = readPayloads(ring, 16, 1 << 20);
      if (!b) continue;
      got.push(...b.payloads.map(indexOf));
      ring.ack(b.firstSeq, b.payloads.length);
    }
    expect(await all).toBe(n);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    await ring.close();
  });

  test("a record that ends exactly at the end of a lap: the next one goes to the lap's start, and both survive a reopen", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const D = ring.stats().capacityBytes;
    const size = 104; // span 128 (24-byte header, 8-aligned): D / 128 records fill a lap exactly
    expect(D % 128).toBe(0);
    const perLap = D / 128;
    const first = Array.from({ length: perLap - 100 }, (_, i) => payload(i + 1, size));
    await appendPayloads(ring, first);
    const b = readPayloads(ring, perLap, 1 << 30)!;
    ring.ack(b.firstSeq, b.payloads.length);
    await ring.sync(); // the acknowledged space becomes writable
    // One call whose run crosses the end of the lap on a record boundary.
    const second = Array.from({ length: 200 }, (_, i) => payload(perLap - 100 + i + 1, size));
    const scratch = new Uint8Array(200 * size);
    const ends = new Uint32Array(200);
    second.forEach((p, i) => {
      scratch.set(p, i * size);
      ends[i] = (i + 1) * size;
    });
    expect(await ring.appendPacked({ bytes: scratch, ends, count: 200 })).toBe(perLap + 100);
    await ring.close();
    const again = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const got = drainCopies(again).map((r) => indexOf(r.bytes));
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => perLap - 100 + i + 1));
    expect(again.stats().recoverySkippedRecords).toBe(0);
    await again.close();
  });

  test("a packed record larger than the ring is refused without appending any of its batch", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 50 });
    const D = ring.stats().capacityBytes;
    const big = new Uint8Array(D + 10);
    await expect(ring.appendPacked({ bytes: big, ends: new Uint32Array([10, D + 10]), count: 2 })).rejects.toThrow(/cannot fit/);
    expect(ring.lastSeq()).toBe(0);
    await ring.close();
  });
});

describe("ranges", () => {
  test("readRanges hands out the same records as read, as offsets into the data region, within its limits", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const D = ring.stats().capacityBytes;
    // Laps a few times so that ranges start anywhere in the region, wrap markers included.
    let next = 1;
    for (let lap = 0; lap < 5; lap++) {
      const batch = Array.from({ length: 40 }, () => payload(next++, 100 + ((next * 37) % 900)));
      await appendPayloads(ring, batch);
      const got: Uint8Array[] = [];
      let viaRead = false;
      for (;;) {
        // Alternate the two forms: they share one cursor.
        viaRead = !viaRead;
        if (viaRead) {
          const b = readPayloads(ring, 7, 4000);
          if (!b) break;
          got.push(...b.payloads.map((p) => p.slice()));
          ring.ack(b.firstSeq, b.payloads.length);
          continue;
        }
        const r = ring.readRanges(5, 3000);
        if (!r) break;
        expect(r.count).toBeLessThanOrEqual(5);
        expect(r.offsets.length).toBe(2 * r.count);
        let bytes = 0;
        for (let i = 0; i < r.count; i++) {
          const [a, b] = [r.offsets[2 * i]!, r.offsets[2 * i + 1]!];
          expect(b).toBeLessThanOrEqual(D);
          bytes += b - a;
          got.push(Uint8Array.from(r.data.subarray(a, b)));
        }
        expect(r.bytes).toBe(bytes);
        if (r.count > 1) expect(bytes).toBeLessThanOrEqual(3000);
        ring.ack(r.firstSeq, r.count);
      }
      expect(got.map(indexOf)).toEqual(batch.map(indexOf));
      expect(got.map((p) => p.length)).toEqual(batch.map((p) => p.length));
      await ring.sync();
    }
    await ring.close();
  });
});

describe("ring lifecycle", () => {
  test("close rejects appenders waiting on a full ring, wakes readers, and keeps what was appended", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const appended: number[] = [];
    let rejected: unknown = null;
    const producer = (async () => {
      for (let i = 1; ; i++) appended.push(await appendPayloads(ring, [payload(i, 1000)]));
    })().catch((e) => (rejected = e));
    await Bun.sleep(20);
    expect(ring.stats().full).toBe(true);
    await ring.close();
    await producer;
    expect((rejected as Error).name).toBe("RingClosedError");
    await expect(appendPayloads(ring, [payload(0)])).rejects.toThrow(/closed/);
    expect(readPayloads(ring, 10, 1 << 20)).toBeNull();
    const again = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    expect(again.lastSeq()).toBe(appended.length);
    expect(again.durableSeq()).toBe(appended.length);
    expect(drainCopies(again).map((r) => indexOf(r.bytes))).toEqual(appended);
    await again.close();
  });

  test("acks of records never appended are refused; repeated and stale acks are harmless", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    await appendPayloads(ring, [payload(1), payload(2), payload(3)]);
    expect(() => ring.ack(3, 2)).toThrow(RangeError);
    readPayloads(ring, 10, 1 << 20);
    ring.ack(2, 1);
    ring.ack(2, 1);
    ring.ack(1, 2);
    ring.ack(1, 1);
    expect(ring.stats().readSeq).toBe(3);
    expect(ring.stats().ackedRecords).toBe(2);
    await ring.close();
  });

  test("reopening restarts the reader cursor at the read position", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    await appendPayloads(ring, [payload(1), payload(2), payload(3)]);
    readPayloads(ring, 2, 1 << 20);
    await ring.close();
    const again = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    expect(readPayloads(again, 10, 1 << 20)!.firstSeq).toBe(1);
    await again.close();
  });
});

describe("long-lived positions", () => {
  test("logical positions are rebased by whole laps and records survive it", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000, rebaseAtBytes: 200 * KiB });
    const got: number[] = [];
    let seq = 0;
    const pending: Array<[number, number]> = [];
    for (let i = 1; i <= 2000; i++) {
      seq = await appendPayloads(ring, [payload(i, 300)]);
      const b = readPayloads(ring, 100, 1 << 20);
      if (b) {
        for (const p of b.payloads) got.push(indexOf(p));
        pending.push([b.firstSeq, b.payloads.length]);
        if (pending.length > 5) ring.ack(...pending.splice((i * 7) % pending.length, 1)[0]!); // out of order, a few held back
      }
      if (i % 50 === 0) await ring.sync();
    }
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(seq).toBe(2000);
    const unacked = ring.stats().records;
    await ring.close();
    const h = header(join(dir, "ring.dat"));
    expect(h.writePos).toBeLessThan(200 * KiB + 2 * (64 * KiB)); // rebased (600 KB went through)
    const again = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const rest = drainCopies(again);
    expect(rest.length).toBe(unacked);
    expect(rest.map((r) => indexOf(r.bytes))).toEqual(rest.map((r) => r.seq));
    expect(again.stats().recoverySkippedRecords + again.stats().recoveryCutBytes).toBe(0);
    await again.close();
  });
});

describe("wrapping", () => {
  test("a large record that must wrap while others are unacked continues once they are acked", async () => {
    const dir = tempDir();
    const ring = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    const D = ring.stats().capacityBytes; // 57344
    const small = Array.from({ length: 20 }, (_, i) => payload(i + 1, 1000)); // ~20 KB, unacked
    await appendPayloads(ring, small);
    // Fits neither in the ~36 KB left before the end nor in the ~20 KB at the start: it needs the
    // skipped end of the lap to be released too, once everything before it is acknowledged.
    const big = new Uint8Array(40_000).fill(0x62);
    let done = false;
    const p = appendPayloads(ring, [big]).then((s) => {
      done = true;
      return s;
    });
    await Bun.sleep(20);
    expect(done).toBe(false);
    expect(ring.stats().full).toBe(true);
    const b = readPayloads(ring, 100, 1 << 30)!;
    expect(b.payloads.length).toBe(20);
    ring.ack(1, 20);
    expect(await Promise.race([p, Bun.sleep(2000).then(() => -1)])).toBe(21);
    const c = readPayloads(ring, 1, 1 << 30)!;
    expect(c.firstSeq).toBe(21);
    expect(c.payloads[0]!.length).toBe(40_000);
    expect(D).toBeGreaterThan(40_024);
    await ring.close();
    const again = await openRing({ dir, capacityBytes: 64 * KiB, syncIntervalMs: 60_000 });
    expect(drainCopies(again).map((r) => r.seq)).toEqual([21]);
    await again.close();
  });
});

describe("start-up errors", () => {
  test("a ring larger than the disk can hold fails at start with a clear error and leaves no file", async () => {
    const dir = tempDir();
    const err = (await openRing({ dir, capacityBytes: 10e12, syncIntervalMs: 1000 }).catch((e) => e)) as Error;
    expect(err).toBeInstanceOf(RingOpenError);
    expect(err.name).toBe("RingOpenError");
    expect(err.message).toContain(join(dir, "ring.dat"));
    expect(err.message).toMatch(/cannot allocate 10000000000000 bytes .*(ENOSPC|EFBIG|EDQUOT)/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
