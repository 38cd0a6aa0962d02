// Done files (issue 4 §3): files read to their end or given up are remembered as done, so that a
// restart reads neither their .gz nor the files after them whole again.
import { afterAll, afterEach, expect, test } from "bun:test";
import { appendFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupDirs, cri, criLines, expectedMessages, podDir, rotationStamp, waitFor } from "./harness.ts";
import { collector, crashAtLiveEndReadsNothingAgain, gzipAway, stopRunning } from "./restarts.ts";

afterEach(stopRunning);
afterAll(cleanupDirs);

test("a file given up over maxDeletedHeldBytes, then gzipped: a restart after a crash knows its .gz as read, and does not read it and the later files of its container whole again (simulation seed 655)", async () => {
  const c = collector({ maxDeletedHeldBytes: 1000, scanIntervalMs: 100 });
  const uid = "uid-cap";
  const live = join(podDir(c.root, uid), "0.log");
  writeFileSync(live, criLines("cap", 0, 50));
  c.h.decisions.set(uid, "hold"); // opened, not read: as behind a full ring
  c.start();
  expect(await waitFor(() => c.h.source.fileStatus().length === 1, 2000)).toBe(true);
  // The kubelet rotates it and compresses it away while it is held open unread: over the cap.
  const first = `${live}.${rotationStamp()}`;
  renameSync(live, first);
  writeFileSync(live, criLines("cap", 50, 100));
  gzipAway(first);
  expect(await waitFor(() => c.h.source.counters.filesGivenUp === 1, 2000)).toBe(true);
  c.h.decisions.delete(uid);
  c.h.source.notify();
  expect(await waitFor(() => c.h.received.length === 50, 2000)).toBe(true);
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, criLines("cap", 100, 150));
  expect(await waitFor(() => c.h.received.length === 100, 2000)).toBe(true);
  await crashAtLiveEndReadsNothingAgain(c, live);
  expect(c.allMessages()).toEqual(expectedMessages("cap", 50, 150));
});

test("more files of a container done at once than the checkpoints remember, after a newer one given up unread: the newest files are remembered, and a restart after a crash does not read that one's .gz and the live file after it whole again (simulation seed 44052)", async () => {
  const c = collector({ maxDeletedHeldBytes: 1000, scanIntervalMs: 100 });
  const uid = "uid-burst";
  const live = join(podDir(c.root, uid), "0.log");
  c.h.autoDurable = false; // rotated files read to their end stay closed with their checkpoints (a long line pinned them in the run that found this)
  writeFileSync(live, criLines("burst", 0, 5));
  c.start();
  const rotated: string[] = [];
  const rotate = () => {
    rotated.push(`${live}.${rotationStamp()}`);
    renameSync(live, rotated[rotated.length - 1] as string);
  };
  for (let i = 1; i <= 8; i++) {
    expect(await waitFor(() => c.h.received.length === i * 5, 2000)).toBe(true);
    rotate();
    writeFileSync(live, criLines("burst", i * 5, i * 5 + 5));
  }
  expect(await waitFor(() => c.h.received.length === 45, 2000)).toBe(true);
  // The next file is opened and not read (as behind a full ring), rotated and compressed away: over
  // the cap, given up unread — done at once, before the nine older ones, whose records are not durable.
  c.h.decisions.set(uid, "hold");
  rotate();
  writeFileSync(live, criLines("burst", 45, 75));
  expect(await waitFor(() => c.h.source.fileStatus().length === 2, 2000)).toBe(true);
  const givenUp = `${live}.${rotationStamp()}`;
  renameSync(live, givenUp);
  gzipAway(givenUp);
  expect(await waitFor(() => c.h.source.counters.filesGivenUp === 1, 2000)).toBe(true);
  c.h.decisions.delete(uid);
  writeFileSync(live, criLines("burst", 75, 80));
  c.h.source.notify();
  expect(await waitFor(() => c.h.received.length === 50, 2000)).toBe(true);
  for (const r of rotated) unlinkSync(r); // the kubelet deletes the oldest; the given-up file's .gz stays
  c.h.makeDurable(); // the nine older files are done now, all at once
  // The given-up file's done checkpoint used to be dropped for the nine done after it: its .gz was
  // read whole as a file rotated while down, and the live file after it again from its first byte.
  await crashAtLiveEndReadsNothingAgain(c, live);
  expect(c.allMessages()).toEqual([...expectedMessages("burst", 0, 45), ...expectedMessages("burst", 75, 80)]);
});

test("a deleted file given up over maxDeletedHeldBytes after it was read to its end is done once its records are durable: after a restart its .gz is not read again from the middle of a line (simulation seed 12686)", async () => {
  const c = collector({ maxDeletedHeldBytes: 10, scanIntervalMs: 100 });
  const live = join(podDir(c.root, "uid-capped"), "0.log");
  writeFileSync(live, cri("first") + cri("x1|", "stdout", "P"));
  c.start();
  c.h.autoDurable = false;
  expect(await waitFor(() => c.h.received.length === 1, 2000)).toBe(true);
  c.h.makeDurable();
  const r1 = `${live}.${rotationStamp()}`;
  renameSync(live, r1);
  writeFileSync(live, cri("x2") + cri("y"));
  expect(await waitFor(() => c.h.received.length === 3 && c.h.source.fileStatus().length === 1, 3000)).toBe(true);
  // Rotated with no successor yet: held open, draining. The kubelet compresses it: deleted, over the
  // cap, given up — read to its end, its records not durable yet.
  const r2 = `${live}.${rotationStamp()}`;
  renameSync(live, r2);
  gzipAway(r2);
  expect(await waitFor(() => c.h.source.counters.filesGivenUp === 1, 2000)).toBe(true);
  expect(c.h.source.counters.bytesLost).toBe(0);
  c.h.makeDurable();
  await c.h.stop();
  writeFileSync(live, cri("z"));
  const second = c.restart();
  expect(await waitFor(() => second.received.length >= 1, 3000)).toBe(true);
  await Bun.sleep(200);
  // Its checkpoint used to be dropped with it: the next process read the .gz whole, "x2" alone.
  expect(c.allMessages()).toEqual(["first", "x1|x2", "y", "z"]);
});

