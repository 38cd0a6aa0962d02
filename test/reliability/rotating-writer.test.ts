// The chaos run's writer and its oracle: kubelet-style rotation on disk, and a tracker that really
// tells missing, duplicated, damaged and misattributed events apart (a checker that cannot fail
// would make the chaos run meaningless).
import { afterAll, expect, test } from "bun:test";
import { closeSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { DeliveryTracker } from "../support/delivery-tracker.ts";
import { fragmentCuts, parseMessageId, RotatingWriter } from "../support/rotating-writer.ts";

const dir = mkdtempSync(join(tmpdir(), "pipekit-writer-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A container's files, oldest first, as (name, text). */
function filesOf(cdir: string): Array<{ name: string; text: string }> {
  const names = readdirSync(cdir).sort((a, b) => (a === "0.log" ? 1 : b === "0.log" ? -1 : a < b ? -1 : 1));
  return names.map((n) => {
    const raw = readFileSync(join(cdir, n));
    return { name: n, text: (n.endsWith(".gz") ? gunzipSync(raw) : raw).toString() };
  });
}

/**
 * The sequences of the events in the files, in order, with P fragments merged per stream across files
 * (as the collector must); and how many times a stream's fragments were interleaved with the other's.
 */
function eventsIn(files: Array<{ text: string }>): { seqs: number[]; interleavings: number } {
  const seqs: number[] = [];
  const merged = new Map<string, string>();
  let interleavings = 0;
  for (const { text } of files) {
    for (const line of text.split("\n").filter(Boolean)) {
      const [, stream, tag, ...rest] = line.split(" ");
      const content = rest.join(" ");
      for (const other of merged.keys()) if (other !== stream) interleavings++;
      const prev = merged.get(stream!) ?? "";
      if (tag === "P") merged.set(stream!, prev + content);
      else {
        merged.delete(stream!);
        const id = parseMessageId(prev + content);
        if (id) seqs.push(id.seq);
      }
    }
  }
  expect([...merged.keys()]).toEqual([]); // no line left unfinished
  return { seqs, interleavings };
}

/** What remains on disk: consecutive sequences, each once, ending with the last one written. */
function expectConsecutiveUpTo(seqs: number[], last: number): void {
  const sorted = [...seqs].sort((a, b) => a - b);
  expect(new Set(seqs).size).toBe(seqs.length);
  expect(sorted[sorted.length - 1]).toBe(last);
  for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBe(1); // no gap within what is kept
}

test("rotates the kubelet way: stamped renames, gzip of older ones, at most maxFiles; every event in exactly one file", () => {
  const w = new RotatingWriter({ root: join(dir, "pods"), podsFile: join(dir, "pods.json"), seed: 3, pods: 1, containers: ["main"], rotateBytes: 8 * 1024, maxFiles: 4 });
  w.write(2000);
  w.close();
  const cdir = w.streams[0]!.dir;
  const names = readdirSync(cdir).sort();
  expect(names.length).toBeLessThanOrEqual(4);
  expect(names).toContain("0.log");
  for (const n of names.filter((n) => n !== "0.log")) expect(n).toMatch(/^0\.log\.\d{8}-\d{6}(\.gz)?$/);
  const plain = names.filter((n) => /^0\.log\.\d{8}-\d{6}$/.test(n));
  expect(plain.length).toBe(1); // only the newest rotated file stays uncompressed
  expect(w.stats.rotations).toBeGreaterThan(10);
  expect(w.stats.deleted).toBe(w.stats.rotations - 3);
  expectConsecutiveUpTo(eventsIn(filesOf(cdir)).seqs, w.written()[0]! - 1);
});

test("interleaves split lines of stdout and stderr and rotates inside lines; each event still reassembles once", () => {
  const w = new RotatingWriter({
    root: join(dir, "pods3"),
    podsFile: join(dir, "pods3.json"),
    seed: 5,
    pods: 1,
    containers: ["main"],
    rotateBytes: 4 * 1024,
    maxFiles: 1000, // keep everything: the whole history is checked
    partialEvery: 5,
    interleaveEvery: 2,
    rotateInsideLineEvery: 2,
  });
  for (let i = 0; i < 50; i++) w.write(40); // many writes: a line is never left open at the end of one
  w.close();
  const files = filesOf(w.streams[0]!.dir);
  const { seqs, interleavings } = eventsIn(files);
  expect(w.written()[0]).toBe(2000 + w.stats.lateWrites);
  expect(w.stats.lateWrites).toBeGreaterThan(0); // late writes still land, where no line is open
  expect(seqs.length).toBe(w.written()[0]!);
  expectConsecutiveUpTo(seqs, w.written()[0]! - 1);
  expect(w.stats.interleaved).toBeGreaterThan(20);
  expect(interleavings).toBeGreaterThan(20); // a stream's line begun while the other's was open
  // About half the rotations fall inside a line: a renamed file ending with a P fragment.
  const endsInsideLine = files.filter((f) => f.name !== "0.log" && / P [^\n]*\n$/.test(f.text)).length;
  expect(w.stats.splitAcrossRotation).toBeGreaterThan(w.stats.rotations / 4);
  expect(endsInsideLine).toBeGreaterThan(w.stats.rotations / 4);
});

test("the ledger names each line's first and last fragment in the order of writes, as the files hold them", () => {
  const w = new RotatingWriter({ root: join(dir, "pods4"), podsFile: join(dir, "pods4.json"), seed: 11, pods: 1, containers: ["main"], rotateBytes: 4 * 1024, maxFiles: 1000, partialEvery: 5, interleaveEvery: 2, rotateInsideLineEvery: 2, ledger: true });
  for (let i = 0; i < 30; i++) w.write(40);
  w.close();
  // One container: the writer's order of writes is the order of the physical lines in its files.
  const places = new Map<number, { first: number; last: number }>();
  const open = new Map<string, { content: string; first: number }>();
  let at = 0;
  for (const { text } of filesOf(w.streams[0]!.dir)) {
    for (const line of text.split("\n").filter(Boolean)) {
      at++;
      const [, stream, tag, ...rest] = line.split(" ");
      const prev = open.get(stream!) ?? { content: "", first: at };
      const content = prev.content + rest.join(" ");
      if (tag === "P") open.set(stream!, { content, first: prev.first });
      else {
        open.delete(stream!);
        places.set(parseMessageId(content)!.seq, { first: prev.first, last: at });
      }
    }
  }
  const ledger = w.ledger![0]!;
  expect(w.writes).toBe(at);
  expect(places.size).toBe(w.written()[0]!);
  let split = 0;
  for (const [seq, p] of places) {
    expect([seq, ledger.firstWrite[seq], ledger.lastWrite[seq]]).toEqual([seq, p.first, p.last]);
    if (p.first !== p.last) split++;
  }
  expect(split).toBeGreaterThan(100);
});

test("the tracker counts missing, duplicated (per epoch), corrupt and misattributed events", () => {
  const w = new RotatingWriter({ root: join(dir, "pods2"), podsFile: join(dir, "pods2.json"), seed: 9, pods: 2, containers: ["main"], rotateBytes: 1 << 20 });
  w.write(100);
  w.close();
  const rec = (id: number, seq: number) => ({ message: w.message(id, seq), podName: w.streams[id]!.pod.name, containerName: "main" });
  const t = new DeliveryTracker(w);
  const all: ReturnType<typeof rec>[] = [];
  w.written().forEach((n, id) => {
    for (let s = 0; s < n; s++) all.push(rec(id, s));
  });
  const missingOne = all.filter((r) => r.message !== w.message(1, 3));
  t.add(missingOne.slice(0, 50), 0);
  t.add(missingOne.slice(50), 1);
  t.add([rec(0, 0), rec(0, 1)], 1); // duplicates after crash 1
  t.add([rec(0, 0)], 2); // and again after crash 2
  t.add([{ ...rec(0, 2), message: w.message(0, 2) + "x" }], 2); // damaged content
  t.add([{ ...rec(0, 4), podName: "someone-else" }], 2); // a duplicate with the wrong pod
  expect(t.missing()).toEqual({ count: 1, examples: ["c1:3"] });
  expect(t.duplicatesByEpoch).toEqual([0, 2, 2]);
  expect(t.duplicateDetail[1]!.fromEarlierEpoch).toBe(2);
  // Per epoch, each event's arrivals in it (what a crash's accounting needs: who delivered what).
  expect([t.arrivals(0, 0, 0), t.arrivals(1, 0, 0), t.arrivals(2, 0, 0), t.arrivals(3, 0, 0)]).toEqual([1, 1, 1, 0]);
  expect(t.arrivals(1, 0, 1)).toBe(1);
  expect(t.arrivals(2, 0, 1)).toBe(0);
  expect([0, 1, 2].map((e) => t.arrivals(e, 1, 3))).toEqual([0, 0, 0]); // the missing one
  expect(t.corrupt).toBe(1);
  expect(t.misattributed).toBe(1);
  expect(t.distinct()).toBe(all.length - 1);
});

test("the tracker knows by when each event first arrived in an epoch (which lines a killed process delivered a sync window before its kill)", () => {
  const w = new RotatingWriter({ root: join(dir, "pods6"), podsFile: join(dir, "pods6.json"), seed: 15, pods: 1, containers: ["main"], rotateBytes: 1 << 20 });
  w.write(10);
  w.close();
  const rec = (seq: number) => ({ message: w.message(0, seq), podName: w.streams[0]!.pod.name, containerName: "main" });
  const t = new DeliveryTracker(w);
  t.add([rec(0), rec(1)], 0, 1000);
  t.add([rec(1), rec(2)], 0, 1250); // 1 again: its first arrival in the epoch stays at 1000
  t.add([rec(3)], 0); // no time given
  t.add([rec(0)], 1, 4000); // the next epoch keeps its own
  expect([0, 1, 2].map((q) => t.arrivedBy(0, 0, q))).toEqual([1000, 1000, 1250]);
  expect(t.arrivedBy(0, 0, 3)).toBe(Number.POSITIVE_INFINITY);
  expect(t.arrivedBy(0, 0, 4)).toBe(Number.POSITIVE_INFINITY); // never arrived
  expect([t.arrivedBy(1, 0, 0), t.arrivedBy(1, 0, 1), t.arrivedBy(2, 0, 0)]).toEqual([4000, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
});

test("the tracker excuses only pieces of missing events cut where the writer cuts lines (for runs where loss is expected)", () => {
  const w = new RotatingWriter({ root: join(dir, "pods4"), podsFile: join(dir, "pods4.json"), seed: 11, pods: 1, containers: ["main"], rotateBytes: 1 << 20 });
  w.write(20);
  w.close();
  const rec = (message: string) => ({ message, podName: w.streams[0]!.pod.name, containerName: "main" });
  const t = new DeliveryTracker(w);
  const lost = [3, 4, 5, 6];
  t.add([...Array(20).keys()].filter((s) => !lost.includes(s)).map((s) => rec(w.message(0, s))), 0);
  const [m3, m4, m5, m6, m7] = [3, 4, 5, 6, 7].map((s) => w.message(0, s)) as [string, string, string, string, string];
  const [third3] = fragmentCuts(m3.length) as [number];
  const [, half4] = fragmentCuts(m4.length) as [number, number];
  const [, , twoThirds5] = fragmentCuts(m5.length) as [number, number, number];
  const [third6] = fragmentCuts(m6.length) as [number];
  t.add(
    [
      m3.slice(third3), // the end of a line whose head was lost
      m4.slice(0, half4), // the head of a line whose end was lost
      m5.slice(0, twoThirds5) + m6.slice(third6), // a head glued to another lost line's end
      m7.slice(0, fragmentCuts(m7.length)[0]!), // the head of an event that did arrive: not excused
      m3.slice(third3 + 1), // cut where the writer never cuts: not excused
      "garbage",
    ].map(rec),
    0,
  );
  expect(t.corrupt).toBe(6);
  expect(t.piecesOfMissing()).toBe(3);
  expect(t.missing().count).toBe(4);
});

test("a write that fails stops the writer and is kept, rather than thrown from a timer", async () => {
  const w = new RotatingWriter({ root: join(dir, "pods5"), podsFile: join(dir, "pods5.json"), seed: 13, pods: 1, containers: ["main"], rotateBytes: 1 << 20 });
  closeSync(w.streams[0]!.fd); // as a full disk would, every write now fails
  await w.run(10_000, 5_000);
  expect(w.failure?.message).toMatch(/EBADF/);
  expect(w.stats.bytes).toBe(0);
});
