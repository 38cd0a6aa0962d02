// The benchmark's own instruments must be right before their figures mean anything: the counting
// sink's missing/duplicate/foreign counts, its wire contract, and the generator's determinism.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createCountingSink } from "./counting-sink.ts";
import { criTimestamp, LineMaker, planNode, writeBacklog } from "./generator.ts";

const KEY = "k-123";
const PATH = "http://sink/api/messenger/v1/logs/ingest/batch";

function rec(stream: number, n: number, timestamp = "2026-11-25T10:00:00.000000001Z"): string {
  return JSON.stringify({ orgUUID: "o", runUUID: "r", pipeUUID: "p", nodeID: "n", podName: "pod", containerName: "main", timestamp, stream: "stdout", message: `seq=${stream}:${n} filler "quoted" text` });
}

function post(body: string | Uint8Array, headers: Record<string, string> = {}): Request {
  return new Request(PATH, { method: "POST", body, headers: { "content-type": "application/json", "x-pipekit-api-key": KEY, ...headers } });
}

describe("counting sink", () => {
  test("recordStart: records of another agent, beginning with its own first key, are counted as events", async () => {
    const sink = createCountingSink({ apiKey: KEY });
    await sink.fetch(new Request("http://sink/control", { method: "POST", body: JSON.stringify({ expected: [2], recordStart: '{"timestamp"' }) }));
    const fb = (msg: string) => JSON.stringify({ timestamp: "2026-11-25T10:00:00.000000001Z", stream: "stdout", _p: "F", message: msg });
    expect((await sink.fetch(post(`[${[fb("seq=0:0 a"), fb("seq=0:1 b"), fb("no mark")].join(",")}]`))).status).toBe(200);
    const s = sink.stats();
    expect(s.events).toBe(3);
    expect(s.distinct).toBe(2);
    expect(s.foreign).toBe(1);
    expect(s.missing).toBe(0);
  });

  test("counts distinct, duplicate, missing and foreign records against the expectation", async () => {
    const sink = createCountingSink({ apiKey: KEY });
    await sink.fetch(new Request("http://sink/control", { method: "POST", body: JSON.stringify({ expected: [3, 2] }) }));
    expect((await sink.fetch(post(`[${[rec(0, 0), rec(0, 1), rec(1, 0)].join(",")}]`))).status).toBe(200);
    // a duplicate, a record beyond the expectation, a record of an unknown stream, one without a mark
    const other = JSON.stringify({ orgUUID: "o", runUUID: "r", pipeUUID: "p", nodeID: "n", podName: "pod", containerName: "main", timestamp: "t", stream: "stdout", message: "no mark" });
    expect((await sink.fetch(post(`[${[rec(0, 1), rec(0, 9), rec(7, 0), other].join(",")}]`))).status).toBe(200);
    const s = sink.stats();
    expect(s.events).toBe(7);
    expect(s.distinct).toBe(3);
    expect(s.duplicates).toBe(1);
    expect(s.foreign).toBe(3);
    expect(s.missing).toBe(2); // 0:2 and 1:1
    expect(s.completeAt).toBeNull();
    await sink.fetch(post(`[${[rec(0, 2), rec(1, 1)].join(",")}]`));
    expect(sink.stats().missing).toBe(0);
    expect(sink.stats().completeAt).not.toBeNull();
  });

  test("speaks the wire contract: key, path, method, JSON array, gzip", async () => {
    const sink = createCountingSink({ apiKey: KEY });
    expect((await sink.fetch(post(`[${rec(0, 0)}]`, { "x-pipekit-api-key": "wrong" }))).status).toBe(401);
    expect((await sink.fetch(new Request("http://sink/api/other", { method: "POST", body: "[]" }))).status).toBe(404);
    expect((await sink.fetch(new Request(PATH, { method: "GET" }))).status).toBe(405);
    expect((await sink.fetch(post(`{"not":"an array"}`))).status).toBe(400);
    expect((await sink.fetch(post(`[1,2]`))).status).toBe(400);
    expect((await sink.fetch(post(new Uint8Array([1, 2, 3]), { "content-encoding": "gzip" }))).status).toBe(400);
    const gz = gzipSync(`[${rec(0, 0)},${rec(0, 1)}]`);
    expect((await sink.fetch(post(new Uint8Array(gz), { "content-encoding": "gzip" }))).status).toBe(200);
    const s = sink.stats();
    expect(s.gzipRequests).toBe(2);
    expect(s.distinct).toBe(2);
    expect(s.bytesWire).toBeGreaterThan(0);
    expect(s.byStatus).toEqual({ "200": 1, "400": 3, "401": 1, "404": 1, "405": 1 });
  });

  test("injected 503s accept nothing; latency is acknowledgement time minus the record's timestamp", async () => {
    const sink = createCountingSink({ apiKey: KEY, failRate: 1 });
    expect((await sink.fetch(post(`[${rec(0, 0)}]`))).status).toBe(503);
    expect(sink.stats().events).toBe(0);
    const timed = createCountingSink({ apiKey: KEY, latency: true });
    const ts = criTimestamp(Date.now() - 250);
    await timed.fetch(post(`[${rec(0, 0, ts)}]`));
    const lat = timed.stats().latency!;
    expect(lat.count).toBe(1);
    expect(lat.p50).toBeGreaterThanOrEqual(249);
    expect(lat.p50).toBeLessThan(1000);
  });
});

describe("generator", () => {
  test("the same seed writes the same bytes; messages carry stream and sequence and have the asked size", () => {
    const a = mkdtempSync(join(tmpdir(), "gen-a-"));
    const b = mkdtempSync(join(tmpdir(), "gen-b-"));
    try {
      const pa = planNode({ dir: a, pods: 3, seed: 7 });
      const pb = planNode({ dir: b, pods: 3, seed: 7 });
      writeBacklog(pa, 100);
      writeBacklog(pb, 100);
      for (let i = 0; i < 3; i++) expect(readFileSync(pa.streams[i]!.path, "utf8")).toBe(readFileSync(pb.streams[i]!.path, "utf8"));
      expect(pa.streams[0]!.path.replace(a, "")).toBe(pb.streams[0]!.path.replace(b, ""));
      const lines = readFileSync(pa.streams[2]!.path, "utf8").trimEnd().split("\n");
      expect(lines).toHaveLength(100);
      expect(lines[42]).toMatch(/^2026-11-25T10:00:00\.\d{9}Z std(out|err) F seq=2:42 /);
      const maker = new LineMaker(pa);
      expect(Buffer.byteLength(maker.message(2, 42))).toBe(200);
      const pods = JSON.parse(readFileSync(pa.podsFile, "utf8"));
      expect(pods.kind).toBe("PodList");
      expect(pods.items[0].metadata.labels["workflows.pipekit.io/run_uuid"]).toBeTruthy();
    } finally {
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
  });
});
