// Lines split around a restart (issue 4 §3): a line pending across a rotation, or lines of both
// streams overlapping, arrive whole and once after a stop, a crash or a run that never saved.
import { afterAll, afterEach, expect, test } from "bun:test";
import { appendFileSync, renameSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupDirs, cri, criLines, expectedMessages, podDir, rotationStamp, waitFor } from "./harness.ts";
import { collector, gzipAway, savedCheckpoints, splitAcrossRotationRotatedForgotten, stopRunning } from "./restarts.ts";

afterEach(stopRunning);
afterAll(cleanupDirs);

test("a partial spanning a rotation survives a crash and a gzip of the head's file during downtime", async () => {
  const c = collector();
  const d = podDir(c.root, "uid-span");
  const live = join(d, "0.log");
  writeFileSync(live, cri("first") + cri("head|", "stdout", "P"));
  c.start();
  expect(await waitFor(() => c.h.received.length === 1, 2000)).toBe(true);
  // Rotation: the continuation goes to the new file; the line is still incomplete.
  const rotated = `${live}.${rotationStamp()}`;
  renameSync(live, rotated);
  writeFileSync(live, cri("middle|", "stdout", "P"));
  expect(await waitFor(() => c.h.source.fileStatus().length === 1 && c.h.source.fileStatus()[0]!.readOffset !== 0, 3000)).toBe(true);
  await Bun.sleep(100); // the ring syncs: both files' checkpoints are saved pinned
  const saved = savedCheckpoints(c.h.dataDir);
  expect(saved.length).toBe(2); // the retired file is kept: it holds the line's head
  await c.h.crash();
  // Downtime: the line completes, and the kubelet compresses the rotated file.
  appendFileSync(live, cri("tail") + cri("after"));
  gzipAway(rotated);
  const second = c.restart();
  expect(await waitFor(() => second.received.length === 2, 3000)).toBe(true);
  await Bun.sleep(100);
  expect(c.allMessages()).toEqual(["first", "head|middle|tail", "after"]);
  expect(second.source.counters.filesRecovered).toBe(1);
  expect(second.source.counters.partialFlushTimeouts).toBe(0);
});

test("a closed file whose pending line completes in its successor keeps its checkpoint until that line's record is in the ring: a crash meanwhile loses nothing (simulation seed 4243)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-inflight"), "0.log");
  writeFileSync(live, cri("first") + cri("head|", "stdout", "P"));
  c.start();
  expect(await waitFor(() => c.h.received.length === 1 && c.h.durable === c.h.seq, 2000)).toBe(true);
  const rotated = `${live}.${rotationStamp()}`;
  renameSync(live, rotated);
  writeFileSync(live, cri("other", "stderr"));
  // The rotated file is drained and closed (still pinned by the pending line), the successor read on.
  expect(await waitFor(() => c.h.received.length === 2 && c.h.source.fileStatus().length === 1, 3000)).toBe(true);
  c.h.gate(); // the ring is full: the record completing the line waits
  appendFileSync(live, cri("tail"));
  const emits = c.h.emits;
  expect(await waitFor(() => c.h.emits > emits, 2000)).toBe(true);
  c.h.source.onDurable(c.h.durable); // a ring sync while that record waits: the checkpoints are saved
  c.h.autoDurable = false;
  c.h.ungate();
  await c.h.crash(); // before the record is durable
  const second = c.restart();
  expect(await waitFor(() => second.received.some((r) => r.message.includes("tail")), 3000)).toBe(true);
  await Bun.sleep(100);
  expect(second.messages().filter((m) => m !== "other")).toEqual(["head|tail"]);
});

test("lines of both streams overlapping across a rotation, with no point in the successor outside a line: after a restart the successor resumes at the pending line and skips the rest of the line stderr was inside of there — no tail arrives alone, nothing twice (simulation seeds 184, 1114, 1476, 1652, 209)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-overlap"), "0.log");
  writeFileSync(live, cri("first") + cri("a1|", "stdout", "P") + cri("b1|", "stderr", "P"));
  c.start();
  expect(await waitFor(() => c.h.received.length === 1, 2000)).toBe(true);
  const rotated = `${live}.${rotationStamp()}`;
  renameSync(live, rotated);
  // Each line of the successor begins while the other stream is inside a line: stdout's line ends,
  // a new one begins, then stderr's ends.
  writeFileSync(live, cri("a2") + cri("c1|", "stdout", "P") + cri("b2", "stderr"));
  expect(await waitFor(() => c.h.received.length === 3 && c.h.source.fileStatus().length === 1, 3000)).toBe(true);
  await Bun.sleep(100); // durable, checkpoints saved
  await c.h.stop();
  appendFileSync(live, cri("c2"));
  const second = c.restart();
  expect(await waitFor(() => second.received.some((r) => r.message.startsWith("c")), 3000)).toBe(true);
  await Bun.sleep(100);
  // Never "a2" or "b2" alone. (The checkpoint used to stay where the overlap began, and the rotated
  // file was read again whole: "a1|a2" and "b1|b2" twice.)
  expect(c.allMessages()).toEqual(["first", "a1|a2", "b1|b2", "c1|c2"]);
});

