// Catching up after downtime (issue 4 §3): files rotated and compressed while the collector was down
// are found by their checkpoints and read once, checkpoints taken while a file was empty included.
import { afterAll, afterEach, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { bytesFingerprint } from "../../src/source/fingerprint.ts";
import { cleanupDirs, cri, criLines, expectedMessages, podDir, rotationStamp, waitFor } from "./harness.ts";
import { collector, gzipAway, savedCheckpoints, stopRunning } from "./restarts.ts";

afterEach(stopRunning);
afterAll(cleanupDirs);

test("downtime across rotations that gzipped unread data: read from the .gz and the newer files, no loss", async () => {
  const c = collector();
  const d = podDir(c.root, "uid-down");
  const live = join(d, "0.log");
  writeFileSync(live, criLines("d", 0, 500));
  c.start();
  expect(await waitFor(() => c.h.received.length === 500, 2000)).toBe(true);
  await c.h.stop();
  // While we are down: more lines, rotate, gzip, another file entirely, rotate again, a new live file.
  appendFileSync(live, criLines("d", 500, 800));
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  writeFileSync(live, criLines("d", 800, 1100));
  const r2 = `${live}.${rotationStamp()}`;
  renameSync(live, r2);
  gzipAway(r1);
  writeFileSync(live, criLines("d", 1100, 1200));
  const second = c.restart();
  const ok = await waitFor(() => c.allMessages().length >= 1200, 3000);
  if (!ok) console.log(c.allMessages().length, second.source.counters, second.source.fileStatus(), second.log.lines);
  expect(ok).toBe(true);
  await Bun.sleep(100);
  expect(c.allMessages()).toEqual(expectedMessages("d", 0, 1200)); // exactly once, in order
  expect(second.source.counters.filesRecovered).toBe(2);
});

test("a file rotated while down keeps being read until the runtime reopens: its last writes after the restart are not lost (simulation seeds 4385, 3662)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-late"), "0.log");
  writeFileSync(live, criLines("late", 0, 10));
  c.start();
  expect(await waitFor(() => c.h.received.length === 10, 2000)).toBe(true);
  await c.h.stop();
  // While we are down: more lines, then the kubelet renames the file; the runtime has not reopened.
  appendFileSync(live, criLines("late", 10, 20));
  const rotated = `${live}.${rotationStamp()}`;
  renameSync(live, rotated);
  const second = c.restart();
  expect(await waitFor(() => second.received.length === 10, 2000)).toBe(true);
  await Bun.sleep(100); // read to its end by now
  // The runtime's last writes into the renamed file, then it reopens the live name.
  appendFileSync(rotated, criLines("late", 20, 25));
  await Bun.sleep(100);
  writeFileSync(live, criLines("late", 25, 30));
  expect(await waitFor(() => c.allMessages().length >= 30, 3000)).toBe(true);
  await Bun.sleep(100);
  expect(c.allMessages()).toEqual(expectedMessages("late", 0, 30)); // exactly once, in order
});

test("a closed file holding a checkpoint keeps it when an open file has its inode number now: after a restart its .gz is read from that checkpoint, not whole (simulation seed 184)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-renumbered"), "0.log");
  /** The one open file is the live file with these contents, read to its end. */
  const following = (content: string) => () => {
    const s = c.h.source.fileStatus();
    return s.length === 1 && s[0]!.size === content.length && s[0]!.readOffset === content.length && statSync(live).size === content.length;
  };
  writeFileSync(live, cri("first") + cri("x1|", "stdout", "P"));
  c.start();
  expect(await waitFor(() => c.h.received.length === 1, 2000)).toBe(true);
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  // The second file: the tail of one line, then the head of a long one that goes on in the next files.
  const twoContent = cri("x2") + cri("y1-head|", "stdout", "P");
  writeFileSync(live, twoContent);
  expect(await waitFor(following(twoContent), 3000)).toBe(true);
  const r2 = `${live}.${rotationStamp()}`;
  renameSync(live, r2);
  const reusedIno = statSync(r2).ino;
  const threeContent = cri("y2-middle-part|", "stdout", "P");
  writeFileSync(live, threeContent);
  // The second file is drained and closed, its checkpoint kept at the long line's head.
  expect(await waitFor(following(threeContent), 3000)).toBe(true);
  // The kubelet compresses it and deletes the first; the runtime rotates again, and the new live
  // file gets the number of the second file's inode (free now: no one holds it open).
  gzipAway(r2);
  unlinkSync(r1);
  const staging = join(c.root, "..", "next.log");
  const fourContent = cri("y3-longer-still|", "stdout", "P");
  writeFileSync(staging, fourContent);
  c.h.fs.reportInode(staging, reusedIno);
  renameSync(live, `${live}.${rotationStamp()}`);
  renameSync(staging, live);
  expect(await waitFor(following(fourContent), 3000)).toBe(true);
  await Bun.sleep(100); // durable, checkpoints saved
  await c.h.stop();
  appendFileSync(live, cri("y4"));
  const next = c.next();
  next.fs.reportInode(live, reusedIno);
  c.start();
  expect(await waitFor(() => next.received.some((r) => r.message.startsWith("y")), 3000)).toBe(true);
  await Bun.sleep(100);
  expect(c.allMessages()).toEqual(["first", "x1|x2", "y1-head|y2-middle-part|y3-longer-still|y4"]);
});

