// Batch encoder micro-benchmark (issue 10): what the sender does with one full batch before it
// goes on the wire — splice the ring's serialised records into a JSON array in a pooled buffer
// (src/sink/batch.ts, what the sender does) or a fresh one, slice halves for bisection, and
// optionally gzip it (src/sink/compress.ts) — against the naive ways (parse and re-stringify;
// join strings then encode) and gzip levels.
//
//   bun bench/batch.bench.ts [--batches 400] [--records 1024]
import { readFileSync } from "node:fs";
import { gzip as zlibGzip, gzipSync } from "node:zlib";
import { GzipWorker } from "../src/platform/gzip-worker.ts";
import { BatchPool, bodySize, gzipBound, sliceBody, spliceBatch } from "../src/sink/batch.ts";
import { gzip } from "../src/sink/compress.ts";
import { LineMaker, planNode } from "./lib/generator.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const BATCHES = arg("batches", 400);
const RECORDS = arg("records", 1024);
const te = new TextEncoder();
const td = new TextDecoder();

// Messages from the end-to-end benchmark's generator (words, numbers, hex ids: gzip ~4x).
const planDir = mkdtempSync(join(tmpdir(), "batch-bench-"));
const maker = new LineMaker(planNode({ dir: planDir, pods: 1 }));
rmSync(planDir, { recursive: true, force: true });

/** Records as the chain writes them: ~470 bytes of JSON with a 200-byte message. */
function record(i: number): string {
  return JSON.stringify({
    orgUUID: "0b6f3c52-8f6e-4a0f-bb0e-3e5d7b9c1a44",
    runUUID: "74676beb-e289-4bb4-a616-d011a835681b",
    pipeUUID: "11111111-2222-4333-8444-555555555555",
    nodeID: "ci-build-7xk2p-3012345678",
    podName: "ci-build-7xk2p-compile-3012345678",
    containerName: "main",
    timestamp: `2026-11-25T10:00:00.${String(i).padStart(9, "0")}Z`,
    stream: i % 16 === 15 ? "stderr" : "stdout",
    message: maker.message(0, i),
  });
}

const strings = Array.from({ length: RECORDS }, (_, i) => record(i));
const payloads = strings.map((s) => te.encode(s));
const rawBytes = payloads.reduce((a, p) => a + p.length, 0);

function time(name: string, iterations: number, fn: () => number): void {
  fn();
  let out = 0;
  const t = performance.now();
  for (let i = 0; i < iterations; i++) out = fn();
  const us = ((performance.now() - t) * 1000) / iterations;
  const perEventNs = (us * 1000) / RECORDS;
  console.log(`${name.padEnd(68)} ${us.toFixed(0).padStart(7)} µs/batch ${perEventNs.toFixed(0).padStart(6)} ns/event ${((rawBytes / us) * 1e6 / 1e9).toFixed(2).padStart(6)} GB/s in  → ${(out / 1e3).toFixed(0)} KB`);
}

