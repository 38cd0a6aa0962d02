// The chaos run's writer and its oracle: kubelet-style rotation on disk, and a tracker that really
// tells missing, duplicated, damaged and misattributed events apart (a checker that cannot fail
// would make the chaos run meaningless).
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { DeliveryTracker, parseMessageId, RotatingWriter } from "../support/rotating-writer.ts";

const dir = mkdtempSync(join(tmpdir(), "pipekit-writer-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("rotates the kubelet way: stamped renames, gzip of older ones, at most maxFiles; every event in exactly one file", () => {
  const w = new RotatingWriter({ root: join(dir, "pods"), podsFile: join(dir, "pods.json"), seed: 3, pods: 1, containers: ["main"], rotateBytes: 8 * 1024, maxFiles: 4 });
  w.write(2000);
  w.close();
  const cdir = w.streams[0]!.dir;
  const names = readdirSync(cdir).sort();
  expect(names.length).toBeLessThanOrEqual(4);
  expect(names).toContain("0.log");
  for (const n of names.filter((n) => n !== "0.log")) expect(n).toMatch(/^0\.log\.\d{8}-\d{6}(\.gz)?$/);
  const plain = names.filter((n) => /^0\.log\.\d{8}-\d{6}$/.test(n));
  expect(plain.length).toBe(1); // only the newest rotated file stays uncompressed
  expect(w.stats.rotations).toBeGreaterThan(10);
  expect(w.stats.deleted).toBe(w.stats.rotations - 3);
  // What remains on disk: consecutive sequences, each once, ending with the last one written.
  const seqs: number[] = [];
  for (const n of names.sort((a, b) => (a === "0.log" ? 1 : b === "0.log" ? -1 : a < b ? -1 : 1))) {
    const raw = readFileSync(join(cdir, n));
    const text = (n.endsWith(".gz") ? gunzipSync(raw) : raw).toString();
    const merged = new Map<string, string>();
    for (const line of text.split("\n").filter(Boolean)) {
      const [, stream, tag, ...rest] = line.split(" ");
      const content = rest.join(" ");
      const prev = merged.get(stream!) ?? "";
      if (tag === "P") merged.set(stream!, prev + content);
      else {
        merged.delete(stream!);
        const id = parseMessageId(prev + content);
        if (id) seqs.push(id.seq);
      }
    }
  }
  const sorted = [...seqs].sort((a, b) => a - b);
  expect(new Set(seqs).size).toBe(seqs.length);
  expect(sorted[sorted.length - 1]).toBe(w.written()[0]! - 1);
  for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBe(1); // no gap within what is kept
});

test("the tracker counts missing, duplicated (per epoch), corrupt and misattributed events", () => {
  const w = new RotatingWriter({ root: join(dir, "pods2"), podsFile: join(dir, "pods2.json"), seed: 9, pods: 2, containers: ["main"], rotateBytes: 1 << 20 });
  w.write(100);
  w.close();
  const rec = (id: number, seq: number) => ({ message: w.message(id, seq), podName: w.streams[id]!.pod.name, containerName: "main" });
  const t = new DeliveryTracker(w);
  const all: ReturnType<typeof rec>[] = [];
  w.written().forEach((n, id) => {
    for (let s = 0; s < n; s++) all.push(rec(id, s));
  });
  const missingOne = all.filter((r) => r.message !== w.message(1, 3));
  t.add(missingOne.slice(0, 50), 0);
  t.add(missingOne.slice(50), 1);
  t.add([rec(0, 0), rec(0, 1)], 1); // duplicates after crash 1
  t.add([rec(0, 0)], 2); // and again after crash 2
  t.add([{ ...rec(0, 2), message: w.message(0, 2) + "x" }], 2); // damaged content
  t.add([{ ...rec(0, 4), podName: "someone-else" }], 2); // a duplicate with the wrong pod
  expect(t.missing()).toEqual({ count: 1, examples: ["c1:3"] });
  expect(t.duplicatesByEpoch).toEqual([0, 2, 2]);
  expect(t.duplicateDetail[1]!.fromEarlierEpoch).toBe(2);
  expect(t.corrupt).toBe(1);
  expect(t.misattributed).toBe(1);
  expect(t.distinct()).toBe(all.length - 1);
});
