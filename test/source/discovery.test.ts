// Discovery (issue 4 §1, §8): inotify within a second, the scan as safety net, what is never read,
// symlinks, restarts, the collector's own pod, the watcher failing, idle wake-ups, 2,000 files.
import { expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { gzipAway } from "./restarts.ts";
import { cri, criLines, duplicates, expectedMessages, harnessPerTest, podDir, rotationStamp, waitFor } from "./harness.ts";

const harness = harnessPerTest();

test("a new pod's file is read within 1 s of its creation (inotify, not the scan)", async () => {
  const h = harness({ scanIntervalMs: 60_000 });
  h.start();
  await Bun.sleep(100);
  const created = Date.now();
  const d = podDir(h.root, "uid-new"); // a new pod dir, created after the watch started
  writeFileSync(join(d, "0.log"), cri("hello from a new pod"));
  expect(await waitFor(() => h.received.length === 1, 1000)).toBe(true);
  const latency = Date.now() - created;
  expect(h.received[0]!.message).toBe("hello from a new pod");
  expect(h.received[0]!.podUid).toBe("uid-new");
  // More lines to an open file come through the watcher too.
  appendFileSync(join(d, "0.log"), cri("second"));
  expect(await waitFor(() => h.received.length === 2, 1000)).toBe(true);
  expect(latency).toBeLessThan(1000);
});

test("include/exclude globs, excludeContainers, own pod, .gz/.tmp/rotated names are never read; 1.log is", async () => {
  const h = harness({ exclude: ["kube-system_*/**"], excludeContainers: ["istio-proxy"] });
  const main = podDir(h.root, "uid-a");
  writeFileSync(join(main, "0.log"), cri("a0"));
  writeFileSync(join(main, "0.log.20261125-100000.gz"), gzipSync(cri("from gz")));
  writeFileSync(join(main, "0.log.20261125-100001"), cri("from rotated"));
  writeFileSync(join(main, "0.log.tmp"), cri("from tmp"));
  writeFileSync(join(main, "notes.txt"), cri("from txt"));
  writeFileSync(join(podDir(h.root, "uid-a", "istio-proxy"), "0.log"), cri("from sidecar"));
  writeFileSync(join(podDir(h.root, "uid-sys", "main", "coredns", "kube-system"), "0.log"), cri("from system"));
  writeFileSync(join(podDir(h.root, "uid-self"), "0.log"), cri("from collector itself"));
  h.start("uid-self");
  expect(await waitFor(() => h.received.length >= 1, 2000)).toBe(true);
  // A container restart: the runtime creates 1.log beside 0.log.
  writeFileSync(join(main, "1.log"), cri("after restart"));
  expect(await waitFor(() => h.received.length >= 2, 2000)).toBe(true);
  await Bun.sleep(200);
  expect(h.messages().sort()).toEqual(["a0", "after restart"]);
  expect(h.received.find((r) => r.message === "after restart")!.restart).toBe(1);
  expect(h.source.filesWatched).toBe(2);
});

test("the same file through a symlink is read once", async () => {
  const h = harness();
  const real = podDir(h.root, "uid-real");
  writeFileSync(join(real, "0.log"), criLines("linked", 0, 50));
  // A second pod dir whose log file is a symlink to the first (cri-dockerd layouts link like this).
  const alias = podDir(h.root, "uid-alias");
  symlinkSync(join(real, "0.log"), join(alias, "0.log"));
  h.start();
  expect(await waitFor(() => h.received.length >= 50, 2000)).toBe(true);
  appendFileSync(join(real, "0.log"), criLines("linked", 50, 60));
  expect(await waitFor(() => h.received.length >= 60, 2000)).toBe(true);
  await Bun.sleep(300);
  expect(duplicates(h.messages())).toEqual([]);
  expect(h.messages().sort()).toEqual(expectedMessages("linked", 0, 60).sort());
  expect(h.source.filesWatched).toBe(1);
});

test("out of inotify watches: the async watcher error is handled, said once, and the scan takes over", async () => {
  const h = harness({ scanIntervalMs: 200 });
  h.start();
  await Bun.sleep(50);
  const enospc = Object.assign(new Error("ENOSPC: System limit for number of file watchers reached"), { code: "ENOSPC" });
  expect(h.fs.raiseWatchError(enospc, 2)).toBe(1); // two queued error events on the one watch
  writeFileSync(join(podDir(h.root, "uid-late"), "0.log"), cri("found by the scan"));
  expect(await waitFor(() => h.received.length === 1, 2000)).toBe(true);
  appendFileSync(join(podDir(h.root, "uid-late"), "0.log"), cri("and followed by it"));
  expect(await waitFor(() => h.received.length === 2, 2000)).toBe(true);
  expect(h.source.counters.watcherErrors).toBe(2);
  expect(h.log.count("file watcher failed")).toBe(1);
});

test("idle: with nothing written the loop sleeps (wake-ups counted)", async () => {
  const h = harness({ scanIntervalMs: 10_000, partialFlushMs: 200 });
  for (let i = 0; i < 20; i++) writeFileSync(join(podDir(h.root, `uid-${i}`), "0.log"), criLines(`idle ${i}`, 0, 5));
  h.start();
  expect(await waitFor(() => h.received.length === 100, 2000)).toBe(true);
  await Bun.sleep(300); // settle: last durable reports, checkpoint writes
  const before = h.source.counters.wakeups;
  const turnsBefore = h.emits;
  await Bun.sleep(3000);
  const wakeups = h.source.counters.wakeups - before;
  // At most about once a second in total (here: nothing pending, so nothing but a possible scan).
  expect(wakeups).toBeLessThanOrEqual(3);
  expect(h.emits).toBe(turnsBefore);
});

test("2,000 files across 1,000 pod dirs: all read, and new lines still arrive through inotify", async () => {
  const h = harness({ scanIntervalMs: 60_000 });
  const paths: string[] = [];
  for (let p = 0; p < 1000; p++) {
    for (const c of ["main", "wait"]) {
      const d = podDir(h.root, `uid-${p}`, c);
      const path = join(d, "0.log");
      writeFileSync(path, cri(`${p}/${c} first`));
      paths.push(path);
    }
  }
  h.start();
  expect(await waitFor(() => h.received.length === 2000, 15_000)).toBe(true);
  expect(h.source.filesWatched).toBe(2000);
  for (let i = 0; i < 2000; i += 199) appendFileSync(paths[i]!, cri(`late ${i}`));
  expect(await waitFor(() => h.received.length === 2011, 3000)).toBe(true);
  expect(duplicates(h.messages())).toEqual([]);
  // And a new pod among them.
  mkdirSync(join(h.root, "argo_fresh_uid-fresh", "main"), { recursive: true });
  writeFileSync(join(h.root, "argo_fresh_uid-fresh", "main", "0.log"), cri("fresh"));
  expect(await waitFor(() => h.received.length === 2012, 1000)).toBe(true);
}, 30_000);

test("inotify gone: a pending line is not flushed while its file was rotated and deleted and the successor with its rest is not seen yet (simulation seed 4275)", async () => {
  const h = harness({ scanIntervalMs: 60_000, partialFlushMs: 300 });
  const live = join(podDir(h.root, "uid-gone"), "0.log");
  writeFileSync(live, cri("first") + cri("head|", "stdout", "P"));
  h.start();
  expect(await waitFor(() => h.received.length === 1, 2000)).toBe(true);
  const enospc = Object.assign(new Error("ENOSPC: System limit for number of file watchers reached"), { code: "ENOSPC" });
  h.fs.raiseWatchError(enospc);
  // Between two scans: rotated; the successor takes the rest of the line and is rotated too; the
  // first rotated file is deleted (kubelet keeps few), and a third file is live.
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  writeFileSync(live, cri("tail") + cri("next"));
  renameSync(live, `${live}.${rotationStamp()}`);
  unlinkSync(r1);
  writeFileSync(live, cri("last"));
  expect(await waitFor(() => h.received.length >= 4, 3000)).toBe(true);
  await Bun.sleep(500);
  expect(h.messages()).toEqual(["first", "head|tail", "next", "last"]);
  expect(h.source.counters.partialFlushTimeouts).toBe(0);
});

test("a rotation between the listing and the open of the live name: the file the listing named is read before its successor, and a line split across them arrives whole (chaos seed 145049126)", async () => {
  // The watch starts after the first scan, so only the next scan (soon) would find the rotated name.
  const h = harness({ scanIntervalMs: 500, partialFlushMs: 2000 });
  const dir = podDir(h.root, "uid-race");
  const live = join(dir, "0.log");
  writeFileSync(live, criLines("before", 0, 3) + cri("head|", "stdout", "P"));
  // The first start lists the container dir, then the runtime rotates before the live name is opened.
  h.fs.onNextListing(dir, () => {
    renameSync(live, `${live}.${rotationStamp()}`);
    writeFileSync(live, cri("tail") + criLines("after", 0, 3));
  });
  h.start();
  await waitFor(() => h.received.length >= 7, 3000);
  await Bun.sleep(300);
  expect(h.messages()).toEqual([...expectedMessages("before", 0, 3), "head|tail", ...expectedMessages("after", 0, 3)]);
  expect(h.source.counters.partialFlushTimeouts).toBe(0);
});

test("a first start: a live file rotated after the collector started and before its dir was listed is read whole, not taken for history, with what the runtime writes on into it (simulation --kubelet-in-step 0.01, seed 143)", async () => {
  const h = harness({ scanIntervalMs: 200, partialFlushMs: 2000 });
  const dir = podDir(h.root, "uid-first-look");
  const live = join(dir, "0.log");
  const rotated = `${live}.${rotationStamp()}`;
  writeFileSync(live, criLines("before", 0, 3) + cri("head|", "stdout", "P"));
  // The first scan lists the pod's dir; the kubelet renames the live file before its own dir is listed.
  h.fs.onNextListing(dirname(dir), () => {
    const later = Date.now() + 20; // past the start by more than a coarse file-system clock's tick
    while (Date.now() < later);
    renameSync(live, rotated);
  });
  h.start();
  // The runtime writes on into the renamed file until it reopens.
  appendFileSync(rotated, cri("tail") + criLines("late", 0, 2));
  writeFileSync(live, criLines("after", 0, 2));
  await waitFor(() => h.received.length >= 8, 3000);
  await Bun.sleep(300);
  expect(h.messages()).toEqual([...expectedMessages("before", 0, 3), "head|tail", ...expectedMessages("late", 0, 2), ...expectedMessages("after", 0, 2)]);
  expect(h.source.counters.bytesLost).toBe(0);
});

test("running: a rotated file compressed while a scan opens its siblings is read in its place, before its newer sibling, and a line split across the two arrives whole (simulation --kubelet-in-step 0.01, seed 1073)", async () => {
  const h = harness({ scanIntervalMs: 300, partialFlushMs: 2000 });
  const dir = podDir(h.root, "uid-gz-mid-scan");
  const live = join(dir, "0.log");
  writeFileSync(live, cri("first"));
  h.start();
  expect(await waitFor(() => h.received.length === 1, 2000)).toBe(true);
  h.fs.raiseWatchError(Object.assign(new Error("ENOSPC: System limit for number of file watchers reached"), { code: "ENOSPC" }));
  await Bun.sleep(50);
  // Between two scans: two files created and rotated unseen, a line split across them, a new live one.
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, criLines("b", 0, 3) + cri("head|", "stdout", "P"));
  const middle = `${live}.${rotationStamp()}`;
  renameSync(live, middle);
  writeFileSync(live, cri("tail") + criLines("c", 0, 3));
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, cri("last"));
  // The kubelet compresses the middle one right after the scan listed the dir.
  h.fs.onNextListing(dir, () => gzipAway(middle));
  await waitFor(() => h.received.length >= 9, 3000);
  await Bun.sleep(300);
  expect(h.messages()).toEqual(["first", ...expectedMessages("b", 0, 3), "head|tail", ...expectedMessages("c", 0, 3), "last"]);
});

