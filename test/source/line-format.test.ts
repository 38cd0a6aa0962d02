import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { detectFormat, parseCriLine, parseDockerLine } from "../../src/source/line-format.ts";
import { LineReader, type LineReaderCounters } from "../../src/source/line-reader.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import type { MergedLine } from "../../src/source/types.ts";
import { globToRegExp } from "../../src/source/glob.ts";
import { isRotatedName, parsePodLogPath } from "../../src/source/paths.ts";
import { truncateUtf8, utf8ByteLength } from "../../src/source/utf8.ts";

const enc = new TextEncoder();
const cri = (s: string) => {
  const b = enc.encode(s);
  return parseCriLine(b, 0, b.length);
};
const docker = (s: string) => {
  const b = enc.encode(s);
  return parseDockerLine(b, 0, b.length);
};

function reader(opts: Partial<{ format: "cri" | "docker" | "auto"; maxLineBytes: number }> = {}) {
  const counters: LineReaderCounters = { linesRead: 0, linesMalformed: 0, linesTruncated: 0 };
  const merger = new PartialMerger(opts.maxLineBytes ?? 1 << 20);
  const r = new LineReader(
    { partialKey: "uid/main/0", fileId: "1:1", format: opts.format ?? "auto", maxLineBytes: opts.maxLineBytes ?? 1 << 20, merger, counters },
    0,
  );
  return { r, counters, merger };
}

describe("CRI lines", () => {
  test("full, partial, tagged and empty lines", () => {
    expect(cri("2026-11-24T19:02:13.401245871Z stdout F hello world")).toEqual({
      timestamp: "2026-11-24T19:02:13.401245871Z",
      stream: "stdout",
      partial: false,
      content: "hello world",
    });
    expect(cri("2026-11-24T19:02:13.401245871Z stderr P part")?.partial).toBe(true);
    expect(cri("2026-11-24T19:02:15.230000000Z stdout F:x ok")?.content).toBe("ok");
    expect(cri("2026-11-24T19:02:15.120000000Z stdout F ")?.content).toBe("");
    expect(cri("2026-11-24T19:02:15.120000000Z stdout F")?.content).toBe("");
    expect(cri("2026-11-24T19:02:15+01:00 stdout F  leading space kept")?.content).toBe(" leading space kept");
  });
  test("malformed lines are refused, never thrown", () => {
    for (const bad of [
      "",
      "garbage",
      "2026-11-24T19:02:13Z stdin F x",
      "not-a-timestamp-at-all-really stdout F x",
      "2026-11-24T19:02:13.4Z stdout X x",
      "2026-11-24T19:02:13.4Z stdout FF x",
      "2026-11-24T19:02:13.4Z stdout",
      "\u0000\u0000\u0000\u0000",
    ]) {
      expect(cri(bad)).toBeNull();
    }
  });
  test("invalid UTF-8 is replaced", () => {
    const b = new Uint8Array([...enc.encode("2026-11-24T19:02:13.4Z stdout F a"), 0xff, 0xfe, 0x62]);
    expect(parseCriLine(b, 0, b.length)?.content).toBe("a\uFFFD\uFFFDb");
  });
});

describe("docker json-file lines", () => {
  test("full and partial, with escapes", () => {
    expect(docker('{"log":"hello \\"q\\" \\u00e9\\n","stream":"stderr","time":"2026-11-24T19:02:13.1Z"}')).toEqual({
      timestamp: "2026-11-24T19:02:13.1Z",
      stream: "stderr",
      partial: false,
      content: 'hello "q" é',
    });
    expect(docker('{"log":"no newline","stream":"stdout","time":"t"}')?.partial).toBe(true);
  });
  test("broken JSON or wrong fields are refused", () => {
    expect(docker('{"log":"x\\n","stream":"stdout"')).toBeNull();
    expect(docker('{"log":5,"stream":"stdout"}')).toBeNull();
    expect(docker('{"log":"x\\n","stream":"stdin"}')).toBeNull();
    expect(docker("[]")).toBeNull();
  });
  test("format detection", () => {
    const d = enc.encode('{"log":"x"}');
    expect(detectFormat(d, 0, d.length)).toBe("docker");
    const c = enc.encode("2026-11-24T19:02:13Z stdout F x");
    expect(detectFormat(c, 0, c.length)).toBe("cri");
  });
});

