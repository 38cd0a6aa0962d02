// The source's parts on their own, driven through the simulated file system and clock of the
// deterministic simulation: a watermark, a tailed file, the checkpointer, discovery.
import { describe, expect, test } from "bun:test";
import { ConfigSchema } from "../../src/config/schema.ts";
import { RecoveredContainers } from "../../src/source/catch-up.ts";
import { Checkpointer } from "../../src/source/checkpointer.ts";
import { newSourceCounters, type SourceParts } from "../../src/source/context.ts";
import { Discovery, logFileFilter } from "../../src/source/discovery.ts";
import { FileSet } from "../../src/source/file-set.ts";
import { LineBatch } from "../../src/source/line-batch.ts";
import { Opener } from "../../src/source/opener.ts";
import { type PodLogPath, parsePodLogPath } from "../../src/source/paths.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import { GzipReader } from "../../src/source/rotated.ts";
import type { TailedFile } from "../../src/source/tailed-file.ts";
import type { CheckpointStorage, FileCheckpoint, SavedCheckpoints } from "../../src/source/types.ts";
import { Watermark } from "../../src/source/watermark.ts";
import { Rng } from "../sim/rng.ts";
import { Scheduler } from "../sim/scheduler.ts";
import { SimFs } from "../sim/sim-fs.ts";
import { CapturedLog } from "./harness.ts";

const enc = new TextEncoder();
const ROOT = "/logs";

class MemoryCheckpoints implements CheckpointStorage {
  readonly path = "memory";
  saved: FileCheckpoint[] = [];
  savedAt: number | null = null;
  saves = 0;
  load(): SavedCheckpoints {
    return { files: this.saved, savedAt: this.savedAt };
  }
  save(s: SavedCheckpoints): void {
    this.saves++;
    this.saved = [...s.files];
    this.savedAt = s.savedAt;
  }
}

/** The parts of one source over a simulated node. */
function world(over: Record<string, unknown> = {}) {
  const clock = new Scheduler(Date.UTC(2026, 11, 6), new Rng(1));
  const fs = new SimFs(clock, new Rng(2));
  fs.mkdirp(ROOT);
  const config = ConfigSchema.parse({ source: { root: ROOT, ...over } }).source;
  const counters = newSourceCounters();
  const log = new CapturedLog();
  const storage = new MemoryCheckpoints();
  const checkpoints = new Checkpointer(storage, counters, log.logger, clock, undefined, (p) => discovery.rotatedListed.count(p));
  let notified = 0;
  const closed: string[] = [];
  const port = fs.port(1);
  const parts: SourceParts = {
    fs: port,
    clock,
    log: log.logger,
    counters,
    output: { decide: () => "read", emit: async () => 0, closed: (f) => closed.push(f.path) },
    checkpoints,
    startedAt: clock.now(),
    gzip: new GzipReader(port, log.logger),
    notify: () => notified++,
  };
  const merger = new PartialMerger(config.maxLineBytes);
  const events = { truncated: () => counters.filesTruncated++, unlinked: (f: TailedFile) => files.markDeleted(f) };
  const files: FileSet = new FileSet(parts, config, merger, events, () => {});
  const opener = new Opener(parts, config, files);
  const discovery = new Discovery(parts, config, files, opener, logFileFilter(config, null), new RecoveredContainers());
  return { clock, fs, config, counters, log, storage, checkpoints, files, opener, discovery, merger, closed, notified: () => notified };
}

function line(msg: string): Uint8Array {
  return enc.encode(`2026-12-06T00:00:00.000000001Z stdout F ${msg}\n`);
}

describe("Watermark", () => {
  test("the checkpoint moves over marks only once their sequence is durable, to the last such mark", () => {
    const w = new Watermark(10);
    w.mark(5, 100);
    w.mark(5, 150); // same sequence: the same mark, further on
    w.mark(8, 300);
    expect(w.advance(4)).toBe(false);
    expect(w.checkpoint).toBe(10);
    expect(w.advance(6)).toBe(true);
    expect(w.checkpoint).toBe(150);
    expect(w.waiting).toBe(true);
    expect(w.advance(100)).toBe(true);
    expect(w.checkpoint).toBe(300);
    expect(w.waiting).toBe(false);
    w.mark(9, 300);
    expect(w.advance(9)).toBe(false); // moved nowhere
    w.mark(10, 400);
    w.reset(0);
    expect(w.waiting).toBe(false);
    expect(w.checkpoint).toBe(0);
  });

  test("an expected mark holds the checkpoint and keeps the watermark waiting until it comes", () => {
    const w = new Watermark(10);
    w.mark(3, 100);
    w.expect();
    w.expect(); // one expected mark, however often
    expect(w.advance(1_000_000)).toBe(true);
    expect(w.checkpoint).toBe(100); // not past the expected mark
    expect(w.waiting).toBe(true);
    w.mark(7, 250); // the mark arrives in its place
    expect(w.advance(6)).toBe(false);
    expect(w.advance(7)).toBe(true);
    expect(w.checkpoint).toBe(250);
    expect(w.waiting).toBe(false);
  });
});