test("lines of both streams overlapping without a break across rotations, the older files deleted: after a restart the live file resumes at the line still pending, no tail of a line delivered arrives alone (simulation seeds 4053, 10618, 17662)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-chain"), "0.log");
  /** The one open file is the live file, read to its end, and everything read is durable. */
  const settled = (n: number) => () => c.h.received.length === n && c.h.source.fileStatus().length === 1 && c.h.durable === c.h.seq;
  writeFileSync(live, cri("first") + cri("a1|", "stdout", "P"));
  c.start();
  expect(await waitFor(() => c.h.received.length === 1, 2000)).toBe(true);
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  // At every point one stream or the other is inside a line: the overlap never breaks.
  writeFileSync(live, cri("b1|", "stderr", "P") + cri("a2") + cri("c1|", "stdout", "P"));
  expect(await waitFor(settled(2), 3000)).toBe(true);
  const r2 = `${live}.${rotationStamp()}`;
  renameSync(live, r2);
  writeFileSync(live, cri("b2", "stderr") + cri("d1|", "stderr", "P") + cri("c2") + cri("e1|", "stdout", "P"));
  expect(await waitFor(settled(4), 3000)).toBe(true);
  // The kubelet deletes the rotated files (read, closed); the collector stops while d and e go on.
  unlinkSync(r1);
  unlinkSync(r2);
  await Bun.sleep(100); // checkpoints saved
  await c.h.stop();
  appendFileSync(live, cri("d2", "stderr") + cri("e2"));
  const second = c.restart();
  expect(await waitFor(() => second.received.length >= 2, 3000)).toBe(true);
  await Bun.sleep(100);
  // The live file's checkpoint used to stay at its first byte (where the overlap began there), and
  // the next process made records of the tails "b2" and "c2".
  expect(c.allMessages()).toEqual(["first", "a1|a2", "b1|b2", "c1|c2", "d1|d2", "e1|e2"]);
});

test("restarted twice inside an overlap: the second restart still skips the rest of the line delivered before the first one", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-twice"), "0.log");
  // stderr's line begins inside stdout's, which ends while stderr's goes on.
  writeFileSync(live, cri("first") + cri("a1|", "stdout", "P") + cri("b1|", "stderr", "P") + cri("a2"));
  c.start();
  expect(await waitFor(() => c.h.received.length === 2, 2000)).toBe(true);
  await Bun.sleep(100);
  await c.h.stop();
  // Resumed at stderr's line, inside stdout's delivered one; stopped again before stderr's ends.
  const second = c.restart();
  await Bun.sleep(300);
  expect(second.received.length).toBe(0);
  await second.stop();
  const third = c.restart();
  appendFileSync(live, cri("b2", "stderr"));
  expect(await waitFor(() => third.received.length >= 1, 3000)).toBe(true);
  await Bun.sleep(100);
  expect(c.allMessages()).toEqual(["first", "a1|a2", "b1|b2"]);
});

test("a graceful stop reads on a line whose head's file is deleted, to its end on disk: it arrives whole, not its tail alone from the next process (simulation seed 17183)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-orphan"), "0.log");
  writeFileSync(live, cri("first") + cri("h1|", "stderr", "P"));
  c.start();
  expect(await waitFor(() => c.h.received.length === 1, 2000)).toBe(true);
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  writeFileSync(live, cri("h2|", "stderr", "P") + cri("o"));
  expect(await waitFor(() => c.h.received.length === 2 && c.h.source.fileStatus().length === 1, 3000)).toBe(true);
  unlinkSync(r1); // read and closed: the line's head is only in the collector's memory now
  await Bun.sleep(100);
  // The line's end is written just as the collector stops: not read yet.
  appendFileSync(live, cri("h3", "stderr"));
  await c.h.stop();
  const second = c.restart();
  appendFileSync(live, cri("after"));
  expect(await waitFor(() => second.received.some((r) => r.message === "after"), 3000)).toBe(true);
  await Bun.sleep(100);
  // The next process used to resume at the line's fragment in the live file: "h2|h3" alone.
  expect(c.allMessages()).toEqual(["first", "o", "h1|h2|h3", "after"]);
});