test("a .gz found rotated before it was read keeps the fingerprint of its content: after a restart its checkpoint finds it, not an older .gz of the container (simulation seed 1588)", async () => {
  const c = collector();
  const uid = "uid-gzmissed";
  const live = join(podDir(c.root, uid), "0.log");
  writeFileSync(live, criLines("a", 0, 3));
  c.start();
  expect(await waitFor(() => c.h.received.length === 3, 2000)).toBe(true);
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  writeFileSync(live, cri("b0"));
  expect(await waitFor(() => c.h.received.length === 4 && c.h.source.fileStatus().length === 1, 3000)).toBe(true);
  gzipAway(r1); // read to its end already: history
  c.h.decisions.set(uid, "hold"); // its metadata goes missing: files are kept open, not read
  // A file created and rotated (and compressed) between two looks: found, opened, not read yet.
  writeFileSync(`${live}.${rotationStamp()}.gz`, gzipSync(criLines("m", 0, 2)));
  expect(await waitFor(() => c.h.source.fileStatus().length === 2, 3000)).toBe(true);
  await Bun.sleep(100);
  await c.h.stop();
  appendFileSync(live, cri("b1"));
  const next = c.restart();
  expect(await waitFor(() => next.received.length >= 3, 3000)).toBe(true);
  await Bun.sleep(200);
  // Not the older .gz again from its first byte (and the live file with it).
  expect(next.messages()).toEqual([...expectedMessages("m", 0, 2), "b1"]);
});

test("at start, a rotated file of one restart read whole does not make the next restart's rotated files, read already, be read again (simulation seed 913)", async () => {
  const c = collector();
  const dir = podDir(c.root, "uid-restarts");
  const live = join(dir, "1.log");
  const olderStamp = rotationStamp(); // of a file of the container's first run, written below
  writeFileSync(live, criLines("r1a", 0, 3));
  c.start();
  expect(await waitFor(() => c.h.received.length === 3, 2000)).toBe(true);
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  writeFileSync(live, criLines("r1b", 0, 2));
  expect(await waitFor(() => c.h.received.length === 5 && c.h.source.fileStatus().length === 1, 3000)).toBe(true);
  gzipAway(r1);
  await Bun.sleep(100);
  await c.h.stop();
  // While down: a rotated file of the container's first run turns up, newer than the last save.
  writeFileSync(join(dir, `0.log.${olderStamp}`), criLines("r0", 0, 2));
  appendFileSync(live, cri("r1b 2"));
  const next = c.restart();
  expect(await waitFor(() => next.received.length >= 3, 3000)).toBe(true);
  await Bun.sleep(200);
  expect(next.messages().sort()).toEqual([...expectedMessages("r0", 0, 2), "r1b 2"]);
});

test("two checkpoints that match the same rotated file after downtime: every rotated file is read once (simulation seed 70)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-twice"), "0.log");
  // Two files of this path the last run opened while they were empty (no fingerprint yet): either
  // matches any compressed sibling, and a second recovery pass must not open what the first one did.
  writeFileSync(
    join(c.h.dataDir, "checkpoints.json"),
    JSON.stringify({
      version: 1,
      savedAt: Date.now(),
      files: [
        { dev: 1, ino: 999_001, fpLen: 0, fpHash: 0, path: live, offset: 0, size: 0 },
        { dev: 1, ino: 999_002, fpLen: 0, fpHash: 0, path: live, offset: 0, size: 0 },
      ],
    }),
  );
  const r1 = `${live}.${rotationStamp()}`;
  writeFileSync(r1, criLines("t", 0, 10));
  gzipAway(r1);
  writeFileSync(`${live}.${rotationStamp()}`, criLines("t", 10, 20));
  writeFileSync(live, criLines("t", 20, 30));
  c.start();
  expect(await waitFor(() => c.h.received.length >= 30, 3000)).toBe(true);
  await Bun.sleep(200);
  expect(c.h.messages()).toEqual(expectedMessages("t", 0, 30));
});