describe("TailedFile", () => {
  test("reads slices through its descriptor after a rename; truncation and deletion are reported", () => {
    const w = world();
    const dir = `${ROOT}/argo_p_uid1/main`;
    w.fs.mkdirp(dir);
    const ino = w.fs.create(`${dir}/0.log`);
    w.fs.append(ino, line("one"), null);
    w.discovery.scanAll(true);
    const f = w.files.byPath.get(`${dir}/0.log`) as TailedFile;
    expect(f).toBeDefined();
    const batch = new LineBatch();
    const buf = new Uint8Array(16);
    let n = 0;
    while (f.readSlice(buf, 0, batch, w.log.logger) > 0) n++;
    expect(n).toBeGreaterThan(1); // a 16-byte read buffer: several slices
    expect([...batch].map((l) => l.message)).toEqual(["one"]);
    // Renamed: read on through the descriptor.
    w.fs.rename(`${dir}/0.log`, `${dir}/0.log.20261206-000000`);
    w.fs.append(ino, line("two"), null);
    batch.clear();
    while (f.readSlice(new Uint8Array(4096), 0, batch, w.log.logger) > 0);
    expect([...batch].map((l) => l.message)).toEqual(["two"]);
    // Truncated in place: read again from 0.
    w.fs.truncate(`${dir}/0.log.20261206-000000`);
    w.fs.append(ino, line("three"), null);
    expect(f.readSlice(new Uint8Array(4096), 0, batch, w.log.logger)).toBe(0);
    expect(w.counters.filesTruncated).toBe(1);
    expect(f.readPos).toBe(0);
    batch.clear();
    expect(f.readSlice(new Uint8Array(4096), 0, batch, w.log.logger)).toBeGreaterThan(0);
    expect([...batch].map((l) => l.message)).toEqual(["three"]);
    // Deleted: still readable through the descriptor; the deletion is noticed at the end.
    w.fs.unlink(`${dir}/0.log.20261206-000000`);
    expect(f.readSlice(new Uint8Array(4096), 0, batch, w.log.logger)).toBe(0);
    expect(f.deleted).toBe(true);
    expect(w.counters.filesDeleted).toBe(1);
  });

  test("a draining file is drained once its successor has bytes, or after the grace", () => {
    const w = world();
    const dir = `${ROOT}/argo_p_uid2/main`;
    w.fs.mkdirp(dir);
    const old = w.fs.create(`${dir}/0.log`);
    w.fs.append(old, line("a"), null);
    w.discovery.scanAll(true);
    const f = w.files.byPath.get(`${dir}/0.log`) as TailedFile;
    w.fs.rename(`${dir}/0.log`, `${dir}/0.log.20261206-000001`);
    const fresh = w.fs.create(`${dir}/0.log`);
    w.discovery.scanAll(false);
    expect(f.state).toBe("draining");
    const successor = w.files.byPath.get(`${dir}/0.log`);
    expect(successor).not.toBe(f);
    const t = w.clock.now();
    expect(f.drained(t, 5000, successor)).toBe(false); // the runtime may still write to the old file
    w.fs.append(fresh, line("b"), null);
    expect(f.drained(t, 5000, successor)).toBe(true);
    expect(f.drained(t + 5000, 5000, undefined)).toBe(true);
  });
});

/** `n` rotated files of one container, each with a line, opened oldest first (as after a downtime). */
function openRotatedFiles(w: ReturnType<typeof world>, uid: string, n: number): TailedFile[] {
  const dir = `${ROOT}/argo_p_${uid}/main`;
  w.fs.mkdirp(dir);
  const parsed = parsePodLogPath(`argo_p_${uid}/main/0.log`) as PodLogPath;
  const opened: TailedFile[] = [];
  for (let i = 0; i < n; i++) {
    const path = `${dir}/0.log.20261206-0000${String(i).padStart(2, "0")}`;
    w.fs.append(w.fs.create(path), line(`file ${i}`), null);
    opened.push(w.opener.openRotated(path, null, `${dir}/0.log`, parsed, null) as TailedFile);
  }
  return opened;
}