test("at start, a rotated file the last run did not know is read whole, and so is the live file after it: a line split between them is not cut at the live file's checkpoint (simulation seeds 148, 4986)", async () => {
  const c = collector({ partialFlushMs: 300 });
  await splitAcrossRotationRotatedForgotten(c, "uid-whole");
  const second = c.restart();
  expect(await waitFor(() => second.received.length >= 3, 3000)).toBe(true);
  await Bun.sleep(500);
  expect(second.messages()).toEqual(["a", "head|tail", "b"]); // read again whole: duplicates, nothing cut
  expect(second.source.counters.partialFlushTimeouts).toBe(0);
});

test("at start, a rotated file read whole before the one the last run was reading: that one is read whole too, and a line split between them arrives whole (simulation seed 8586)", async () => {
  const c = collector({ partialFlushMs: 300 });
  const live = await splitAcrossRotationRotatedForgotten(c, "uid-behind");
  // While down, that file is rotated too: the next start finds it at its rotated name, from its checkpoint.
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, cri("c"));
  const second = c.restart();
  expect(await waitFor(() => second.messages().some((m) => m.endsWith("c")), 3000)).toBe(true);
  await Bun.sleep(500);
  expect(second.messages()).toEqual(["a", "head|tail", "b", "c"]); // read again whole: duplicates, nothing glued
  expect(second.source.counters.partialFlushTimeouts).toBe(0);
});

test("a run that dies before its first checkpoint save still tells the next one it ran: a file it followed, rotated while down, is read, and the line split across the rotation arrives whole (simulation seeds 2069, 4153, 5202, 9705)", async () => {
  const c = collector({ scanIntervalMs: 60_000 });
  const uid = "uid-unsaved";
  c.h.decisions.set(uid, "hold"); // its pod not known yet: opened, not read, nothing to make durable
  c.start();
  // The pod starts after the collector: its file is found through inotify, not by a scan.
  const live = join(podDir(c.root, uid), "0.log");
  writeFileSync(live, cri("a") + cri("head|", "stdout", "P"));
  expect(await waitFor(() => c.h.source.fileStatus().length === 1, 2000)).toBe(true);
  await c.h.crash();
  // While down: the kubelet rotates, the line ends in the new file.
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, cri("tail") + cri("b"));
  const second = c.restart();
  expect(await waitFor(() => second.messages().includes("b"), 3000)).toBe(true);
  await Bun.sleep(200);
  expect(second.messages()).toEqual(["a", "head|tail", "b"]); // not ["tail", "b"]: the rotated file was history
});

test("a file rotated while a graceful stop drained the ring is read by the next start: the last save says when the stop stopped looking, not when it was written (simulation seed 32330)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-drain"), "0.log");
  writeFileSync(live, criLines("a", 0, 3));
  c.start();
  expect(await waitFor(() => c.h.received.length === 3, 2000)).toBe(true);
  const stopAt = Date.now();
  await c.h.source.stop(); // reading stopped; the ring drains (up to shutdownTimeoutMs) before the last save
  // Meanwhile the container restarts (1.log, a live path the stopping run never saw) and its first
  // file rotates inside a line.
  const restarted = join(podDir(c.root, "uid-drain"), "1.log");
  writeFileSync(restarted, criLines("c", 0, 2) + cri("c2 head|", "stdout", "P"));
  const unseen = `${restarted}.${rotationStamp()}`;
  renameSync(restarted, unseen);
  writeFileSync(restarted, cri("tail") + criLines("d", 0, 2));
  utimesSync(unseen, new Date(stopAt - 9_700), new Date(stopAt - 9_700)); // as far as its age tells: written just before the stop's last look
  await Bun.sleep(500);
  await c.h.stop(); // the last save
  const next = c.restart();
  expect(await waitFor(() => next.received.length >= 5, 3000)).toBe(true);
  await Bun.sleep(200);
  expect(next.messages()).toEqual([...expectedMessages("c", 0, 2), "c2 head|tail", ...expectedMessages("d", 0, 2)]);
});