test("after downtime, a checkpoint taken while its file was empty, that file and an older one both compressed: the empty one is the .gz after the older one's, not a loss (CI chaos seed 1161994857)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-headless"), "0.log");
  // The last save: an older rotated file half read (ring full), the live file empty (no head yet).
  const older = Buffer.from(criLines("a", 0, 10));
  const half = criLines("a", 0, 5).length;
  writeFileSync(
    join(c.h.dataDir, "checkpoints.json"),
    JSON.stringify({
      version: 1,
      savedAt: Date.now(),
      files: [
        { dev: 1, ino: 999_011, ...bytesFingerprint(older), path: live, offset: half, size: older.length },
        { dev: 1, ino: 999_012, fpLen: 0, fpHash: 0, path: live, offset: 0, size: 0 },
      ],
    }),
  );
  // While down: both rotated and compressed, a new live file begun.
  const r1 = `${live}.${rotationStamp()}`;
  writeFileSync(r1, older);
  gzipAway(r1);
  const r2 = `${live}.${rotationStamp()}`;
  writeFileSync(r2, criLines("b", 0, 10));
  gzipAway(r2);
  writeFileSync(live, criLines("c", 0, 10));
  c.start();
  expect(await waitFor(() => c.h.received.length >= 25, 3000)).toBe(true);
  await Bun.sleep(200);
  expect(c.h.messages()).toEqual([...expectedMessages("a", 5, 10), ...expectedMessages("b", 0, 10), ...expectedMessages("c", 0, 10)]);
  expect(c.h.source.counters.bytesLost).toBe(0); // nothing was deleted unread
  expect(c.h.source.counters.filesGivenUp).toBe(0);
});

for (const compressed of [false, true]) {
  test(`after downtime, a checkpoint taken while its file was empty finds that file rotated${compressed ? " and compressed" : ""}, not a .gz the last run read to its end (simulation seeds 699, 457, 1113, 1358, 806, 1174)`, async () => {
    const c = collector();
    const live = join(podDir(c.root, "uid-empty"), "0.log");
    writeFileSync(live, criLines("a", 0, 10));
    c.start();
    expect(await waitFor(() => c.h.received.length === 10, 2000)).toBe(true);
    // Rotated, compressed and deleted while followed: read to its end (done); its successor is empty.
    const first = `${live}.${rotationStamp()}`;
    renameSync(live, first);
    writeFileSync(live, "");
    gzipAway(first);
    const emptyIno = statSync(live).ino;
    expect(await waitFor(() => c.h.source.fileStatus().length === 1 && savedCheckpoints(c.h.dataDir).some((f) => f.ino === emptyIno), 3000)).toBe(true);
    await c.h.stop();
    // While down: the empty file is written to and rotated (and compressed), and a new live file
    // begins (before the rotated one is deleted: its inode is not reused at once).
    appendFileSync(live, criLines("b", 0, 10));
    const second = `${live}.${rotationStamp()}`;
    renameSync(live, second);
    writeFileSync(live, criLines("c", 0, 10));
    if (compressed) gzipAway(second);
    const next = c.restart();
    expect(await waitFor(() => next.received.length >= 20, 3000)).toBe(true);
    await Bun.sleep(300);
    expect(next.messages()).toEqual([...expectedMessages("b", 0, 10), ...expectedMessages("c", 0, 10)]);
  });
}

test("at start, a rotated file of one restart read on does not make the known rotated files of the next restart read again (simulation seed 913)", async () => {
  const c = collector();
  const dir = podDir(c.root, "uid-restarts");
  const first = join(dir, "0.log");
  const second = join(dir, "1.log");
  const olderStamp = rotationStamp(); // 0.log's rotation, later, sorts before 1.log's
  writeFileSync(first, criLines("a", 0, 5));
  writeFileSync(second, criLines("b", 0, 5));
  c.start();
  expect(await waitFor(() => c.h.received.length === 10, 2000)).toBe(true);
  renameSync(second, `${second}.${rotationStamp()}`); // read to its end once its successor has bytes: done
  writeFileSync(second, criLines("c", 0, 5));
  expect(await waitFor(() => c.h.received.length === 15 && c.h.source.fileStatus().length === 2, 3000)).toBe(true);
  await c.h.stop();
  // While down: 0.log takes more lines and is rotated; its checkpoint finds it under the rotated name.
  appendFileSync(first, criLines("d", 0, 5));
  renameSync(first, `${first}.${olderStamp}`);
  const next = c.restart();
  expect(await waitFor(() => next.received.length >= 5, 3000)).toBe(true);
  await Bun.sleep(300);
  expect(next.messages()).toEqual(expectedMessages("d", 0, 5));
});