describe("line reader", () => {
  test("the CRI fixture: partials merged per stream with stderr interleaved", () => {
    const bytes = readFileSync(join(import.meta.dir, "../fixtures/cri-sample.log"));
    const { r, counters } = reader();
    const out: MergedLine[] = [];
    r.feed(bytes, 0, out);
    expect(out.map((l) => [l.stream, l.message])).toEqual([
      ["stdout", "go: downloading github.com/stretchr/testify v1.10.0"],
      ["stderr", "warning: GOFLAGS is set"],
      ["stderr", "compile: 3 packages"],
      ["stdout", '{"level":"info","msg":"a long structured line that the runtime split at its 16 KiB boundary","step":"compile"}'],
      ["stdout", ""],
      ["stdout", "ok  \texample.com/ci/build\t0.412s"],
    ]);
    // The merged line keeps the timestamp of its first fragment.
    expect(out[3]?.timestamp).toBe("2026-11-24T19:02:14.000000001Z");
    expect(counters.linesRead).toBe(7);
    expect(r.lineEnd).toBe(bytes.length);
  });

  test("bytes split anywhere give the same lines; the last unterminated line waits", () => {
    const text = "2026-11-24T19:02:13.1Z stdout F one\n2026-11-24T19:02:13.2Z stdout F twö\n2026-11-24T19:02:13.3Z stdout F thr";
    const bytes = enc.encode(text);
    for (let cut = 1; cut < bytes.length; cut += 7) {
      const { r } = reader();
      const out: MergedLine[] = [];
      r.feed(bytes.subarray(0, cut), 0, out);
      r.feed(bytes.subarray(cut), 0, out);
      expect(out.map((l) => l.message)).toEqual(["one", "twö"]);
      expect(r.carryBytes).toBe(enc.encode("2026-11-24T19:02:13.3Z stdout F thr").length);
      r.finish(0, out);
      expect(out.map((l) => l.message)).toEqual(["one", "twö", "thr"]);
      expect(r.lineEnd).toBe(bytes.length);
    }
  });

  test("malformed lines and binary garbage are counted and skipped; the rest still comes", () => {
    const { r, counters } = reader({ format: "cri" });
    const out: MergedLine[] = [];
    const garbage = new Uint8Array(300).map((_, i) => (i * 37) % 256).filter((b) => b !== 10);
    r.feed(enc.encode("2026-11-24T19:02:13.1Z stdout F a\n"), 0, out);
    r.feed(garbage, 0, out);
    r.feed(enc.encode("\n\u0000\u0000\u0000\n2026-11-24T19:02:13.2Z stdout F b\n"), 0, out);
    expect(out.map((l) => l.message)).toEqual(["a", "b"]);
    expect(counters.linesMalformed).toBe(2);
  });

  test("a physical line longer than maxLineBytes is cut, counted, and the next line survives", () => {
    const { r, counters } = reader({ format: "cri", maxLineBytes: 1024 });
    const out: MergedLine[] = [];
    const huge = "2026-11-24T19:02:13.1Z stdout F " + "y".repeat(3_000_000) + "\n";
    const bytes = enc.encode(huge + "2026-11-24T19:02:13.2Z stdout F after\n");
    for (let i = 0; i < bytes.length; i += 65536) r.feed(bytes.subarray(i, i + 65536), 0, out);
    expect(out.length).toBe(2);
    expect(out[0]?.message.length).toBe(1024);
    expect(out[0]?.truncated).toBe(true);
    expect(out[1]?.message).toBe("after");
    expect(counters.linesTruncated).toBe(1);
    expect(r.lineEnd).toBe(bytes.length);
  });

  test("merged partials beyond maxLineBytes are truncated without growing memory", () => {
    const { r, counters, merger } = reader({ format: "cri", maxLineBytes: 2048 });
    const out: MergedLine[] = [];
    for (let i = 0; i < 100; i++) r.feed(enc.encode(`2026-11-24T19:02:13.1Z stdout P ${"z".repeat(1000)}\n`), 0, out);
    expect(out.length).toBe(0);
    expect(merger.size).toBe(1);
    r.feed(enc.encode("2026-11-24T19:02:13.1Z stdout F end\n"), 0, out);
    expect(out[0]?.message.length).toBe(2048);
    expect(counters.linesTruncated).toBe(1);
  });

  test("a pending partial pins its file offset; a timeout flushes it whole", () => {
    const merger = new PartialMerger(1 << 20);
    expect(merger.add("k", "stdout", "t1", "ab", true, "f", 100, 0)).toBeNull();
    expect(merger.add("k", "stderr", "t2", "err", false, "f", 150, 0)?.message).toBe("err");
    expect(merger.pendingStart("f")).toBe(100);
    expect(merger.flush(1000, 5000)).toEqual([]);
    const flushed = merger.flush(6000, 5000);
    expect(flushed).toEqual([{ timestamp: "t1", stream: "stdout", message: "ab", truncated: false, fileId: "f" }]);
    expect(merger.pendingStart("f")).toBeNull();
  });

  test("partials of one container continue across files (rotation)", () => {
    const merger = new PartialMerger(1 << 20);
    merger.add("uid/main/0", "stdout", "t1", "first half ", true, "old", 900, 0);
    const merged = merger.add("uid/main/0", "stdout", "t2", "second half", false, "new", 0, 0);
    expect(merged?.message).toBe("first half second half");
    expect(merged?.timestamp).toBe("t1");
  });

  test("a line spanning files pins each file at its first fragment there, until it completes", () => {
    const merger = new PartialMerger(1 << 20);
    merger.add("uid/main/0", "stdout", "t1", "a", true, "old", 900, 0);
    merger.add("uid/main/0", "stdout", "t2", "b", true, "old", 950, 0); // same file: pin unchanged
    merger.add("uid/main/0", "stdout", "t3", "c", true, "new", 0, 0);
    merger.add("uid/main/0", "stdout", "t4", "d", true, "new", 40, 0);
    expect(merger.pendingStart("old")).toBe(900);
    expect(merger.pendingStart("new")).toBe(0);
    expect(merger.pinned("old")).toBe(true);
    expect(merger.takeReleased()).toEqual([]);
    const merged = merger.add("uid/main/0", "stdout", "t5", "e", false, "new", 80, 0);
    expect(merged?.message).toBe("abcde");
    expect(merger.pinned("old")).toBe(false);
    expect(merger.pendingStart("new")).toBeNull();
    expect(merger.takeReleased().sort()).toEqual(["new", "old"]);
    expect(merger.takeReleased()).toEqual([]);
  });

  test("a flushed line spanning files releases every pin and names the head's file", () => {
    const merger = new PartialMerger(1 << 20);
    merger.add("k", "stderr", "t1", "head ", true, "old", 10, 1000);
    merger.add("k", "stderr", "t2", "tail", true, "new", 0, 1500);
    expect(merger.nextDue(5000)).toBe(6500); // counted from the last fragment
    expect(merger.flush(6000, 5000)).toEqual([]);
    const [line] = merger.flush(6500, 5000);
    expect(line).toEqual({ timestamp: "t1", stream: "stderr", message: "head tail", truncated: false, fileId: "old" });
    expect(merger.takeReleased().sort()).toEqual(["new", "old"]);
    expect(merger.size).toBe(0);
  });
  test("a resume point inside an overlap says where each stream stands: the other stream inside a line emitted since is skipped to its last fragment here", () => {
    const merger = new PartialMerger(1 << 20);
    merger.add("k", "stdout", "t1", "a1", true, "f", 0, 0);
    merger.add("k", "stderr", "t2", "b1", true, "f", 10, 0); // begins inside stdout's line
    expect(merger.resumeAt("k", "f", 30)).toEqual({ offset: 0, streams: { stdout: "between", stderr: "between" } });
    expect(merger.add("k", "stdout", "t3", "a2", false, "f", 20, 0)?.message).toBe("a1a2");
    // stderr's line is pending, stdout's (emitted) went on past its first fragment until offset 20.
    expect(merger.resumeAt("k", "f", 30)).toEqual({ offset: 10, streams: { stdout: 21, stderr: "between" } });
    expect(merger.add("k", "stderr", "t4", "b2", true, "g", 0, 0)).toBeNull();
    // In the successor, stderr's line began in the file before.
    expect(merger.resumeAt("k", "g", 40)).toEqual({ offset: 0, streams: { stdout: "between", stderr: "inside" } });
    // Resumed where stderr stood between lines: the line brought from an earlier file is dropped.
    merger.resumed("k", "g", 0, { stdout: "between", stderr: "between" }, 0);
    expect(merger.size).toBe(0);
    expect(merger.takeReleased().sort()).toEqual(["f", "g"]);
  });

  test("resumed inside a line delivered already: its rest is dropped up to its F, or up to where its fragments here ended (a flush)", () => {
    const merger = new PartialMerger(1 << 20);
    merger.resumed("k", "f", 10, { stdout: 21, stderr: "between" }, 0);
    expect(merger.add("k", "stdout", "t1", "rest ", true, "f", 10, 0)).toBeNull();
    expect(merger.add("k", "stderr", "t2", "b1", true, "f", 15, 0)).toBeNull();
    // stderr's line began inside stdout's delivered one: a checkpoint at it skips that line's rest.
    expect(merger.resumeAt("k", "f", 20)).toEqual({ offset: 15, streams: { stdout: Number.MAX_SAFE_INTEGER, stderr: "between" } });
    expect(merger.add("k", "stdout", "t3", "end", false, "f", 20, 0)).toBeNull(); // its F: nothing emitted
    expect(merger.resumeAt("k", "f", 30)).toEqual({ offset: 15, streams: { stdout: 21, stderr: "between" } });
    expect(merger.add("k", "stdout", "t4", "next", false, "f", 30, 0)?.message).toBe("next");
    expect(merger.pendingStart("f")).toBe(15);
    // Its last fragment here was at 20 (a flush ended it there): the next one begins a line.
    const flushed = new PartialMerger(1 << 20);
    flushed.resumed("k", "f", 10, { stdout: 21, stderr: "between" }, 0);
    expect(flushed.add("k", "stdout", "t1", "more of it", true, "f", 20, 0)).toBeNull();
    expect(flushed.add("k", "stdout", "t2", "after", false, "f", 40, 0)?.message).toBe("after");
    expect(flushed.size).toBe(0);
  });
  test("lines ended by a gap (a file given up unread) take no more fragments and keep their pins until handed over", () => {
    const merger = new PartialMerger(1 << 20);
    merger.add("uid/main/0", "stdout", "t1", "head ", true, "old", 10, 0);
    merger.add("uid/main/0", "stderr", "t2", "err ", true, "old", 20, 0);
    merger.add("uid/wait/0", "stdout", "t3", "other ", true, "w", 30, 0);
    merger.endLines("uid/main/0");
    expect(merger.pendingStart("old")).toBe(10);
    expect(merger.size).toBe(3);
    expect(merger.add("uid/main/0", "stdout", "t4", "next", false, "new", 0, 0)?.message).toBe("next");
    expect(merger.takeEnded()).toEqual([
      { timestamp: "t1", stream: "stdout", message: "head ", truncated: false, fileId: "old" },
      { timestamp: "t2", stream: "stderr", message: "err ", truncated: false, fileId: "old" },
    ]);
    expect(merger.pinned("old")).toBe(false);
    expect(merger.takeReleased()).toEqual(["old"]);
    expect(merger.pendingStart("w")).toBe(30); // another container's line goes on
    expect(merger.takeEnded()).toEqual([]);
  });
});

