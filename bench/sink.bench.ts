// Sink throughput (issue 5): the real sender draining a real ring file into the mock messenger,
// which runs as its own process (`dev-messenger`) so that its JSON parsing and zod validation do
// not share this process's CPU. Each scenario pre-fills the ring with N records (~450 bytes of
// JSON each, the shape the chain produces) and times from start() until every record is
// acknowledged. Prints events/s, MB/s, requests, retries, this process's CPU per event and its
// peak anonymous memory (RssAnon) during the scenario. bench/sink-memory.ts measures memory over
// millions of events; this one compares delivery under faults.
//
// Before the scenarios, a micro-benchmark of one full batch: splicing into a pooled buffer (the
// sender) vs a fresh one, gzip, and one POST of the body with fetch (the sender) vs ky (what it
// used before issue 10), CPU per request of this process (its HTTP thread included).
//
//   bun bench/sink.bench.ts [--events 204800] [--only NAME] [--no-micro]
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import ky from "ky";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRing } from "../src/buffer/ring.ts";
import { ConfigSchema } from "../src/config/schema.ts";
import type { Logger } from "../src/log.ts";
import { BatchPool, bodySize, spliceBatch } from "../src/sink/batch.ts";
import { gzip } from "../src/sink/compress.ts";
import { createSender } from "../src/sink/sender.ts";
import { appendPayloads } from "../test/support/ring-payloads.ts";
import { GcPacing } from "../src/buffer/gc-pacer.ts";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
// A whole number of full batches, so that the last one does not wait flushIntervalMs for company.
const EVENTS = Math.ceil(Number(arg("events", "204800")) / 1024) * 1024;
const ONLY = arg("only", "");
const KEY = "bench-key";
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

function rssAnonMb(): number {
  const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

interface Scenario {
  name: string;
  flags: string[];
  messenger: Record<string, unknown>;
}

const scenarios: Scenario[] = [
  { name: "healthy", flags: [], messenger: {} },
  { name: "20% 503, default backoff (1 s..60 s)", flags: ["--fail-rate", "0.2"], messenger: {} },
  { name: "20% 503, backoff 100 ms..2 s", flags: ["--fail-rate", "0.2"], messenger: { retryInitialBackoffMs: 100, retryMaxBackoffMs: 2000 } },
  { name: "20% 503 + 20 ms latency", flags: ["--fail-rate", "0.2", "--latency-ms", "20"], messenger: { retryInitialBackoffMs: 100, retryMaxBackoffMs: 2000 } },
  { name: "20% 503 + gzip", flags: ["--fail-rate", "0.2"], messenger: { compression: "gzip", retryInitialBackoffMs: 100, retryMaxBackoffMs: 2000 } },
  { name: "20% 503, concurrency 1", flags: ["--fail-rate", "0.2"], messenger: { concurrency: 1, retryInitialBackoffMs: 100, retryMaxBackoffMs: 2000 } },
];

function record(i: number): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      orgUUID: "0b0c9a4e-1111-4000-8000-000000000001",
      runUUID: "1c1d2e3f-2222-4000-8000-000000000002",
      pipeUUID: "2d2e3f40-3333-4000-8000-000000000003",
      nodeID: "hello-world-x7k2p-3012345678",
      podName: "hello-world-x7k2p-main-3012345678",
      containerName: "main",
      timestamp: `2026-11-25T09:00:00.${String(i % 1e9).padStart(9, "0")}Z`,
      stream: i % 7 ? "stdout" : "stderr",
      message: `step ${i}: processed batch of items, elapsed=${(i * 7) % 1000}ms status=ok worker=${i % 16} ${"detail ".repeat(12)}`,
    }),
  );
}

