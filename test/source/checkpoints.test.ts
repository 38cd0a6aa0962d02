// Identity and checkpoints (issue 4 §3): the watermark, graceful restarts and crashes, readFrom,
// inode reuse, pruning, and the loss counted for files deleted unread while the collector was down.
import { afterAll, afterEach, expect, test } from "bun:test";
import { appendFileSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupDirs, cri, criLines, duplicates, expectedMessages, podDir, rotationStamp, waitFor } from "./harness.ts";
import { collector, gzipAway, savedCheckpoints, stopRunning } from "./restarts.ts";

afterEach(stopRunning);
afterAll(cleanupDirs);

test("the checkpoint is a watermark: it moves only when the ring reports the records durable", async () => {
  const c = collector();
  const h = c.h;
  h.autoDurable = false;
  const path = join(podDir(c.root, "uid-w"), "0.log");
  writeFileSync(path, criLines("w", 0, 10) + cri("head ", "stdout", "P"));
  c.start();
  expect(await waitFor(() => h.received.length === 10, 2000)).toBe(true);
  expect(h.source.fileStatus()[0]!.offset).toBe(0); // read, not durable
  const headAt = readFileSync(path).length - cri("head ", "stdout", "P").length;
  h.makeDurable();
  // The pending partial pins the checkpoint at its first fragment.
  expect(h.source.fileStatus()[0]!.offset).toBe(headAt);
  expect(savedCheckpoints(h.dataDir)[0]!.offset).toBe(headAt);
  appendFileSync(path, cri("tail"));
  expect(await waitFor(() => h.received.length === 11, 2000)).toBe(true);
  expect(h.received[10]!.message).toBe("head tail");
  h.makeDurable();
  expect(h.source.fileStatus()[0]!.offset).toBe(readFileSync(path).length);
});

test("graceful restart mid-stream: resumes every file at its checkpoint, no duplicates, no loss", async () => {
  const c = collector();
  const paths = [0, 1, 2].map((i) => join(podDir(c.root, `uid-g${i}`), "0.log"));
  for (const p of paths) writeFileSync(p, criLines(p, 0, 3000));
  c.start();
  await waitFor(() => c.h.received.length > 2000, 3000);
  await c.h.stop(); // mid-stream
  for (const p of paths) appendFileSync(p, criLines(p, 3000, 3500));
  const second = c.restart();
  expect(await waitFor(() => c.allMessages().length >= 10_500, 5000)).toBe(true);
  await Bun.sleep(100);
  expect(duplicates(c.allMessages())).toEqual([]);
  const want = paths.flatMap((p) => expectedMessages(p, 0, 3500)).sort();
  expect(c.allMessages().sort()).toEqual(want);
});

test("crash (no final checkpoint write): restart re-reads only what was not durable; nothing lost", async () => {
  const c = collector();
  c.h.autoDurable = false;
  const path = join(podDir(c.root, "uid-crash"), "0.log");
  writeFileSync(path, criLines("c", 0, 1000));
  c.start();
  expect(await waitFor(() => c.h.received.length === 1000, 2000)).toBe(true);
  c.h.makeDurable(); // the ring synced up to here
  appendFileSync(path, criLines("c", 1000, 1200));
  expect(await waitFor(() => c.h.received.length === 1200, 2000)).toBe(true);
  await c.h.crash(); // 200 lines read but never durable
  const second = c.restart();
  expect(await waitFor(() => second.received.length === 200, 2000)).toBe(true);
  await Bun.sleep(100);
  expect(second.messages()).toEqual(expectedMessages("c", 1000, 1200)); // the replay is bounded
});

test("readFrom: end applies to files present at start without a checkpoint; new files start at 0", async () => {
  const c = collector({ readFrom: "end" });
  const old = join(podDir(c.root, "uid-old"), "0.log");
  writeFileSync(old, criLines("old", 0, 100));
  c.start();
  await Bun.sleep(200);
  expect(c.h.received.length).toBe(0);
  appendFileSync(old, cri("old new line"));
  writeFileSync(join(podDir(c.root, "uid-newpod"), "0.log"), criLines("newpod", 0, 5));
  expect(await waitFor(() => c.h.received.length === 6, 2000)).toBe(true);
  expect(c.h.messages().sort()).toEqual(["old new line", ...expectedMessages("newpod", 0, 5)].sort());
  // After a restart, checkpointed files resume where they were, whatever readFrom says.
  await c.h.stop();
  appendFileSync(old, cri("old after restart"));
  const second = c.restart();
  expect(await waitFor(() => second.received.length === 1, 2000)).toBe(true);
  await Bun.sleep(100);
  expect(second.messages()).toEqual(["old after restart"]);
});

test("inode reuse: a checkpoint whose fingerprint does not match the file's head is not applied", async () => {
  const c = collector();
  const path = join(podDir(c.root, "uid-reuse"), "0.log");
  writeFileSync(path, criLines("fresh", 0, 20));
  const st = statSync(path);
  // A checkpoint left by another file that had this device and inode.
  writeFileSync(
    join(c.h.dataDir, "checkpoints.json"),
    JSON.stringify({ version: 1, files: [{ dev: st.dev, ino: st.ino, fpLen: 64, fpHash: 12345, path, offset: 500 }] }),
  );
  c.start();
  expect(await waitFor(() => c.h.received.length === 20, 2000)).toBe(true);
  expect(c.h.messages()).toEqual(expectedMessages("fresh", 0, 20));
});

