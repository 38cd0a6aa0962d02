// File lifecycle (issue 4 §2, §4, §7): open on sight, rotation read through the descriptor,
// deletion and pod-dir removal drained, the deleted-held cap, truncation, the watchdog.
import { expect, test } from "bun:test";
import { appendFileSync, closeSync, openSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { cri, criLines, duplicates, expectedMessages, harnessPerTest, podDir, rotationStamp, waitFor } from "./harness.ts";

const harness = harnessPerTest();

/**
 * A container runtime writing through its own descriptor, rotated the way the kubelet does it:
 * rename N.log → N.log.<stamp>, (a few more writes land in the renamed file before the runtime
 * reopens), new N.log, older rotated files gzipped, the oldest deleted.
 */
class RuntimeWriter {
  fd: number;
  written = 0;
  constructor(
    readonly dir: string,
    readonly name = "0.log",
  ) {
    this.fd = openSync(join(dir, name), "a");
  }
  get path(): string {
    return join(this.dir, this.name);
  }
  write(text: string): void {
    writeSync(this.fd, text);
  }
  rotate(opts: { lateWrite?: string; keep?: number } = {}): string {
    const rotated = `${this.path}.${rotationStamp()}`;
    renameSync(this.path, rotated);
    if (opts.lateWrite) writeSync(this.fd, opts.lateWrite); // before ReopenContainerLog
    closeSync(this.fd);
    this.fd = openSync(this.path, "a");
    compressAndPrune(this.dir, this.name, opts.keep ?? 4);
    return rotated;
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Kubelet: every rotated file but the newest is gzipped; beyond `keep` rotated files the oldest go. */
function compressAndPrune(dir: string, base: string, keep: number): void {
  const { readdirSync } = require("node:fs") as typeof import("node:fs");
  const rotated = readdirSync(dir)
    .filter((n) => n.startsWith(base + "."))
    .sort();
  const plain = rotated.filter((n) => !n.endsWith(".gz"));
  for (const n of plain.slice(0, -1)) {
    writeFileSync(join(dir, n + ".gz"), gzipSync(readFileSync(join(dir, n))));
    unlinkSync(join(dir, n));
  }
  const all = readdirSync(dir)
    .filter((n) => n.startsWith(base + "."))
    .sort();
  for (const n of all.slice(0, Math.max(0, all.length - keep))) unlinkSync(join(dir, n));
}

test("kubelet rotation under continuous writing: every line once, rotated files read to their end", async () => {
  const h = harness({ readSliceBytes: "16KiB" });
  const w = new RuntimeWriter(podDir(h.root, "uid-rot"));
  h.start();
  let n = 0;
  for (let round = 0; round < 12; round++) {
    w.write(criLines("rot", n, n + 700));
    n += 700;
    await Bun.sleep(round % 3 === 0 ? 0 : 30); // sometimes the reader is behind at rotation time
    w.rotate({ lateWrite: criLines("rot", n, n + 5) });
    n += 5;
  }
  w.write(criLines("rot", n, n + 100));
  n += 100;
  expect(await waitFor(() => h.received.length >= n, 4_000)).toBe(true);
  await Bun.sleep(200);
  w.close();
  expect(duplicates(h.messages())).toEqual([]);
  expect(h.messages()).toEqual(expectedMessages("rot", 0, n)); // in order, too
  // Each rotated file was followed through the rotation, or found under its rotated name, or seen
  // go only once already compressed away (then it counts as deleted): all were read to their end.
  const c = h.source.counters;
  expect(c.filesRotated + c.filesMissedRotated + c.filesDeleted).toBeGreaterThanOrEqual(12);
  expect(h.source.filesWatched).toBe(1);
});

test("a partial line split across a rotation is merged whole", async () => {
  const h = harness();
  const w = new RuntimeWriter(podDir(h.root, "uid-split"));
  h.start();
  w.write(cri("before"));
  w.write(cri("head-of-the-line ", "stdout", "P"));
  w.write(cri("an stderr line between", "stderr"));
  expect(await waitFor(() => h.received.length === 2, 2000)).toBe(true);
  w.rotate();
  w.write(cri("middle ", "stdout", "P"));
  w.write(cri("tail", "stdout", "F"));
  w.write(cri("after"));
  expect(await waitFor(() => h.received.length === 4, 3000)).toBe(true);
  expect(h.messages()).toEqual(["before", "an stderr line between", "head-of-the-line middle tail", "after"]);
  expect(h.source.counters.partialFlushTimeouts).toBe(0);
});

test("a file written and deleted before it was read is still read (opened on sight)", async () => {
  const h = harness();
  h.decisions.set("uid-gone", "hold"); // waiting for metadata: open, not read
  const d = podDir(h.root, "uid-gone");
  writeFileSync(join(d, "0.log"), criLines("ghost", 0, 100));
  h.start();
  await waitFor(() => h.source.fileStatus().length === 1, 1000);
  unlinkSync(join(d, "0.log"));
  await Bun.sleep(200);
  expect(h.received.length).toBe(0);
  const st = h.source.fileStatus()[0]!;
  expect(st.state).toBe("held");
  expect(st.deleted).toBe(true);
  expect(h.source.counters.deletedHeldBytes).toBeGreaterThan(0);
  h.decisions.set("uid-gone", "read"); // metadata arrived
  h.source.notify();
  expect(await waitFor(() => h.received.length === 100, 2000)).toBe(true);
  expect(h.messages()).toEqual(expectedMessages("ghost", 0, 100));
  await waitFor(() => h.source.filesWatched === 0, 2000);
  expect(h.source.filesWatched).toBe(0); // drained and closed
  expect(h.source.counters.filesDeleted).toBe(1);
});

test("a pod dir removed while its files have unread lines: drained first", async () => {
  const h = harness();
  h.decisions.set("uid-rm", "hold");
  const main = podDir(h.root, "uid-rm", "main");
  const wait = podDir(h.root, "uid-rm", "wait");
  writeFileSync(join(main, "0.log"), criLines("main", 0, 300));
  writeFileSync(join(wait, "0.log"), criLines("wait", 0, 30));
  h.start();
  await waitFor(() => h.source.fileStatus().length === 2, 1000);
  rmSync(join(main, "../.."), { recursive: true, force: true });
  await Bun.sleep(200);
  h.decisions.delete("uid-rm");
  h.source.notify();
  expect(await waitFor(() => h.received.length === 330, 2000)).toBe(true);
  expect(h.messages((r) => r.container === "main")).toEqual(expectedMessages("main", 0, 300));
  expect(h.messages((r) => r.container === "wait")).toEqual(expectedMessages("wait", 0, 30));
  expect(await waitFor(() => h.source.filesWatched === 0, 2000)).toBe(true);
});

test("deleted-but-open files beyond maxDeletedHeldBytes: the oldest is given up, its unread bytes counted", async () => {
  const h = harness({ maxDeletedHeldBytes: 30_000, scanIntervalMs: 100 });
  for (const uid of ["uid-old", "uid-new", "uid-live"]) h.decisions.set(uid, "hold");
  const old = join(podDir(h.root, "uid-old"), "0.log");
  const young = join(podDir(h.root, "uid-new"), "0.log");
  const live = join(podDir(h.root, "uid-live"), "0.log");
  writeFileSync(old, criLines("old", 0, 400)); // ≈ 20 KB each
  writeFileSync(young, criLines("new", 0, 400));
  writeFileSync(live, criLines("live", 0, 400));
  const oldSize = readFileSync(old).length;
  h.start();
  await waitFor(() => h.source.fileStatus().length === 3, 1000);
  unlinkSync(old);
  await Bun.sleep(150);
  unlinkSync(young); // now ≈ 40 KB held by deleted files, over the 30 KB cap
  expect(await waitFor(() => h.source.counters.filesGivenUp === 1, 2000)).toBe(true);
  expect(h.source.counters.bytesLost).toBe(oldSize);
  expect(h.source.counters.deletedHeldBytes).toBeLessThanOrEqual(30_000);
  expect(h.log.count("giving up a deleted file")).toBe(1);
  for (const uid of ["uid-old", "uid-new", "uid-live"]) h.decisions.delete(uid);
  h.source.notify();
  expect(await waitFor(() => h.received.length === 800, 2000)).toBe(true);
  expect(h.messages((r) => r.podUid === "uid-old")).toEqual([]);
  expect(h.messages((r) => r.podUid === "uid-new")).toEqual(expectedMessages("new", 0, 400));
});

test("a file given up with bytes unread ends the line pending in it: the next line of its stream, in the successor, is a record of its own (simulation seed 1650)", async () => {
  const h = harness({ maxDeletedHeldBytes: 10_000, scanIntervalMs: 100, readSliceBytes: 4096 });
  const dir = podDir(h.root, "uid-cap");
  const live = join(dir, "0.log");
  // The first slice ends inside a long line of stdout (stderr goes on); what follows it (≈ 18 KB, the
  // line's rest among them) is never read.
  const stderr = Array.from({ length: 400 }, (_, i) => cri(`late ${i}`, "stderr")).join("");
  writeFileSync(live, criLines("early", 0, 40) + cri("long head ", "stdout", "P") + cri("long middle ", "stdout", "P") + stderr + cri("long tail"));
  h.gate(); // a full ring: the first slice's lines wait, the long line pending
  h.start();
  expect(await waitFor(() => h.emits === 1, 2000)).toBe(true);
  unlinkSync(live); // ≈ 20 KB held by a deleted file, over the cap: given up with its bytes unread
  expect(await waitFor(() => h.source.counters.filesGivenUp === 1, 2000)).toBe(true);
  expect(h.source.counters.bytesLost).toBeGreaterThan(10_000);
  writeFileSync(live, cri("next line")); // the runtime's new file
  h.ungate();
  expect(await waitFor(() => h.messages().includes("next line") && h.messages().includes("long head long middle "), 2000)).toBe(true);
  expect(h.messages().filter((m) => m.includes("next line"))).toEqual(["next line"]);
  expect(h.messages((r) => r.message.startsWith("early"))).toEqual(expectedMessages("early", 0, 40));
});

test("a successor given up before it was read ends the line pending from the file before it: the next line of its stream is a record of its own (simulation seed 1227)", async () => {
  const h = harness({ maxDeletedHeldBytes: 10_000, scanIntervalMs: 100 });
  const dir = podDir(h.root, "uid-gap");
  const live = join(dir, "0.log");
  writeFileSync(live, criLines("early", 0, 10) + cri("long head ", "stdout", "P"));
  h.gate(); // a full ring: nothing more is read while the files below come and go
  h.start();
  expect(await waitFor(() => h.emits === 1, 2000)).toBe(true);
  renameSync(live, `${live}.${rotationStamp()}`);
  // Its successor holds the line's rest (and ≈ 18 KB more); it is opened, then deleted unread.
  const stderr = Array.from({ length: 400 }, (_, i) => cri(`late ${i}`, "stderr")).join("");
  writeFileSync(live, cri("long middle ", "stdout", "P") + stderr + cri("long tail"));
  expect(await waitFor(() => h.source.fileStatus().length === 2, 2000)).toBe(true);
  const second = `${live}.${rotationStamp()}`;
  renameSync(live, second);
  writeFileSync(live, cri("next line"));
  unlinkSync(second);
  expect(await waitFor(() => h.source.counters.filesGivenUp === 1, 2000)).toBe(true);
  h.ungate();
  expect(await waitFor(() => h.messages().includes("next line") && h.messages().includes("long head "), 3000)).toBe(true);
  expect(h.messages().filter((m) => m.includes("next line"))).toEqual(["next line"]);
  expect(h.messages((r) => r.message.startsWith("early"))).toEqual(expectedMessages("early", 0, 10));
});

test("truncation (size below offset) restarts the file at 0 and is counted", async () => {
  const h = harness();
  const path = join(podDir(h.root, "uid-trunc"), "0.log");
  writeFileSync(path, criLines("first", 0, 50));
  h.start();
  expect(await waitFor(() => h.received.length === 50, 2000)).toBe(true);
  truncateSync(path, 0);
  await Bun.sleep(100);
  appendFileSync(path, criLines("second", 0, 10));
  expect(await waitFor(() => h.received.length === 60, 2000)).toBe(true);
  expect(h.messages().slice(50)).toEqual(expectedMessages("second", 0, 10));
  expect(h.source.counters.filesTruncated).toBe(1);
});

test("the watchdog reopens a file that grows while its reader is stuck", async () => {
  const h = harness({ watchdogSeconds: 1, scanIntervalMs: 200 });
  const path = join(podDir(h.root, "uid-stuck"), "0.log");
  writeFileSync(path, criLines("before", 0, 10));
  h.start();
  expect(await waitFor(() => h.received.length === 10, 2000)).toBe(true);
  expect(h.fs.stall(path)).toBe(1); // the reader now believes it is at its end
  appendFileSync(path, criLines("after", 0, 10));
  await Bun.sleep(400);
  expect(h.received.length).toBe(10); // stuck
  expect(await waitFor(() => h.received.length === 20, 4000)).toBe(true);
  expect(h.source.counters.watchdogReopens).toBe(1);
  expect(h.log.count("reopening it at its checkpoint")).toBe(1);
  expect(duplicates(h.messages())).toEqual([]);
  // A file that is held (waiting for metadata) is blocked, not stuck: no reopen.
  h.decisions.set("uid-stuck", "hold");
  appendFileSync(path, criLines("held", 0, 5));
  await Bun.sleep(1800);
  expect(h.source.counters.watchdogReopens).toBe(1);
});

test("a full ring pauses every reader; memory stays bounded; reading resumes when it drains", async () => {
  const h = harness({ readSliceBytes: "16KiB" });
  for (let p = 0; p < 5; p++) writeFileSync(join(podDir(h.root, `uid-bp${p}`), "0.log"), criLines(`bp${p}`, 0, 20_000));
  h.gate();
  h.start();
  await Bun.sleep(300);
  // One slice was read and its emit is waiting: nothing more is read while the ring is full.
  expect(h.source.counters.bytesRead).toBeLessThanOrEqual(16 * 1024);
  const lag = h.source.fileStatus().reduce((s, f) => s + (f.lag as number), 0);
  expect(lag).toBeGreaterThan(4_000_000);
  h.ungate();
  expect(await waitFor(() => h.received.length === 100_000, 15_000)).toBe(true);
  expect(duplicates(h.messages())).toEqual([]);
}, 20_000);

test("one flooding pod beside 99 quiet ones: the quiet pods' lines arrive within seconds", async () => {
  const h = harness({ readSliceBytes: "64KiB" });
  h.emitDelayMs = 2; // a ring that takes its time
  const flood = join(podDir(h.root, "uid-flood"), "0.log");
  writeFileSync(flood, criLines("flood", 0, 400_000)); // ≈ 25 MB waiting
  const quiet: string[] = [];
  for (let p = 0; p < 99; p++) quiet.push(join(podDir(h.root, `uid-q${p}`), "0.log"));
  for (const q of quiet) writeFileSync(q, "");
  h.start();
  await Bun.sleep(300);
  const t0 = Date.now();
  for (const [i, q] of quiet.entries()) appendFileSync(q, cri(`quiet ${i}`));
  const isQuiet = (r: { podUid: string }) => r.podUid !== "uid-flood";
  expect(await waitFor(() => h.received.filter(isQuiet).length === 99, 5000)).toBe(true);
  const took = Date.now() - t0;
  const floodRead = h.received.length - 99;
  expect(floodRead).toBeLessThan(400_000); // the flood was still being read meanwhile
  expect(took).toBeLessThan(5000);
}, 20_000);

test("files created and rotated between two looks are read under their rotated name (plain and .gz), in order", async () => {
  const h = harness({ scanIntervalMs: 400 });
  const d = podDir(h.root, "uid-missed");
  const live = join(d, "0.log");
  writeFileSync(live, criLines("m", 0, 10));
  h.decisions.set("uid-skip", "skip");
  const skippedLive = join(podDir(h.root, "uid-skip"), "0.log");
  writeFileSync(skippedLive, criLines("skip", 0, 5));
  h.start();
  expect(await waitFor(() => h.received.length === 10, 2000)).toBe(true);
  // No more events from here: only the scan looks, every 400 ms.
  expect(h.fs.raiseWatchError(new Error("ENOSPC"))).toBe(1);
  await Bun.sleep(450); // one scan with the watcher off: nothing new
  // Between two scans: the followed file rotates, two new files come and go under rotated names
  // (the older of them already compressed), and a new live file appears.
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, criLines("m", 10, 20));
  const second = `${live}.${rotationStamp()}`;
  renameSync(live, second);
  writeFileSync(live, criLines("m", 20, 30));
  const third = `${live}.${rotationStamp()}`;
  renameSync(live, third);
  writeFileSync(second + ".gz", gzipSync(readFileSync(second)));
  unlinkSync(second);
  writeFileSync(live, criLines("m", 30, 40));
  renameSync(skippedLive, `${skippedLive}.${rotationStamp()}`); // a pod that is not selected rotates too
  writeFileSync(skippedLive, criLines("skip", 5, 10));
  expect(await waitFor(() => h.received.length === 40, 3000)).toBe(true);
  await Bun.sleep(500);
  expect(h.messages()).toEqual(expectedMessages("m", 0, 40)); // once each, in order
  expect(h.source.counters.filesMissedRotated).toBe(2);
  expect(h.log.count("rotated before it was opened")).toBe(2);
});