describe("Checkpointer", () => {
  test("saves open and retired files' watermarks once something moved, keeps unclaimed ones, counts what was lost", () => {
    const w = world();
    w.storage.saved = [{ dev: 9, ino: 99, fpLen: 0, fpHash: 0, path: `${ROOT}/gone/main/0.log`, offset: 100, size: 400 }];
    w.checkpoints.load();
    const dir = `${ROOT}/argo_p_uid3/main`;
    w.fs.mkdirp(dir);
    w.fs.append(w.fs.create(`${dir}/0.log`), line("x"), null);
    w.discovery.scanAll(true);
    const f = w.files.byPath.get(`${dir}/0.log`) as TailedFile;
    w.checkpoints.save(w.files);
    expect(w.storage.saved.map((c) => c.path).sort()).toEqual([`${dir}/0.log`, `${ROOT}/gone/main/0.log`]);
    const saves = w.storage.saves;
    w.checkpoints.save(w.files);
    expect(w.storage.saves).toBe(saves); // nothing moved: nothing written
    f.watermark.mark(3, 40);
    w.checkpoints.applyMarks(w.files, w.merger, 3);
    w.checkpoints.save(w.files);
    expect(w.storage.saved.find((c) => c.path === `${dir}/0.log`)?.offset).toBe(40);
    w.checkpoints.forgetUnclaimed();
    expect(w.counters.bytesLost).toBe(300); // size − offset at the last save
    expect(w.counters.checkpointsPruned).toBe(1);
    w.checkpoints.save(w.files);
    expect(w.storage.saved.map((c) => c.path)).toEqual([`${dir}/0.log`]);
  });

  test("done files beyond the per-path bound: the oldest are forgotten, also when many are done within one millisecond (simulation seed 4986)", () => {
    const w = world();
    const opened = openRotatedFiles(w, "uid6", 10);
    for (const f of opened) w.files.retire(f); // read to its end: done, all at the same clock time
    w.checkpoints.save(w.files);
    const done = w.storage.saved.filter((c) => c.done).map((c) => c.ino);
    expect(done.sort()).toEqual(opened.slice(2).map((f) => f.ino).sort()); // the newest eight
  });

  test("done files beyond the per-path bound: the newest in reading order are kept, not the last done — a newer file done before older ones held back (simulation seed 44052)", () => {
    const w = world();
    const opened = openRotatedFiles(w, "uid7", 10);
    // The newest is done first (given up unread); the nine older ones after it (a pending line or
    // their marks held them).
    for (const f of [opened[9], ...opened.slice(0, 9)] as TailedFile[]) w.files.retire(f);
    w.checkpoints.save(w.files);
    const doneFiles = () => w.storage.saved.filter((c) => c.done).map((c) => opened.findIndex((f) => f.ino === c.ino));
    expect(doneFiles()).toEqual([2, 3, 4, 5, 6, 7, 8, 9]); // the newest eight, oldest first
    // The next run ranks them as saved.
    const next = new Checkpointer(w.storage, w.counters, w.log.logger, w.clock);
    next.load();
    next.markDirty();
    next.save({ open: new Map(), retired: new Map() });
    expect(doneFiles()).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("done files: never fewer kept than the rotated files of their path the last listing showed, and four more (simulation seed 51279)", () => {
    const w = world();
    const opened = openRotatedFiles(w, "uid9", 14);
    for (const f of opened) w.files.retire(f); // read to its end: done, all at the same clock time
    // The kubelet keeps nine rotated files (containerLogMaxFiles: 10): the five oldest are deleted.
    for (const f of opened.slice(0, 5)) w.fs.unlink(f.info.path);
    w.discovery.scanAll(false);
    w.checkpoints.save(w.files);
    const done = w.storage.saved.filter((c) => c.done).map((c) => c.ino);
    expect(done.sort()).toEqual(opened.slice(1).map((f) => f.ino).sort()); // nine on disk, four more: the newest thirteen
  });

  test("a retired file whose inode number a newer file took keeps its checkpoint; after a restart each file claims its own (simulation seed 1730)", () => {
    const w = world();
    const dir = `${ROOT}/argo_p_uid8`;
    w.fs.mkdirp(`${dir}/main`);
    w.fs.append(w.fs.create(`${dir}/main/0.log`), line("head of a long line"), null);
    w.discovery.scanAll(true);
    const old = w.files.byPath.get(`${dir}/main/0.log`) as TailedFile;
    w.merger.add(old.containerKey, "stdout", "t", "head ", true, old.serial, 0, 0); // a line pending from it
    w.fs.unlink(`${dir}/main/0.log`);
    w.files.retire(old); // closed, its checkpoint kept at the pending line's head; the inode is free
    w.fs.mkdirp(`${dir}/wait`);
    w.fs.append(w.fs.create(`${dir}/wait/0.log`), line("another file"), null);
    w.discovery.scanAll(false);
    const newer = w.files.byPath.get(`${dir}/wait/0.log`) as TailedFile;
    expect(newer.ino).toBe(old.ino);
    w.checkpoints.save(w.files);
    expect(w.storage.saved.map((c) => c.path).sort()).toEqual([`${dir}/main/0.log`, `${dir}/wait/0.log`]);
    const next = new Checkpointer(w.storage, w.counters, w.log.logger, w.clock);
    next.load();
    const claimed = next.claim(newer.dev, newer.ino, (cp) => cp.fpHash === newer.fp.fpHash && cp.fpLen === newer.fp.fpLen);
    expect(claimed?.path).toBe(`${dir}/wait/0.log`);
    expect([...next.unclaimed.values()].map((c) => c.path)).toEqual([`${dir}/main/0.log`]); // left for the catch-up
  });

  test("a failed save is logged and tried again at the next one", () => {
    const w = world();
    let fail = true;
    const storage: CheckpointStorage = {
      path: "flaky",
      load: () => ({ files: [], savedAt: null }),
      save: () => {
        if (fail) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
      },
    };
    const cp = new Checkpointer(storage, w.counters, w.log.logger, w.clock);
    cp.markDirty();
    cp.save(w.files);
    expect(w.log.count("cannot write checkpoints")).toBe(1);
    expect(w.counters.checkpointWrites).toBe(0);
    fail = false;
    cp.save(w.files);
    expect(w.counters.checkpointWrites).toBe(1);
  });
});

describe("Discovery", () => {
  test("opens live files, follows a path through rotation, reads a file rotated between two looks, leaves what is not a log", () => {
    const w = world();
    const dir = `${ROOT}/argo_p_uid4/main`;
    w.fs.mkdirp(dir);
    w.fs.append(w.fs.create(`${dir}/0.log`), line("live"), null);
    w.fs.append(w.fs.create(`${dir}/0.log.20261205-000000`), line("history"), null);
    w.fs.create(`${dir}/notes.txt`);
    w.fs.mkdirp(`${ROOT}/not-a-pod-dir/main`);
    w.fs.create(`${ROOT}/not-a-pod-dir/main/0.log`);
    expect(w.discovery.scanAll(true)).toBe(true);
    expect([...w.files.byPath.keys()]).toEqual([`${dir}/0.log`]); // rotated at start: history, not read
    // Between two looks: the live file rotates twice; the middle one was never seen live.
    w.fs.rename(`${dir}/0.log`, `${dir}/0.log.20261206-000001`);
    w.fs.append(w.fs.create(`${dir}/0.log`), line("missed"), null);
    w.fs.rename(`${dir}/0.log`, `${dir}/0.log.20261206-000002`);
    w.fs.append(w.fs.create(`${dir}/0.log`), line("new live"), null);
    w.discovery.scanAll(false);
    expect(w.counters.filesMissedRotated).toBe(1);
    const paths = [...w.files.open.values()].map((f) => f.info.path).sort();
    expect(paths).toEqual([`${dir}/0.log`, `${dir}/0.log`, `${dir}/0.log.20261206-000002`].sort());
    expect(w.log.count("rotated before it was opened")).toBe(1);
  });

  test("a later file with a reused inode number has an id of its own (the pipeline keys per-file state by it; simulation seed 4275)", () => {
    const w = world();
    const dir = `${ROOT}/argo_p_uid7`;
    w.fs.mkdirp(`${dir}/wait`);
    w.fs.append(w.fs.create(`${dir}/wait/0.log`), line("a"), null);
    w.discovery.scanAll(true);
    const first = w.files.byPath.get(`${dir}/wait/0.log`) as TailedFile;
    w.fs.unlink(`${dir}/wait/0.log`);
    w.files.forget(first); // closed: the inode is free, and reused at once
    w.fs.mkdirp(`${dir}/main`);
    w.fs.append(w.fs.create(`${dir}/main/1.log`), line("b"), null);
    w.discovery.scanAll(false);
    const second = w.files.byPath.get(`${dir}/main/1.log`) as TailedFile;
    expect(second.ino).toBe(first.ino);
    expect(second.info.id).not.toBe(first.info.id);
    expect(second.info.container).toBe("main");
    expect(w.files.byInode.get(second.inodeKey)).toBe(second);
  });

  test("a pod directory removed: its files drain; a vanished path is unlinked", () => {
    const w = world();
    const dir = `${ROOT}/argo_p_uid5/main`;
    w.fs.mkdirp(dir);
    w.fs.append(w.fs.create(`${dir}/0.log`), line("a"), null);
    w.discovery.scanAll(true);
    const f = w.files.byPath.get(`${dir}/0.log`) as TailedFile;
    w.fs.removeTree(`${ROOT}/argo_p_uid5`);
    w.discovery.scanAll(false);
    expect(f.state).toBe("draining");
    expect(f.deleted).toBe(true);
    expect(w.files.byPath.size).toBe(0);
  });
});
