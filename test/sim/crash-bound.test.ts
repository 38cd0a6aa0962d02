// The crash bound's measurement (crash-bound.ts): which duplicates a crash caused, and the ring
// traffic over the window before it.
import { describe, expect, test } from "bun:test";
import { CrashMeter, RingTraffic, boundOf, crashDuplicates, overBound, pinnedBehindPendingLines } from "./crash-bound.ts";
import type { Delivered } from "./messenger.ts";
import { SimDataFiles } from "./sim-edges.ts";
import { PREFIX_TABLE_FILE } from "../../src/buffer/prefix-table.ts";
import { POD_SNAPSHOT_FILE } from "../../src/metadata/pod-snapshot.ts";
import { CHECKPOINTS_FILE } from "../../src/source/checkpoints.ts";

const d = (id: number, gen: number, answerLost = false): Delivered => ({ record: { message: `L${id};x` }, at: 0, gen, answerLost });
const idOf = (x: Delivered) => Number(/^L(\d+);/.exec(String(x.record.message))?.[1] ?? -1);

describe("crashDuplicates", () => {
  test("counts deliveries by the next process of records the crashed one delivered, each time", () => {
    const delivered = [d(1, 1), d(2, 1), d(3, 1), d(1, 2), d(2, 2), d(2, 2), d(4, 2)];
    expect(crashDuplicates(delivered, 1, idOf)).toBe(3);
  });

  test("a lost answer excuses one later delivery, before the crash or after it", () => {
    const delivered = [d(1, 1, true), d(2, 1), d(1, 2), d(2, 2, true), d(2, 2)];
    // 1: its last delivery before the crash lost its answer: its re-send is that answer's. 2: one
    // duplicate of the crash (its lost-answer delivery is the crash's, the re-send the lost answer's).
    expect(crashDuplicates(delivered, 1, idOf)).toBe(1);
  });

  test("duplicates of other processes belong to no crash of this one", () => {
    const delivered = [d(1, 1), d(1, 3), d(2, 2), d(2, 2)];
    expect(crashDuplicates(delivered, 1, idOf)).toBe(0);
  });
});

describe("RingTraffic", () => {
  test("counts what changed after the window began, from the newest sample at or before its start", () => {
    const t = new RingTraffic(2000);
    t.sample(1, 100, 10, 0);
    t.sample(1, 900, 40, 5);
    t.sample(1, 1500, 70, 30);
    expect(t.within(1, 2000, 1000, 90, 35)).toEqual({ appended: 50, acked: 30 }); // base: the sample at 900
    expect(t.within(1, 2000, 5000, 90, 35)).toEqual({ appended: 90, acked: 35 }); // the process began inside it
  });

  test("a new process starts from zero", () => {
    const t = new RingTraffic(2000);
    t.sample(1, 100, 10, 5);
    t.sample(2, 200, 3, 1);
    expect(t.within(2, 5000, 1000, 3, 1)).toEqual({ appended: 0, acked: 0 });
    expect(t.within(2, 1000, 1000, 3, 1)).toEqual({ appended: 3, acked: 1 });
  });
});

describe("the bound", () => {
  const terms = { windowMs: 1040, concurrency: 2, batchMaxEvents: 16 };

  test("is the larger of appended and written, plus acknowledged, plus the wire; over it is named", () => {
    let running = { gen: 1, appended: 0, acked: 0 };
    const lines = [{ writtenAt: 1500 }, { writtenAt: 1800 }];
    const meter = new CrashMeter(terms, 0, () => running, () => lines, () => false);
    meter.step(500);
    running = { gen: 1, appended: 20, acked: 4 };
    meter.step(1900);
    meter.crash(2000);
    const delivered = Array.from({ length: 60 }, (_, i) => [d(i, 1), d(i, 2)]).flat();
    const [b] = meter.bounds(delivered, idOf);
    expect(b).toMatchObject({ appended: 20, acked: 4, written: 2, inEvents: 20, outEvents: 4, wireEvents: 32, bound: 56, duplicates: 60 });
    expect(overBound(b!, terms)).toContain("60 duplicates");
    expect(overBound({ ...b!, duplicates: 56 }, terms)).toBeNull();
  });

  test("a crash whose checkpoints could not be saved is not held to it", () => {
    const b = boundOf({ n: 1, at: 0, gen: 1, appended: 0, acked: 0, written: 0, checkpointsStale: true, notDurable: new Set() }, 500, terms);
    expect(b.bound).toBe(32);
    expect(overBound(b, terms)).toBeNull();
  });
});