console.log(`batch micro-benchmark: batches of ${RECORDS} records, ${(rawBytes / 1e3).toFixed(0)} KB of payload (${(rawBytes / RECORDS).toFixed(0)} B/record), Bun ${Bun.version}`);
// The sender's path: a pool of concurrency × 4 buffers sized for the default 4 MB cap, each batch
// spliced into the next free buffer (16 of them in turn, as batches overlap in flight).
const pool = new BatchPool(16, bodySize(1024, 4_000_000 - 1025), 1024);
const ring16 = Array.from({ length: 16 }, (_, i) => pool.take(i));
for (const b of ring16) pool.give(b);
time("sender: splice into a pooled buffer (BatchPool, 16 in turn)", BATCHES, () => {
  const b = pool.take(1);
  b.add(payloads, rawBytes);
  const n = b.finish().body.length;
  pool.give(b);
  return n;
});
time("splice into a fresh body (spliceBatch: tests and one-offs now)", BATCHES, () => spliceBatch(1, payloads).body.length);
const batch = spliceBatch(1, payloads);
time("sliceBody: both halves (one bisection step)", BATCHES, () => sliceBody(batch, 0, RECORDS >> 1).length + sliceBody(batch, RECORDS >> 1, RECORDS).length);
time("naive: strings joined with ',' then TextEncoder", BATCHES, () => te.encode(`[${strings.join(",")}]`).length);
time("naive: parse every record and JSON.stringify the array", Math.max(10, BATCHES >> 3), () => te.encode(JSON.stringify(payloads.map((p) => JSON.parse(td.decode(p))))).length);
time("gzip level 1 (src/sink/compress.ts, Bun.gzipSync)", Math.max(10, BATCHES >> 2), () => gzip(batch.body).length);
time("gzip level 6 (node:zlib default)", Math.max(10, BATCHES >> 3), () => gzipSync(batch.body).length);
time("sender with gzip: pooled splice + gzip level 1 + keepWire", Math.max(10, BATCHES >> 2), () => {
  const b = pool.take(1);
  b.add(payloads, rawBytes);
  const n = b.keepWire(gzip(b.finish().body)).length;
  pool.give(b);
  return n;
});
// What ky did with a body before sending (the sender called ky until issue 10): build a Request
// from it, which copies the body (the profile of the throughput scenario showed Bun's Request
// constructor at ~11 % of the main thread). bench/sink.bench.ts measures whole requests.
const url = "http://127.0.0.1:9/api/messenger/v1/logs/ingest/batch";
time("new Request(url, {method: POST, body}) (ky, per request)", BATCHES, () => {
  const r = new Request(url, { method: "POST", body: batch.body, headers: { "content-type": "application/json" } });
  return r.headers.get("content-type") ? batch.body.length : 0;
});
// gzip away from the main thread (issue 20): what each way costs the main thread, and in all, per
// batch, four in flight as the sender has them: in the calling thread; node:zlib's asynchronous gzip
// (Bun's native compressor on its thread pool); the sender's worker (src/platform/gzip-worker.ts)
// reading a shared body and writing shared memory in place.
const mainThreadMs = () => {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) * 10;
};
const processMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
async function offThread(name: string, n: number, job: () => Promise<number>): Promise<void> {
  await job();
  const m0 = mainThreadMs();
  const p0 = processMs();
  const t0 = performance.now();
  let next = 0;
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next++ < n) await job();
  }));
  const per = (x: number) => ((x * 1e6) / n / RECORDS).toFixed(0).padStart(6);
  console.log(`${name.padEnd(68)} ${per(performance.now() - t0)} ns/event wall ${per(processMs() - p0)} CPU ${per(mainThreadMs() - m0)} on the main thread`);
}
const GZ_BATCHES = Math.max(40, BATCHES >> 1);
await offThread("gzip level 1 in the calling thread (Bun.gzipSync)", GZ_BATCHES, async () => gzip(batch.body).length);
await offThread("gzip level 1, node:zlib gzip (asynchronous, native thread pool)", GZ_BATCHES, () => new Promise<number>((res, rej) => zlibGzip(batch.body, { level: 1, chunkSize: 1 << 20 }, (e, r) => (e ? rej(e) : res(r.length)))));
const sharedPool = new BatchPool(4, bodySize(1024, 4_000_000 - 1025), 1024, true);
const sharedBatch = sharedPool.take(1);
sharedBatch.add(payloads, rawBytes);
sharedBatch.finish();
const worker = new GzipWorker(1);
const wire = sharedBatch.wireMemory(gzipBound(sharedBatch.body.length));
await offThread("gzip level 1 on the sender's worker (shared body and result)", GZ_BATCHES, async () => (await worker.gzip(sharedBatch.body, wire)).length);
worker.close();
console.log(`gzip ratio on these records: level 1 ${(batch.body.length / gzip(batch.body).length).toFixed(1)}x (generated words, numbers and hex ids; real logs: 4-10x)`);