describe("paths and globs", () => {
  test("pod log paths", () => {
    expect(parsePodLogPath("argo_ci-build-7xk2p-compile-3470861234_5f0c9a7e-2b1d-4c8e-9f3a-7d6e5c4b3a21/main/0.log")).toEqual({
      namespace: "argo",
      podName: "ci-build-7xk2p-compile-3470861234",
      podUid: "5f0c9a7e-2b1d-4c8e-9f3a-7d6e5c4b3a21",
      container: "main",
      restart: 0,
    });
    expect(parsePodLogPath("kube-system_etcd-node1_6c1a8d0b3e0f6a2b/etcd/12.log")?.restart).toBe(12);
    expect(parsePodLogPath("argo_pod_uid/main/0.log.20261124-190213")).toBeNull();
    expect(parsePodLogPath("argo_pod_uid/main/0.log.20261124-190213.gz")).toBeNull();
    expect(parsePodLogPath("argo_pod_uid/main/0.log.tmp")).toBeNull();
    expect(parsePodLogPath("nounderscores/main/0.log")).toBeNull();
    expect(parsePodLogPath("a_b_c/0.log")).toBeNull();
    expect(isRotatedName("0.log.20261124-190213.gz")).toBe(true);
  });
  test("globs", () => {
    expect(globToRegExp("**/*.log").test("ns_p_u/main/0.log")).toBe(true);
    expect(globToRegExp("**/*.log").test("0.log")).toBe(true);
    expect(globToRegExp("kube-system_*/**").test("kube-system_x_y/c/0.log")).toBe(true);
    expect(globToRegExp("kube-system_*/**").test("argo_x_y/c/0.log")).toBe(false);
    expect(globToRegExp("*/{wait,init}/*.log").test("a_b_c/wait/0.log")).toBe(true);
    expect(globToRegExp("*/{wait,init}/*.log").test("a_b_c/main/0.log")).toBe(false);
  });
  test("utf8 helpers", () => {
    expect(utf8ByteLength("aé✓😀")).toBe(1 + 2 + 3 + 4);
    expect(truncateUtf8("aé✓😀", 6)).toBe("aé✓");
    expect(truncateUtf8("aé✓😀", 9)).toBe("aé✓");
    expect(truncateUtf8("aé✓😀", 10)).toBe("aé✓😀");
  });
});