describe("pinnedBehindPendingLines", () => {
  // Written at writtenAt; a split line ends at `end` (still pending at the crash by default).
  const line = (id: number, writtenAt: number, split = false, source = "pod/main/0", end = split ? Number.POSITIVE_INFINITY : writtenAt) => ({ id, writtenAt, source, split, firstWrite: writtenAt, lastWrite: end });

  test("the lines a crashed process delivered after the head of a split line it did not deliver are read again, in that container only", () => {
    // Line 2 is split and was pending at the crash (at 100): 3 and 4 came after its head and were
    // delivered. Line 5 was not delivered, nothing after it was. Another container is not pinned.
    const lines = [line(1, 10), line(2, 20, true), line(3, 30), line(4, 40), line(5, 50), line(6, 25, false, "pod/wait/0")];
    const delivered = [d(1, 1), d(3, 1), d(4, 1), d(6, 1), d(1, 2), d(2, 2), d(3, 2), d(4, 2), d(5, 2), d(6, 2)];
    expect([...pinnedBehindPendingLines(delivered, 1, idOf, lines, 100)].sort()).toEqual([3, 4]);
  });

  test("a split line the crashed process delivered pins what came after its head while its record was not durable", () => {
    // Line 2 (split, 20..90) was read whole and delivered before the crash at 100, like 3 and 4,
    // written after its head (the other stream). Appended after the ring's last sync that completed,
    // its checkpoints had not moved over it: the next process reads 2 again from its head, and 3 and
    // 4 with it (seed 2874). Once its record was durable, it pinned nothing.
    const lines = [line(1, 10), line(2, 20, true, "pod/main/0", 90), line(3, 30), line(4, 40)];
    const delivered = [d(1, 1), d(2, 1), d(3, 1), d(4, 1), d(2, 2), d(3, 2), d(4, 2)];
    expect([...pinnedBehindPendingLines(delivered, 1, idOf, lines, 100, new Set([2]))].sort()).toEqual([3, 4]);
    expect(pinnedBehindPendingLines(delivered, 1, idOf, lines, 100, new Set([3, 4])).size).toBe(0);
    expect(pinnedBehindPendingLines(delivered, 1, idOf, lines, 100).size).toBe(0);
  });

  test("a line not split, or begun after the crash, pins nothing", () => {
    const lines = [line(1, 10), line(2, 20), line(3, 30), line(4, 200, true), line(5, 210)];
    const delivered = [d(1, 1), d(3, 1), d(5, 1)];
    expect(pinnedBehindPendingLines(delivered, 1, idOf, lines, 100).size).toBe(0);
  });

  test("an overlap of both streams adds nothing: only what came after the pending line's head is read again", () => {
    // Line 2 (split, 20..70) ended after line 4 (split, pending at the crash) began at 60: a
    // checkpoint says where each stream stands, so line 2's pins went with it, and the read begins
    // again at line 4's head — as when line 2 had ended before line 4 began.
    const lines = [line(1, 10), line(2, 20, true, "pod/main/0", 70), line(3, 40), line(4, 60, true), line(5, 90)];
    const delivered = [d(1, 1), d(2, 1), d(3, 1), d(5, 1)];
    expect([...pinnedBehindPendingLines(delivered, 1, idOf, lines, 100)].sort()).toEqual([5]);
    const apart = lines.map((l) => (l.id === 2 ? { ...l, lastWrite: 55 } : l));
    expect([...pinnedBehindPendingLines(delivered, 1, idOf, apart, 100)].sort()).toEqual([5]);
  });

  test("the meter adds them to the bound, as a term of their own", () => {
    const terms = { windowMs: 1040, concurrency: 1, batchMaxEvents: 2 };
    const meter = new CrashMeter(terms, 0, () => ({ gen: 1, appended: 0, acked: 0 }), () => [], () => false);
    meter.crash(100);
    const unsynced = new CrashMeter(terms, 0, () => ({ gen: 1, appended: 0, acked: 0 }), () => [], () => false, () => new Set([1]));
    unsynced.crash(100);
    const lines = [line(1, 10, true), ...Array.from({ length: 10 }, (_, i) => line(i + 2, 20 + i))];
    const delivered = [...lines.slice(1).map((l) => d(l.id, 1)), ...lines.map((l) => d(l.id, 2))];
    const [b] = meter.bounds(delivered, idOf, lines);
    expect(b).toMatchObject({ duplicates: 10, pinnedEvents: 10, wireEvents: 2, bound: 12 });
    expect(overBound(b!, terms)).toBeNull();
    expect(meter.bounds(delivered, idOf, lines.map((l) => ({ ...l, split: false })))[0]).toMatchObject({ pinnedEvents: 0, bound: 2 });
    // Line 1 delivered too, its record appended after the last sync: the same lines read again.
    const all = [d(1, 1), ...delivered];
    expect(meter.bounds(all, idOf, lines)[0]).toMatchObject({ pinnedEvents: 0, bound: 2 });
    expect(unsynced.bounds(all, idOf, lines)[0]).toMatchObject({ duplicates: 11, pinnedEvents: 10, bound: 12 });
  });
});

describe("SimDataFiles.checkpointSaveRefused (a crash's checkpointsStale)", () => {
  test("follows the checkpoint saves only: a prefix table write, refused or not, says nothing about them", () => {
    let full = false;
    const files = new SimDataFiles(() => full);
    const write = (name: string) => {
      try {
        files.write(name, "{}");
      } catch {
        // refused: the disk is full
      }
    };
    write(POD_SNAPSHOT_FILE);
    write(CHECKPOINTS_FILE);
    full = true;
    write(PREFIX_TABLE_FILE); // a new container while the disk is full
    expect(files.checkpointSaveRefused).toBe(false);
    write(POD_SNAPSHOT_FILE); // the save stops at the snapshot
    expect(files.checkpointSaveRefused).toBe(true);
    full = false;
    write(PREFIX_TABLE_FILE); // the table's retry lands before the next save
    expect(files.checkpointSaveRefused).toBe(true);
    write(CHECKPOINTS_FILE);
    expect(files.checkpointSaveRefused).toBe(false);
    expect(files.refused).toBe(2);
  });
});