test("a .gz the kubelet deletes right after the catch-up read it: its lines are delivered, the start goes on (chaos seed 1414535315: ENOENT at start, the collector exited)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-pruned"), "0.log");
  writeFileSync(live, criLines("p", 0, 100));
  c.start();
  expect(await waitFor(() => c.h.received.length === 100, 2000)).toBe(true);
  await c.h.stop();
  // While we are down: the known file rotates and is gzipped, and two newer files rotate after it.
  appendFileSync(live, criLines("p", 100, 200));
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  gzipAway(r1);
  writeFileSync(live, criLines("p", 200, 300));
  const r2 = `${live}.${rotationStamp()}`;
  renameSync(live, r2);
  gzipAway(r2);
  writeFileSync(live, criLines("p", 300, 400));
  // The restart reads both .gz; the kubelet prunes each right after its read, before it is opened.
  const second = c.next();
  for (const gz of [`${r1}.gz`, `${r2}.gz`]) second.fs.onNextRead(gz, () => unlinkSync(gz));
  c.start();
  expect(await waitFor(() => c.allMessages().length >= 400, 3000)).toBe(true);
  await Bun.sleep(100);
  expect(c.allMessages()).toEqual(expectedMessages("p", 0, 400)); // exactly once, in order
  expect(second.source.counters.filesRecovered).toBe(2);
});

test("a damaged .gz written while down is not read as a plain file (its gzip bytes are no log lines)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-damaged"), "0.log");
  writeFileSync(live, criLines("g", 0, 100));
  c.start();
  expect(await waitFor(() => c.h.received.length === 100, 2000)).toBe(true);
  await c.h.stop();
  appendFileSync(live, criLines("g", 100, 200));
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  // A newer file the last run never knew, compressed and then cut short (a full disk, say).
  writeFileSync(live, criLines("g", 200, 300));
  const r2 = `${live}.${rotationStamp()}`;
  renameSync(live, r2);
  const gz = gzipSync(statSync(r2).size ? Buffer.from(criLines("g", 200, 300)) : Buffer.alloc(0));
  writeFileSync(`${r2}.gz`, gz.subarray(0, gz.length >> 1));
  unlinkSync(r2);
  writeFileSync(live, criLines("g", 300, 400));
  const second = c.restart();
  expect(await waitFor(() => c.allMessages().length >= 300, 3000)).toBe(true);
  await Bun.sleep(200);
  expect(c.allMessages()).toEqual([...expectedMessages("g", 0, 200), ...expectedMessages("g", 300, 400)]);
  expect(second.source.counters.linesMalformed).toBe(0);
  expect(second.log.count("rotated .gz cannot be read")).toBe(1); // said once, by whichever pass met it first
});

test("a file opened empty and never read (held), rotated between files with heads and compressed while down: its checkpoint claims its .gz, no loss is counted (simulation seed 11851)", async () => {
  const c = collector();
  const uid = "uid-held-empty";
  const live = join(podDir(c.root, uid), "0.log");
  const other = join(podDir(c.root, "uid-read"), "0.log"); // read: its lines make the checkpoints saved
  writeFileSync(live, criLines("z", 0, 3));
  writeFileSync(other, criLines("o", 0, 1));
  c.h.decisions.set(uid, "hold"); // its metadata is not known yet: files are opened, not read
  c.start();
  const saved = () => readFileSync(join(c.h.dataDir, "checkpoints.json"), "utf8");
  const saveNow = async (n: number) => {
    appendFileSync(other, criLines("o", n, n + 1));
    const before = saved();
    expect(await waitFor(() => saved() !== before, 3000)).toBe(true);
  };
  expect(await waitFor(() => c.h.source.fileStatus().length === 2 && c.h.received.length === 1, 3000)).toBe(true);
  const r0 = `${live}.${rotationStamp()}`;
  renameSync(live, r0);
  writeFileSync(live, ""); // opened while empty: a checkpoint without a head
  expect(await waitFor(() => c.h.source.fileStatus().length === 3, 3000)).toBe(true);
  await saveNow(1);
  appendFileSync(live, criLines("a", 0, 3));
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  writeFileSync(live, criLines("b", 0, 3));
  expect(await waitFor(() => c.h.source.fileStatus().length === 4, 3000)).toBe(true);
  const r2 = `${live}.${rotationStamp()}`;
  renameSync(live, r2);
  writeFileSync(live, criLines("c", 0, 3));
  expect(await waitFor(() => c.h.source.fileStatus().length === 5, 3000)).toBe(true);
  await saveNow(2);
  const ino = statSync(r1).ino;
  const cps = JSON.parse(saved()).files as Array<{ ino: number; fpLen: number }>;
  expect(cps.find((f) => f.ino === ino)?.fpLen).toBe(0); // saved before its head was taken
  await c.h.crash();
  gzipAway(r1); // while down: the headless one is compressed, between two files with heads
  const next = c.restart();
  expect(await waitFor(() => next.received.length >= 12, 3000)).toBe(true);
  await Bun.sleep(200);
  expect(next.messages().filter((m) => !m.startsWith("o")).sort()).toEqual([..."zabc"].flatMap((p) => expectedMessages(p, 0, 3)).sort());
  expect(next.source.counters.bytesLost).toBe(0); // nothing went away: r1's lines are in its .gz
});