test("a rotated file read to its end before a stop and compressed while down is done: its .gz is not read again whole (simulation seed 610)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-drained"), "0.log");
  writeFileSync(live, criLines("d", 0, 3));
  c.start();
  expect(await waitFor(() => c.h.received.length === 3, 2000)).toBe(true);
  // Rotated; the runtime has not reopened yet: read to its end, still open (draining).
  const rotated = `${live}.${rotationStamp()}`;
  renameSync(live, rotated);
  expect(await waitFor(() => c.h.source.fileStatus()[0]?.state === "draining", 3000)).toBe(true);
  await Bun.sleep(100); // durable, checkpoints saved
  await c.h.stop();
  gzipAway(rotated);
  writeFileSync(live, criLines("e", 0, 2));
  const next = c.restart();
  expect(await waitFor(() => next.received.length >= 2, 3000)).toBe(true);
  await Bun.sleep(200);
  expect(next.messages()).toEqual(expectedMessages("e", 0, 2));
});

test("a kubelet keeping more rotated files than the eight done files remembered per path: after a restart the oldest .gz, read to its end, is known — not read whole again, nor the tail it begins with sent alone (simulation seed 51279)", async () => {
  const c = collector();
  const live = join(podDir(c.root, "uid-many-rotated"), "0.log");
  // Each file ends inside a line its successor finishes: file i holds "t<i-1>" then "h<i>|".
  writeFileSync(live, cri("h0|", "stdout", "P"));
  c.start();
  const rotated: string[] = [];
  for (let i = 1; i <= 10; i++) {
    const r = `${live}.${rotationStamp()}`;
    renameSync(live, r);
    rotated.push(r);
    writeFileSync(live, cri(`t${i - 1}`) + cri(`h${i}|`, "stdout", "P"));
    expect(await waitFor(() => c.h.received.length === i && c.h.source.fileStatus().length === 1, 3000)).toBe(true);
  }
  // containerLogMaxFiles: 10 — nine rotated files on disk: the oldest deleted, all but the newest compressed.
  unlinkSync(rotated[0] as string);
  for (const r of rotated.slice(1, -1)) gzipAway(r);
  await Bun.sleep(300); // listed, durable, saved
  await c.h.stop();
  appendFileSync(live, cri("t10"));
  const next = c.restart();
  expect(await waitFor(() => next.received.length >= 1, 3000)).toBe(true);
  await Bun.sleep(300);
  // The .gz of the second file had no done checkpoint left: it and every newer file were read whole
  // again ("t0" alone, its head's file gone, then nine duplicates).
  expect(next.messages()).toEqual(["h10|t10"]);
  expect(c.allMessages()).toEqual([...Array.from({ length: 10 }, (_, i) => `h${i}|t${i}`), "h10|t10"]);
});

const youngHistory = [
  { readFrom: "beginning", gzip: "never" },
  { readFrom: "end", gzip: "never" },
  { readFrom: "beginning", gzip: "while down" },
  { readFrom: "beginning", gzip: "before the first start" },
] as const;
for (const { readFrom, gzip } of youngHistory) {
  test(`a rotated file a first start left unread as history (readFrom: ${readFrom}, compressed ${gzip}), modified seconds before: a graceful restart does not take it for one rotated while down — neither it nor the live file is read whole again (simulation seed 77748)`, async () => {
    const c = collector({ readFrom });
    const live = join(podDir(c.root, `uid-young-history-${readFrom}-${gzip.replaceAll(" ", "-")}`), "0.log");
    // Before the first start: rotated inside a line, its head in the rotated file, its end in the live one.
    writeFileSync(live, cri("old") + cri("head|", "stdout", "P"));
    const rotated = `${live}.${rotationStamp()}`;
    renameSync(live, rotated);
    if (gzip === "before the first start") gzipAway(rotated);
    writeFileSync(live, cri("tail") + criLines("a", 0, 5));
    c.start();
    if (readFrom === "end") {
      await Bun.sleep(200); // opened at its end
      appendFileSync(live, criLines("a", 5, 10));
    }
    const firstRun = readFrom === "end" ? expectedMessages("a", 5, 10) : ["tail", ...expectedMessages("a", 0, 5)]; // history's head not read (docs/source.md)
    expect(await waitFor(() => c.h.received.length === firstRun.length, 2000)).toBe(true);
    await Bun.sleep(300); // durable, saved
    expect(c.h.messages()).toEqual(firstRun);
    await c.h.stop();
    if (gzip === "while down") gzipAway(rotated);
    appendFileSync(live, cri("b"));
    const next = c.restart();
    expect(await waitFor(() => next.messages().includes("b"), 3000)).toBe(true);
    await Bun.sleep(300);
    // Taken for a file the last run never saw, the rotated file was read whole, then the live file
    // from its first byte: "old", "head|tail" and every line of the first run again.
    expect(next.messages()).toEqual(["b"]);
    expect(next.source.counters.filesRecovered).toBe(0);
  });
}