test("the last run's live file rotated while the collector starts, read whole after an older one: its checkpoint is taken, not counted lost (chaos seed 145049126)", async () => {
  const h = harness({ scanIntervalMs: 200 });
  const dir = podDir(h.root, "uid-taken");
  const live = join(dir, "0.log");
  writeFileSync(live, criLines("a", 0, 3));
  h.start();
  expect(await waitFor(() => h.received.length === 3 && h.durable === h.seq, 2000)).toBe(true);
  // Then nothing more becomes durable: the file is rotated with a line unread, its successor is opened.
  h.autoDurable = false;
  appendFileSync(live, cri("a 3"));
  expect(await waitFor(() => h.received.length === 4, 2000)).toBe(true);
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, cri("b 0"));
  expect(await waitFor(() => h.received.length === 5, 2000)).toBe(true);
  const saved = () => {
    const path = join(h.dataDir, "checkpoints.json");
    return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")).files as Array<{ done?: boolean }>).filter((f) => !f.done).length : 0;
  };
  expect(await waitFor(() => saved() === 2, 3000)).toBe(true); // a scan saved both files' checkpoints
  await h.crash();
  // Restarting: the catch-up lists the dir for the rotated file, then the runtime rotates the live one.
  h.fs.onNextListing(dir, () => {
    renameSync(live, `${live}.${rotationStamp()}`);
    writeFileSync(live, cri("c 0"));
  });
  h.autoDurable = true;
  h.start();
  await waitFor(() => h.received.length >= 8, 3000);
  await Bun.sleep(300);
  // Read on after the older rotated file: "b 0" again, from the first byte (it was not durable anyway).
  expect(h.messages()).toEqual([...expectedMessages("a", 0, 4), "b 0", "a 3", "b 0", "c 0"]);
  expect(h.source.counters.bytesLost).toBe(0);
  expect(h.log.count("unread bytes are lost")).toBe(0);
});

test("a damaged .gz found while running: one warning naming it however many scans look at it again, and the other files' lines all delivered", async () => {
  const h = harness({ scanIntervalMs: 100 });
  h.start();
  const live = join(podDir(h.root, "uid-damaged-gz"), "0.log");
  writeFileSync(live, criLines("d", 0, 20));
  expect(await waitFor(() => h.received.length === 20, 2000)).toBe(true);
  // A rotated name never seen, compressed and cut short (a writer that died, a full disk).
  const gz = gzipSync(Buffer.from(criLines("x", 0, 50)));
  const damaged = `${live}.${rotationStamp()}.gz`;
  writeFileSync(damaged, gz.subarray(0, gz.length >> 1));
  appendFileSync(live, criLines("d", 20, 40));
  expect(await waitFor(() => h.received.length === 40, 2000)).toBe(true);
  await Bun.sleep(500); // several scans
  const warnings = h.log.lines.filter((l) => l.msg.includes("rotated .gz cannot be read"));
  expect(warnings.length).toBe(1);
  expect(warnings[0]!.fields.path).toBe(damaged);
  expect(String(warnings[0]!.fields.error)).toContain("not a whole gzip file");
  expect(h.messages()).toEqual(expectedMessages("d", 0, 40));
});
