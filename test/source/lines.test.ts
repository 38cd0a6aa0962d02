// Lines through real files (issue 4 §5): long lines, partials, garbage, UTF-8, docker json-file,
// an unterminated last line.
import { expect, test } from "bun:test";
import { appendFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cri, criLines, expectedMessages, harnessPerTest, podDir, rotationStamp, ts, waitFor } from "./harness.ts";

const harness = harnessPerTest();

const MiB = 1 << 20;

test("a 3 MB line split by the runtime into 16 KiB partials: one record of maxLineBytes, counted truncated", async () => {
  const h = harness();
  const path = join(podDir(h.root, "uid-big"), "0.log");
  const line = Array.from({ length: 3_000_000 / 10 }, (_, i) => String(i % 1e9).padStart(10, "0")).join("");
  let text = cri("before");
  for (let i = 0; i < line.length; i += 16 * 1024) {
    const last = i + 16 * 1024 >= line.length;
    text += cri(line.slice(i, i + 16 * 1024), "stdout", last ? "F" : "P");
  }
  text += cri("after");
  writeFileSync(path, text);
  h.start();
  expect(await waitFor(() => h.received.length === 3, 5000)).toBe(true);
  expect(h.received[0]!.message).toBe("before");
  expect(h.received[1]!.message).toBe(line.slice(0, MiB)); // the first maxLineBytes bytes
  expect(h.received[1]!.truncated).toBe(true);
  expect(h.received[2]!.message).toBe("after");
  expect(h.source.counters.linesTruncated).toBe(1);
});

test("a 3 MB physical line (no runtime split) is cut at maxLineBytes; the file goes on", async () => {
  const h = harness({ maxLineBytes: "64KiB" });
  const path = join(podDir(h.root, "uid-phys"), "0.log");
  writeFileSync(path, cri("x".repeat(3_000_000)) + cri("next"));
  h.start();
  expect(await waitFor(() => h.received.length === 2, 5000)).toBe(true);
  expect(h.received[0]!.message).toBe("x".repeat(64 * 1024));
  expect(h.received[0]!.truncated).toBe(true);
  expect(h.received[1]!.message).toBe("next");
  expect(h.source.counters.linesTruncated).toBe(1);
});

test("interleaved stdout/stderr partials merge per stream", async () => {
  const h = harness();
  const path = join(podDir(h.root, "uid-int"), "0.log");
  writeFileSync(
    path,
    cri("out-1 ", "stdout", "P") +
      cri("err-1 ", "stderr", "P") +
      cri("out-2 ", "stdout", "P") +
      cri("err-2", "stderr", "F") +
      cri("out-3", "stdout", "F"),
  );
  h.start();
  expect(await waitFor(() => h.received.length === 2, 2000)).toBe(true);
  expect(h.received.map((r) => [r.stream, r.message])).toEqual([
    ["stderr", "err-1 err-2"],
    ["stdout", "out-1 out-2 out-3"],
  ]);
});

test("a partial never completed is flushed whole after partialFlushMs and counted", async () => {
  const h = harness({ partialFlushMs: 300 });
  const path = join(podDir(h.root, "uid-never"), "0.log");
  writeFileSync(path, cri("never ", "stdout", "P") + cri("completed", "stdout", "P"));
  h.start();
  await Bun.sleep(100);
  expect(h.received.length).toBe(0);
  expect(await waitFor(() => h.received.length === 1, 3000)).toBe(true);
  expect(h.received[0]!.message).toBe("never completed");
  expect(h.source.counters.partialFlushTimeouts).toBe(1);
  // The checkpoint is no longer pinned once the flushed line is durable.
  expect(await waitFor(() => h.source.fileStatus()[0]!.lag === 0, 2000)).toBe(true);
});

test("a fragment read after another file's hand-over waited for room in the ring is timed from when it was read: its line is not flushed before its continuation comes (simulation seed 437)", async () => {
  const h = harness({ partialFlushMs: 1000 });
  const first = join(podDir(h.root, "uid-slow"), "0.log");
  writeFileSync(first, cri("a0"));
  h.start();
  expect(await waitFor(() => h.received.length === 1, 2000)).toBe(true);
  // A second pod's file, opened after the first: read after it in each turn.
  const second = join(podDir(h.root, "uid-later"), "0.log");
  writeFileSync(second, cri("b0"));
  expect(await waitFor(() => h.received.length === 2, 2000)).toBe(true);
  h.gate(); // the ring is full: the first file's next hand-over waits
  const emits = h.emits;
  appendFileSync(first, cri("a1"));
  expect(await waitFor(() => h.emits > emits, 2000)).toBe(true);
  appendFileSync(second, cri("head|", "stdout", "P"));
  await Bun.sleep(700); // the turn waits on the ring, most of partialFlushMs
  h.ungate(); // and reads the second file now
  await Bun.sleep(400);
  appendFileSync(first, cri("a2")); // a turn, and a look at the pending line: 400 ms after it was read
  await Bun.sleep(200);
  appendFileSync(second, cri("tail"));
  expect(await waitFor(() => h.received.some((r) => r.message.endsWith("tail")), 2000)).toBe(true);
  await Bun.sleep(100);
  expect(h.messages((r) => r.podUid === "uid-later")).toEqual(["b0", "head|tail"]);
  expect(h.source.counters.partialFlushTimeouts).toBe(0);
});

