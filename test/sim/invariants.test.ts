// The invariants' attribution of pieces too short for their probe (invariants.ts, shortPiece): a
// piece of a line whose file lost bytes is excused, anything else stays a violation. And the
// over-count check (loss-bound.ts): a loss counted that no file gone unread explains is a violation.
import { expect, test } from "bun:test";
import { shortPiece } from "./invariants.ts";
import { goneUnread, leftUnfinished, overCounts } from "./loss-bound.ts";
import { Rng } from "./rng.ts";
import { Scheduler } from "./scheduler.ts";
import { SimFs } from "./sim-fs.ts";
import type { WrittenLine } from "./workload.ts";

const enc = new TextEncoder();
const line = (id: number, text: string): WrittenLine => {
  const content = enc.encode(`L${id};${text}`);
  return { id, content, message: new TextDecoder().decode(content) } as WrittenLine;
};

test("only replacement characters: the continuation bytes of a character in a lossy line, not any line's", () => {
  const lossy = line(4206, "qf9v 0日本"); // a piece of it may be the last bytes of 本 alone
  const ascii = line(4207, "plain text");
  expect(shortPiece("\uFFFD", [lossy], [lossy, ascii])?.of).toBe(lossy);
  expect(shortPiece("\uFFFD\uFFFD", [lossy], [lossy, ascii])?.of).toBe(lossy);
  expect(shortPiece("\uFFFD", [ascii], [lossy, ascii])).toBeUndefined();
  expect(shortPiece("\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD", [lossy], [lossy, ascii])).toBeUndefined(); // more than its bytes make
});

test("a lossy line's head cut inside its id, glued to a piece of another lossy line or to a line by its id", () => {
  const head = line(1644, ";ko]xd 3qh,6c}4");
  const tail = line(1719, "/np8{[_bkj5spwx\\1.yn[xhbu€ldr\"3 0tc{:3");
  const healthy = line(1720, "whole and well, written where nothing was lost");
  expect(shortPiece("L1644spwx\\1.yn[xhbu€ldr\"3 0tc", [head, tail], [head, tail, healthy])).toEqual({ of: head, glued: [] });
  expect(shortPiece("L1644L1720;whole and well", [head, tail], [head, tail, healthy])).toEqual({ of: head, glued: [1720] });
  // The middle of a line that lost nothing glued after it: not excused.
  expect(shortPiece("L1644and well, written where", [head, tail], [head, tail, healthy])).toBeUndefined();
  expect(shortPiece("L1644spwx\\1.yn[xhbu€ldr\"3 0tc", [head], [head, tail, healthy])).toBeUndefined();
});

// The over-count check (loss-bound.ts): a loss the collector counts must be explained by a file gone unread.
const LIVE = "/var/log/pods/argo_wf-0_0000-sim/main/0.log";
const OTHER = "/var/log/pods/argo_wf-1_0001-sim/main/0.log";
const ran = (gen: number, endedAt: number, losses: Array<{ path: string; bytes: number }>) => ({ gen, endedAt, bytesLost: losses.reduce((s, l) => s + l.bytes, 0), losses });

test("a loss counted where no file went away unread is an over-count (CI chaos seed 1161994857: 131,120 B counted, nothing lost)", () => {
  const largest = new Map([[LIVE, 65_560], [OTHER, 65_560]]);
  const counted = [ran(1, 1000, []), ran(2, 9000, [{ path: LIVE, bytes: 65_560 }, { path: LIVE, bytes: 65_560 }])];
  expect(overCounts(counted, [], largest)).toEqual([
    `process 2 counted 131120 B lost of ${LIVE}, where no file went away unread: an over-count`,
    "131120 B counted lost in all, more than the 0 B the files gone unread can explain",
  ]);
  // A file of another container gone unread explains nothing here, though the total fits.
  const elsewhere = [{ livePath: OTHER, goneAt: 500 }, { livePath: OTHER, goneAt: 600 }];
  expect(overCounts(counted, elsewhere, largest)).toEqual([`process 2 counted 131120 B lost of ${LIVE}, where no file went away unread: an over-count`]);
  // Two files of its own gone while down: each may be estimated at the largest file of the container.
  expect(overCounts(counted, [{ livePath: LIVE, goneAt: 500 }, { livePath: LIVE, goneAt: 600 }], largest)).toEqual([]);
  // One: at most one such estimate.
  expect(overCounts(counted, [{ livePath: LIVE, goneAt: 500 }], largest)).toEqual([`process 2 counted 131120 B lost of ${LIVE}, where 1 file(s) went away unread, at most 65560 B each: an over-count`]);
});