test("checkpoints of files gone for good are pruned at start", async () => {
  const c = collector();
  const keep = join(podDir(c.root, "uid-keep"), "0.log");
  const gone = join(podDir(c.root, "uid-gone"), "0.log");
  writeFileSync(keep, criLines("k", 0, 10));
  writeFileSync(gone, criLines("g", 0, 10));
  c.start();
  expect(await waitFor(() => c.h.received.length === 20, 2000)).toBe(true);
  await c.h.stop();
  expect(savedCheckpoints(c.h.dataDir).length).toBe(2);
  unlinkSync(gone);
  const second = c.restart();
  await Bun.sleep(200);
  expect(second.source.counters.checkpointsPruned).toBe(1);
  await second.stop();
  const saved = savedCheckpoints(second.dataDir);
  expect(saved.map((s) => s.path)).toEqual([keep]);
  expect(second.received.length).toBe(0);
});

test("the checkpointed file deleted while down, its successors on disk (a .gz and a plain rotated file): they are read, and what the deleted file held unread is counted lost (issue 17, defect 2)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-gone"), "0.log");
  writeFileSync(live, criLines("g", 0, 100));
  c.start();
  expect(await waitFor(() => c.h.received.length === 100, 2000)).toBe(true);
  await c.h.stop();
  // While we are down: the checkpointed file gets 50 more lines, rotates and is deleted for good;
  // two successors rotate (one gzipped) and a new live file begins.
  const read = statSync(live).size;
  appendFileSync(live, criLines("g", 100, 150));
  const unread = statSync(live).size - read;
  const first = `${live}.${rotationStamp()}`;
  renameSync(live, first);
  writeFileSync(live, criLines("g", 150, 300));
  const second = `${live}.${rotationStamp()}`;
  renameSync(live, second);
  writeFileSync(live, criLines("g", 300, 400));
  const third = `${live}.${rotationStamp()}`;
  renameSync(live, third);
  writeFileSync(live, criLines("g", 400, 450));
  unlinkSync(first);
  gzipAway(second);
  const next = c.restart();
  expect(await waitFor(() => c.allMessages().length >= 400, 3000)).toBe(true);
  await Bun.sleep(100);
  expect(c.allMessages()).toEqual([...expectedMessages("g", 0, 100), ...expectedMessages("g", 150, 450)]);
  // The deleted file's unread part: counted (the last save knew only its first 100 lines' size, so
  // the loss is an estimate from its rotated siblings, and the warning says so).
  expect(next.log.count("deleted before it was read to its end")).toBe(1);
  expect(next.source.counters.bytesLost).toBeGreaterThan(unread / 2);
  expect(next.source.counters.bytesLost).toBeLessThan(unread * 2);
});

test("a file deleted while down with unread bytes (only a crashed process held it open): its loss is counted, not silent", async () => {
  const c = collector();
  const uid = "uid-lost";
  const path = join(podDir(c.root, uid), "0.log");
  writeFileSync(path, criLines("lost", 0, 200));
  const size = statSync(path).size;
  c.h.decisions.set(uid, "hold"); // opened, not read: as when the ring is full during an outage
  c.start();
  expect(await waitFor(() => c.h.source.fileStatus().length === 1, 2000)).toBe(true);
  await c.h.stop();
  expect(savedCheckpoints(c.h.dataDir)).toEqual([expect.objectContaining({ offset: 0, size })]);
  unlinkSync(path); // rotated away and purged while the collector was down
  const second = c.restart();
  expect(await waitFor(() => second.source.counters.checkpointsPruned === 1, 3000)).toBe(true);
  expect(second.source.counters.bytesLost).toBe(size);
  expect(second.source.counters.filesGivenUp).toBe(1);
  expect(second.log.count("deleted before it was read to its end")).toBe(1);
  // The pruned checkpoint is gone from disk too: the loss is counted once, not at every start.
  expect(savedCheckpoints(second.dataDir)).toEqual([]);
});

test("a file that grew unread (held, or behind a full ring) before a crash, deleted while down: its loss is counted from the size the last scan saw (simulation seeds 6917, 8752)", async () => {
  const c = collector({ scanIntervalMs: 100 });
  const uid = "uid-grew";
  const dir = podDir(c.root, uid);
  const path = join(dir, "0.log");
  writeFileSync(path, criLines("grew", 0, 100));
  c.start();
  expect(await waitFor(() => c.h.received.length === 100 && savedCheckpoints(c.h.dataDir)[0]?.offset === statSync(path).size, 2000)).toBe(true);
  // From now on nothing of it is read, so no watermark moves: as when the ring is full in an outage.
  c.h.decisions.set(uid, "hold");
  const read = statSync(path).size;
  appendFileSync(path, criLines("grew", 100, 150));
  const size = statSync(path).size;
  expect(await waitFor(() => savedCheckpoints(c.h.dataDir)[0]?.size === size, 2000)).toBe(true);
  await c.h.crash();
  rmSync(dir, { recursive: true }); // the pod's directory removed while the collector was down
  const second = c.restart();
  expect(await waitFor(() => second.source.counters.checkpointsPruned === 1, 3000)).toBe(true);
  expect(second.source.counters.bytesLost).toBe(size - read);
  expect(second.log.count("deleted before it was read to its end")).toBe(1);
});