test("a partial line whose continuation waits in the successor while the ring is full is not flushed by partialFlushMs: one record (issue 17, defect 1)", async () => {
  const h = harness({ partialFlushMs: 300 });
  const live = join(podDir(h.root, "uid-full"), "0.log");
  writeFileSync(live, criLines("a", 0, 3) + cri("head|", "stdout", "P"));
  h.gate(); // the ring is full from the start: the first hand-over waits
  h.start();
  expect(await waitFor(() => h.emits === 1, 2000)).toBe(true);
  // The runtime rotates inside the line; its rest is in the successor, unread while the ring is full.
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, cri("tail") + criLines("b", 0, 2));
  await Bun.sleep(1200); // four timeouts' worth
  h.ungate();
  expect(await waitFor(() => h.messages().includes("b 1"), 3000)).toBe(true);
  expect(h.messages()).toEqual([...expectedMessages("a", 0, 3), "head|tail", ...expectedMessages("b", 0, 2)]);
  expect(h.source.counters.partialFlushTimeouts).toBe(0);
});

test("binary garbage and NUL bytes are counted as malformed and skipped; invalid UTF-8 is replaced", async () => {
  const h = harness();
  const path = join(podDir(h.root, "uid-bin"), "0.log");
  const garbage = new Uint8Array(4096);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) % 256 === 10 ? 0 : (i * 7919) % 256;
  const badUtf8 = Buffer.concat([Buffer.from(`${ts()} stdout F bad `), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(" end\n")]);
  writeFileSync(path, Buffer.concat([Buffer.from(cri("ok-1")), garbage, Buffer.from("\n"), Buffer.alloc(300, 0), Buffer.from("\n"), badUtf8, Buffer.from(cri("ok-2"))]));
  h.start();
  expect(await waitFor(() => h.received.length === 3, 2000)).toBe(true);
  expect(h.received[0]!.message).toBe("ok-1");
  expect(h.received[1]!.message).toBe("bad \uFFFD\uFFFD\uFFFD end");
  expect(h.received[2]!.message).toBe("ok-2");
  expect(h.source.counters.linesMalformed).toBe(2);
});

test("docker json-file: escapes, 16 KiB splits merged, format detected per file", async () => {
  const h = harness();
  const dockerPath = join(podDir(h.root, "uid-docker"), "0.log");
  const criPath = join(podDir(h.root, "uid-cri"), "0.log");
  const long = "y".repeat(40 * 1024);
  const time = "2026-11-25T10:00:00.123456789Z";
  let text = JSON.stringify({ log: 'tab\there "quoted" \\ back \u00e9 \ud83d\ude00\n', stream: "stdout", time }) + "\n";
  for (let i = 0; i < long.length; i += 16 * 1024) {
    const chunk = long.slice(i, i + 16 * 1024);
    const last = i + 16 * 1024 >= long.length;
    text += JSON.stringify({ log: last ? chunk + "\n" : chunk, stream: "stderr", time }) + "\n";
  }
  writeFileSync(dockerPath, text);
  writeFileSync(criPath, cri("a cri line"));
  h.start();
  expect(await waitFor(() => h.received.length === 3, 2000)).toBe(true);
  const docker = h.received.filter((r) => r.podUid === "uid-docker");
  expect(docker[0]!.message).toBe('tab\there "quoted" \\ back \u00e9 \ud83d\ude00');
  expect(docker[0]!.timestamp).toBe(time);
  expect(docker[1]!.message).toBe(long);
  expect(docker[1]!.stream).toBe("stderr");
  expect(h.messages((r) => r.podUid === "uid-cri")).toEqual(["a cri line"]);
});

test("a last line without \\n waits until completed, or until its file is rotated away", async () => {
  const h = harness();
  const d = podDir(h.root, "uid-nl");
  const live = join(d, "0.log");
  writeFileSync(live, cri("one") + `${ts()} stdout F wai`);
  h.start();
  expect(await waitFor(() => h.received.length === 1, 2000)).toBe(true);
  await Bun.sleep(200);
  expect(h.received.length).toBe(1);
  appendFileSync(live, "ting\n" + `${ts()} stdout F cut short`);
  expect(await waitFor(() => h.received.length === 2, 2000)).toBe(true);
  expect(h.received[1]!.message).toBe("waiting");
  // Rotated away without its "\n": the line is complete once the new file has bytes.
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, criLines("new", 0, 3));
  expect(await waitFor(() => h.received.length === 6, 3000)).toBe(true);
  expect(h.messages().slice(2)).toEqual(["cut short", ...expectedMessages("new", 0, 3)]);
});

test("lines cut by every read slice, some longer than half a slice: each arrives whole and once, in order (the unfinished line is carried in the read buffer)", async () => {
  const h = harness({ readSliceBytes: 4096 });
  const path = join(podDir(h.root, "uid-slices"), "0.log");
  // Lengths from 1 byte to ~3 slices: a line's end lands at every offset of a slice; lines longer
  // than 2 KiB make the carry too large to put in front of the next read (joined the other way).
  const messages = Array.from({ length: 400 }, (_, i) => `m${i}:` + "abcdefghij".repeat(((i * 7919) % 1200) + (i % 13)));
  writeFileSync(path, messages.map((m) => cri(m)).join(""));
  h.start();
  expect(await waitFor(() => h.received.length === messages.length, 5000)).toBe(true);
  expect(h.messages()).toEqual(messages);
  expect(messages.some((m) => m.length > 2048) && messages.some((m) => m.length < 100)).toBe(true);
});
