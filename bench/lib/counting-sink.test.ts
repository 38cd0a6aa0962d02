// The benchmark's own instruments must be right before their figures mean anything: the counting
// sink's missing/duplicate/foreign counts, its wire contract, and the generator's determinism.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createCountingSink } from "./counting-sink.ts";
import { SinkLedger } from "./sink-ledger.ts";
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
    const s = (await sink.stats());
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
    const s = (await sink.stats());
    expect(s.events).toBe(7);
    expect(s.distinct).toBe(3);
    expect(s.duplicates).toBe(1);
    expect(s.foreign).toBe(3);
    expect(s.missing).toBe(2); // 0:2 and 1:1
    expect(s.completeAt).toBeNull();
    await sink.fetch(post(`[${[rec(0, 2), rec(1, 1)].join(",")}]`));
    expect((await sink.stats()).missing).toBe(0);
    expect((await sink.stats()).completeAt).not.toBeNull();
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
    const s = (await sink.stats());
    expect(s.gzipRequests).toBe(2);
    expect(s.distinct).toBe(2);
    expect(s.bytesWire).toBeGreaterThan(0);
    expect(s.byStatus).toEqual({ "200": 1, "400": 3, "401": 1, "404": 1, "405": 1 });
  });

  test("injected 503s accept nothing; latency is acknowledgement time minus the record's timestamp", async () => {
    const sink = createCountingSink({ apiKey: KEY, failRate: 1 });
    expect((await sink.fetch(post(`[${rec(0, 0)}]`))).status).toBe(503);
    expect((await sink.stats()).events).toBe(0);
    const timed = createCountingSink({ apiKey: KEY, latency: true });
    const ts = criTimestamp(Date.now() - 250);
    await timed.fetch(post(`[${rec(0, 0, ts)}]`));
    const lat = (await timed.stats()).latency!;
    expect(lat.count).toBe(1);
    expect(lat.p50).toBeGreaterThanOrEqual(249);
    expect(lat.p50).toBeLessThan(1000);
  });
});

/** Nice values of this process's threads (/proc/self/task/<tid>/stat, field 19). */
function threadNiceValues(): number[] {
  return readdirSync("/proc/self/task").flatMap((tid) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    } catch {
      return []; // a thread that ended meanwhile
    }
    return [Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])];
  });
}

describe("sink ledger", () => {
  test("times every figure by the arrival it is given, not by when it counts", () => {
    const ledger = new SinkLedger({ latency: true });
    ledger.control({ expected: [2] });
    const arrivedAt = Date.parse("2026-11-25T10:00:01.000Z");
    const body = new TextEncoder().encode(`[${rec(0, 0, "2026-11-25T10:00:00.750000000Z")},${rec(0, 1, "2026-11-25T10:00:00.500000000Z")}]`);
    expect(ledger.ingest(body, false, arrivedAt)).toBeNull();
    const s = ledger.stats();
    expect([s.firstAt, s.lastNewAt, s.completeAt]).toEqual([arrivedAt, arrivedAt, arrivedAt]);
    expect(s.latency).toEqual({ count: 2, p50: 250, p99: 500, max: 500 });
  });
});

describe("counting sink, deferred (as its process runs)", () => {
  test("counts on a thread of its own at nice 19, the rest of the process at its own priority", async () => {
    const before = threadNiceValues();
    const sink = createCountingSink({ apiKey: KEY, deferred: true });
    try {
      expect(await sink.niceness).toBe(19);
      const after = threadNiceValues();
      // the verifier's thread, and any thread it started since (a thread inherits its creator's nice value)
      expect(after.filter((n) => n === 19).length).toBeGreaterThan(before.filter((n) => n === 19).length);
      expect(Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[16])).toBe(before[0]!);
    } finally {
      sink.close();
    }
  });

  test("answers after a framing check and counts later, by arrival; a body that fails when counted is reported, not counted", async () => {
    const sink = createCountingSink({ apiKey: KEY, deferred: true, latency: true });
    try {
      await sink.fetch(new Request("http://sink/control", { method: "POST", body: JSON.stringify({ expected: [3] }) }));
      const ts = criTimestamp(Date.now() - 250);
      const t0 = Date.now();
      expect((await sink.fetch(post(`[${rec(0, 0, ts)},${rec(0, 1, ts)}]`))).status).toBe(200);
      expect((await sink.fetch(post(new Uint8Array(gzipSync(`[${rec(0, 1, ts)},${rec(0, 2, ts)}]`)), { "content-encoding": "gzip" }))).status).toBe(200);
      const t1 = Date.now();
      // framing refused at once: not gzip, not an array
      expect((await sink.fetch(post(new Uint8Array([1, 2, 3]), { "content-encoding": "gzip" }))).status).toBe(400);
      expect((await sink.fetch(post(`{"not":"an array"}`))).status).toBe(400);
      // gzip's header, then garbage: answered 200, found out when counted
      const broken = new Uint8Array(gzipSync(`[${rec(0, 9)}]`));
      broken.fill(0x55, 10, broken.length - 8);
      expect((await sink.fetch(post(broken, { "content-encoding": "gzip" }))).status).toBe(200);
      const s = await sink.stats();
      expect(s.distinct).toBe(3);
      expect(s.duplicates).toBe(1);
      expect(s.missing).toBe(0);
      expect(s.invalidBodies).toBe(1);
      expect(s.byStatus).toEqual({ "200": 3, "400": 2 });
      expect(s.completeAt).toBeGreaterThanOrEqual(t0);
      expect(s.completeAt).toBeLessThanOrEqual(t1);
      expect(s.latency!.count).toBe(4);
      expect(s.latency!.p50).toBeGreaterThanOrEqual(249);
      expect(s.latency!.p50).toBeLessThan(1000);
    } finally {
      sink.close();
    }
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