async function startMessenger(flags: string[]): Promise<{ url: string; stop(): Promise<void>; stats(): Promise<Record<string, unknown>> }> {
  const proc = Bun.spawn([process.execPath, "src/main.ts", "dev-messenger", "--port", "0", "--api-key", KEY, ...flags], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("dev-messenger exited before listening");
    text += new TextDecoder().decode(value);
  }
  const url = /listening on (\S+)/.exec(text)?.[1];
  if (!url) throw new Error(`unexpected dev-messenger output: ${text}`);
  return {
    url,
    stats: async () => (await (await fetch(`${url}/stats`)).json()) as Record<string, unknown>,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

async function run(s: Scenario): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pk-sink-bench-"));
  mkdirSync(join(dir, "data"));
  const messenger = await startMessenger(s.flags);
  const ring = await openRing({ dir: join(dir, "data"), capacityBytes: 256 * 1024 * 1024, syncIntervalMs: 1000, log: quiet, traffic: new GcPacing() });
  try {
    let rawBytes = 0;
    for (let i = 0; i < EVENTS; i += 1024) {
      const batch: Uint8Array[] = [];
      for (let j = i; j < Math.min(EVENTS, i + 1024); j++) batch.push(record(j));
      for (const p of batch) rawBytes += p.length;
      await appendPayloads(ring, batch);
    }
    const config = ConfigSchema.parse({ messenger: { baseUri: messenger.url, apiKey: KEY, ...s.messenger } }).messenger;
    const sender = createSender({ ring, config, dataDir: join(dir, "data"), log: quiet });
    Bun.gc(true);
    const anon0 = rssAnonMb();
    let peakAnon = anon0;
    const sampler = setInterval(() => (peakAnon = Math.max(peakAnon, rssAnonMb())), 10);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    sender.start();
    let p90 = 0;
    while (ring.stats().readSeq <= EVENTS) {
      if (!p90 && sender.stats().eventsSent >= EVENTS * 0.9) p90 = (performance.now() - t0) / 1000;
      await Bun.sleep(5);
    }
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    await sender.stop();
    const st = sender.stats();
    const ms = await messenger.stats();
    const nsPerEvent = ((cpu.user + cpu.system) * 1000) / EVENTS;
    console.log(
      `${s.name.padEnd(40)} ${String(Math.round(EVENTS / secs)).padStart(8)} ev/s ${(rawBytes / 1e6 / secs).toFixed(1).padStart(6)} MB/s  ` +
        `${secs.toFixed(2)} s (90 % in ${p90.toFixed(2)} s)  req 2xx=${st.requests["2xx"]} 5xx=${st.requests["5xx"]} retries=${st.retries}  ` +
        `wire ${(st.bytesSentWire / 1e6).toFixed(0)} MB / raw ${(st.bytesSentRaw / 1e6).toFixed(0)} MB  ` +
        `sender CPU ${nsPerEvent.toFixed(0)} ns/event  RssAnon peak ${peakAnon.toFixed(0)} MB (+${(peakAnon - anon0).toFixed(0)})  ` +
        `messenger distinct=${ms.distinctEvents} dup=${ms.duplicateEvents}`,
    );
    if (ms.distinctEvents !== EVENTS) throw new Error(`messenger has ${String(ms.distinctEvents)} distinct events, expected ${EVENTS}`);
  } finally {
    await ring.close();
    await messenger.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Micro: the hot path's byte operations and one request, on one full batch (1024 records, ~460 KB). */
async function micro(): Promise<void> {
  const payloads = Array.from({ length: 1024 }, (_, i) => record(i));
  const timeIt = async (n: number, f: () => unknown | Promise<unknown>) => {
    for (let i = 0; i < 3; i++) await f();
    const t = performance.now();
    for (let i = 0; i < n; i++) await f();
    return ((performance.now() - t) * 1000) / n;
  };
  const pool = new BatchPool(16, bodySize(1024, 4_000_000 - 1025), 1024);
  const pooled = await timeIt(2000, () => {
    const b = pool.take(1);
    b.add(payloads);
    b.finish();
    pool.give(b);
  });
  const fresh = await timeIt(2000, () => spliceBatch(1, payloads));
  const body = spliceBatch(1, payloads).body;
  const naive = await timeIt(200, () => new TextEncoder().encode(JSON.stringify(payloads.map((p) => JSON.parse(new TextDecoder().decode(p))))));
  const bunGzip = await timeIt(200, () => gzip(body));
  const stream = await timeIt(50, () => new Response(new Blob([body]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
  console.log(
    `micro, one batch of 1024 records (${(body.length / 1e3).toFixed(0)} KB): splice into a pooled buffer ${pooled.toFixed(0)} µs, into a fresh one ${fresh.toFixed(0)} µs ` +
      `(parse + re-stringify would be ${naive.toFixed(0)} µs); gzip level 1 ${bunGzip.toFixed(0)} µs ` +
      `(${(gzip(body).length / 1e3).toFixed(0)} KB), CompressionStream ${stream.toFixed(0)} µs`,
  );
  await requestMicro(body);
}

/**
 * One POST of a full batch body to the counting sink (its own process), N times, 4 at a time as
 * the sender does: fetch with one reused Headers object (the sender) vs ky (the sender before
 * issue 10: a Request per attempt, which copies the body, plus ky's own timeout signal).
 * CPU per request is this process's, the HTTP client thread included.
 */
async function requestMicro(body: Uint8Array<ArrayBuffer>): Promise<void> {
  const proc = Bun.spawn([process.execPath, "bench/lib/counting-sink.ts", "--port", "0", "--api-key", KEY], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("counting sink exited before listening");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const url = `${/listening on (\S+)/.exec(text)![1]}/api/messenger/v1/logs/ingest/batch`;
  const http = ky.create({ retry: 0, timeout: 30_000, throwHttpErrors: false });
  const headers = new Headers({ "content-type": "application/json", "X-PIPEKIT-API-KEY": KEY });
  const N = 1000;
  const clients: Array<[string, () => Promise<Response>]> = [
    ["fetch", () => fetch(url, { method: "POST", body, headers, signal: new AbortController().signal })],
    ["ky", () => http.post(url, { body, headers: { "content-type": "application/json", "X-PIPEKIT-API-KEY": KEY } })],
  ];
  const out: string[] = [];
  try {
    for (const round of [1, 2]) {
      for (const [name, post] of clients) {
        Bun.gc(true);
        const anon0 = rssAnonMb();
        let peak = anon0;
        let sent = 0;
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await Promise.all(
          [0, 1, 2, 3].map(async () => {
            while (sent < N) {
              sent++;
              const res = await post();
              await res.arrayBuffer();
              if (!res.ok) throw new Error(`${name}: HTTP ${res.status}`);
              if (sent % 16 === 0) peak = Math.max(peak, rssAnonMb());
            }
          }),
        );
        const cpu = process.cpuUsage(cpu0);
        const wall = performance.now() - t0;
        if (round === 2) {
          out.push(
            `${name} ${((cpu.user + cpu.system) / N).toFixed(0)} µs CPU/request (${(((cpu.user + cpu.system) * 1000) / N / 1024).toFixed(0)} ns/event), ` +
              `${((N / wall) * 1000).toFixed(0)} req/s, RssAnon +${(peak - anon0).toFixed(0)} MB`,
          );
        }
      }
    }
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
  console.log(`micro, ${N} POSTs of that body, 4 at a time, to the counting sink: ${out.join("; ")}`);
}

if (!process.argv.includes("--no-micro")) await micro();
console.log(`sink benchmark: ${EVENTS} events per scenario, batches of 1024, concurrency 4 unless said (Bun ${Bun.version})`);
for (const s of scenarios) if (!ONLY || s.name.includes(ONLY)) await run(s);