test("a loss is counted again by each process that forgets the checkpoint (the one before crashed before its save), by a rotated file's name too; a file gone after a process ended does not excuse it", () => {
  const largest = new Map([[LIVE, 8192]]);
  const gone = [{ livePath: LIVE, goneAt: 500 }];
  const rotated = `${LIVE}.20261206-100001`;
  expect(overCounts([ran(1, 400, []), ran(2, 900, [{ path: LIVE, bytes: 8000 }]), ran(3, 2000, [{ path: LIVE, bytes: 8000 }])], gone, largest)).toEqual([]);
  expect(overCounts([ran(1, 400, [{ path: rotated, bytes: 8000 }]), ran(2, 900, [])], gone, largest)).toEqual([`process 1 counted 8000 B lost of ${LIVE}, where no file went away unread: an over-count`]);
  // A counter its warnings do not place is not explained either.
  expect(overCounts([{ gen: 1, endedAt: 900, bytesLost: 100, losses: [] }], gone, largest)).toEqual(["process 1 counted 100 B lost, and its warnings place 0 B"]);
});

test("a file compressed while down went away, its content did not: gone unread only once its .gz is gone too", () => {
  const history = {
    createdAs: new Map([[1, LIVE], [2, LIVE], [3, `${LIVE}.20261206-100001.gz`], [4, OTHER]]),
    peakSize: new Map([[1, 9000], [2, 300], [3, 2100], [4, 70_000]]),
    gzOf: new Map([[1, 3]]),
    freedAt: new Map([[1, 500]]),
  };
  const deletedWhileDown = new Set([1]);
  const { gone, largest } = goneUnread([deletedWhileDown], new Set(), history);
  expect(gone).toEqual([]);
  expect(largest).toEqual(new Map([[LIVE, 9000], [OTHER, 70_000]]));
  // Its .gz deleted later: gone then, whichever of the two the sets name.
  history.freedAt.set(3, 800);
  expect(goneUnread([deletedWhileDown], new Set(), history).gone).toEqual([{ livePath: LIVE, goneAt: 800 }]);
  expect(goneUnread([new Set([3]), deletedWhileDown], new Set(), history).gone).toEqual([{ livePath: LIVE, goneAt: 800 }]);
  // Given up (closed unread after its deletion): gone when freed, whatever became of its .gz — the
  // process that gave it up reads no .gz of it, nor does a restart (it knows the file as read).
  expect(goneUnread([deletedWhileDown], new Set([1]), history).gone).toEqual([{ livePath: LIVE, goneAt: 500 }]);
});

test("a graceful stop leaves unfinished a file it read and closed that a line pins whose rest it had not read, and a .gz it held in memory", () => {
  const fs = new SimFs(new Scheduler(0, new Rng(1)), new Rng(2));
  const dir = "/var/log/pods/argo_wf-0_0000-sim/main";
  fs.mkdirp(dir);
  const head = fs.create(`${dir}/0.log`); // a line's head, read to its end, closed and freed
  const whole = fs.create(`${dir}/1.log`); // whole lines only, read, closed and freed
  const rest = fs.create(`${dir}/2.log`); // the line's rest: never read by process 1
  const [headFile, wholeFile, restFile] = [head, whole, rest].map((ino) => fs.fileOf(ino)) as [number, number, number];
  for (const ino of [head, whole, rest]) fs.append(ino, enc.encode("2026-12-06T10:00:00.000000001Z stdout P L1;a long line\n"), null);
  const port = fs.port(1);
  const freedRunning = new Set<number>();
  fs.onFree = (file) => freedRunning.add(file);
  for (const path of [`${dir}/0.log`, `${dir}/1.log`]) {
    const fd = port.open(path);
    port.read(fd, new Uint8Array(4096), 0, 4096, 0);
    port.close(fd);
    fs.unlink(path);
  }
  const gz = fs.writeWhole(`${dir}/0.log.20261206-100001.gz`, enc.encode("compressed"));
  const gzFile = fs.fileOf(gz);
  port.readFile(`${dir}/0.log.20261206-100001.gz`);
  fs.unlink(`${dir}/0.log.20261206-100001.gz`);
  const spanning = { id: 1, files: [headFile, restFile] } as WrittenLine;
  const inOne = { id: 2, files: [wholeFile] } as WrittenLine;
  expect(leftUnfinished(1, fs, [spanning, inOne], freedRunning, new Set()).sort()).toEqual([headFile, gzFile].sort());
  // Process 2 read none of them: nothing it ran with was freed.
  expect(leftUnfinished(2, fs, [spanning, inOne], new Set(), new Set())).toEqual([]);
  // Its rest read too: nothing pins the head's file.
  const fd = port.open(`${dir}/2.log`);
  port.read(fd, new Uint8Array(4096), 0, 4096, 0);
  expect(leftUnfinished(1, fs, [spanning, inOne], freedRunning, new Set())).toEqual([gzFile]);
});