/**
 * A held container (files opened, not read: checkpoints at offset 0, never done) whose first file
 * ("a") rotated and whose live file ("b") is checkpointed too; then a crash. Returns the live path.
 */
async function crashWithHeldRotation(c: ReturnType<typeof collector>, uid: string): Promise<string> {
  const live = join(podDir(c.root, uid), "0.log");
  const other = join(podDir(c.root, "uid-read"), "0.log"); // read: its lines make the checkpoints saved
  writeFileSync(live, criLines("a", 0, 3));
  writeFileSync(other, criLines("o", 0, 1));
  c.h.decisions.set(uid, "hold");
  c.start();
  expect(await waitFor(() => c.h.source.fileStatus().length === 2 && c.h.received.length === 1, 3000)).toBe(true);
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, criLines("b", 0, 3));
  expect(await waitFor(() => c.h.source.fileStatus().length === 3, 3000)).toBe(true);
  const saved = () => readFileSync(join(c.h.dataDir, "checkpoints.json"), "utf8");
  const before = saved();
  appendFileSync(other, criLines("o", 1, 2));
  expect(await waitFor(() => saved() !== before, 3000)).toBe(true);
  const liveIno = statSync(live).ino;
  expect(savedCheckpoints(c.h.dataDir).some((cp) => cp.ino === liveIno)).toBe(true);
  await c.h.crash();
  return live;
}

/** After the restart: "a", "b" and the new live file's "c" lines, each once; nothing counted lost. */
async function expectEveryLineOnceNoLoss(next: ReturnType<ReturnType<typeof collector>["next"]>): Promise<void> {
  expect(await waitFor(() => next.received.length >= 10, 3000)).toBe(true);
  await Bun.sleep(200);
  expect(next.messages().filter((m) => !m.startsWith("o")).sort()).toEqual([..."abc"].flatMap((p) => expectedMessages(p, 0, 3)).sort());
  expect(next.source.counters.bytesLost).toBe(0);
}

test("at start, the file live at the crash rotates right after the catch-up found it live: its checkpoint claims it, no loss is counted, every line once (CI chaos seed 1429337505)", async () => {
  const c = collector();
  const live = await crashWithHeldRotation(c, "uid-rotates-at-start");
  // The restart's catch-up looks at the live file (its checkpoint's file is still there), then the
  // kubelet rotates it before the catch-up lists the rotated files of that path.
  const r1 = `${live}.${rotationStamp()}`;
  const next = c.next();
  next.fs.onNextOpen(live, () => {
    renameSync(live, r1);
    writeFileSync(live, criLines("c", 0, 3));
  });
  c.start();
  await expectEveryLineOnceNoLoss(next); // nothing went away: the file is read under its rotated name
  expect(existsSync(r1)).toBe(true); // the rotation happened at start
});

test("at start, a rotated file the kubelet compresses right after the catch-up listed it: read from its .gz, its checkpoint claims it, no loss is counted", async () => {
  const c = collector();
  const live = await crashWithHeldRotation(c, "uid-gzipped-at-start");
  // While down, the live file rotates; at start the kubelet compresses it right after the catch-up
  // listed it as a plain file.
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  writeFileSync(live, criLines("c", 0, 3));
  const next = c.next();
  next.fs.onNextListing(dirname(live), () => gzipAway(r1));
  c.start();
  await expectEveryLineOnceNoLoss(next); // its lines were read from the .gz
  expect(existsSync(`${r1}.gz`) && !existsSync(r1)).toBe(true); // compressed at start
});
