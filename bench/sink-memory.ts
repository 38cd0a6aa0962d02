// Sink memory benchmark (issue 10): the real sender delivering a real ring file (backlog of N
// records of ~530 bytes, the chain's shape) to the benchmark's counting sink, which runs as its
// own process so that only the collector's side is measured. Samples this process's RssAnon
// (/proc/self/status) every few ms while delivering and prints the peak, the baseline before
// delivery, events/s and CPU per M events, and checks that the sink got every record once.
//
//   bun bench/sink-memory.ts [--events 1000000] [--concurrency 4] [--batch 1024] [--compression none|gzip]
//                            [--gc-every-mib 32] [--fail-rate 0] [--live] [--timeline] [--heap]
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRing } from "../src/buffer/ring.ts";
import { ConfigSchema } from "../src/config/schema.ts";
import type { Logger } from "../src/log.ts";
import { createSender } from "../src/sink/sender.ts";
import { LineMaker, planNode } from "./lib/generator.ts";
import { appendPayloads, readPayloads } from "../test/support/ring-payloads.ts";
import { GcPacing } from "../src/buffer/gc-pacer.ts";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const EVENTS = Math.ceil(Number(arg("events", "1000000")) / 1024) * 1024;
const CONCURRENCY = Number(arg("concurrency", "4"));
const BATCH = Number(arg("batch", "1024"));
const COMPRESSION = arg("compression", "none");
const GC_EVERY_MIB = Number(arg("gc-every-mib", "32"));
const FAIL_RATE = Number(arg("fail-rate", "0"));
const TIMELINE = process.argv.includes("--timeline");
const HEAP = process.argv.includes("--heap");
// --live: a producer appends while the sender delivers (a 128 MiB ring, as under steady load)
// instead of delivering a backlog that fills the ring beforehand.
const LIVE = process.argv.includes("--live");
// --null-consumer: read and acknowledge without sending (what the producer and the ring cost alone).
const NULL_CONSUMER = process.argv.includes("--null-consumer");
const KEY = "bench-key";
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const te = new TextEncoder();

function statusKb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : 0;
}
const mb = (kb: number) => (kb / 1024).toFixed(0);

// Messages from the end-to-end benchmark's generator (words, numbers, hex ids: gzip ~4x, like logs).
const planDir = mkdtempSync(join(tmpdir(), "pk-sink-mem-plan-"));
const maker = new LineMaker(planNode({ dir: planDir, pods: 1 }));
rmSync(planDir, { recursive: true, force: true });

/** One record as the chain writes it: ~530 bytes of JSON, message starting `seq=0:<n> `. */
function recordText(n: number): string {
  return JSON.stringify({
    orgUUID: "0b6f3c52-8f6e-4a0f-bb0e-3e5d7b9c1a44",
    runUUID: "74676beb-e289-4bb4-a616-d011a835681b",
    pipeUUID: "11111111-2222-4333-8444-555555555555",
    nodeID: "ci-build-7xk2p-3012345678",
    podName: "ci-build-7xk2p-compile-3012345678",
    containerName: "main",
    timestamp: `2026-11-25T10:00:00.${String(n % 1e9).padStart(9, "0")}Z`,
    stream: n % 16 === 15 ? "stderr" : "stdout",
    message: maker.message(0, n),
  });
}

async function startSink(): Promise<{ url: string; stop(): Promise<void>; post(path: string, body: unknown): Promise<void>; stats(): Promise<Record<string, unknown>> }> {
  const proc = Bun.spawn([process.execPath, "bench/lib/counting-sink.ts", "--port", "0", "--api-key", KEY, "--fail-rate", String(FAIL_RATE)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("counting sink exited before listening");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const url = /listening on (\S+)/.exec(text)?.[1];
  if (!url) throw new Error(`unexpected counting sink output: ${text}`);
  return {
    url,
    async post(path, body) {
      const r = await fetch(url + path, { method: "POST", body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`sink ${path}: ${r.status}`);
      await r.arrayBuffer();
    },
    stats: async () => (await (await fetch(`${url}/stats`)).json()) as Record<string, unknown>,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

function nullConsumer(): Pick<ReturnType<typeof createSender>, "start" | "stop" | "stats"> {
  let stopped = false;
  let sent = 0;
  return {
    start() {
      void (async () => {
        while (!stopped) {
          const r = readPayloads(ring, BATCH, 1 << 30);
          if (!r) {
            await Promise.race([ring.waitForData(), Bun.sleep(50)]);
            continue;
          }
          ring.ack(r.firstSeq, r.payloads.length);
          sent += r.payloads.length;
          await sink.post("/control", { expected: [EVENTS] }); // one small request per batch, as the sender makes
        }
      })();
    },
    async stop() {
      stopped = true;
    },
    stats: () => ({ eventsSent: sent, requests: { "2xx": 0, "5xx": 0 } }) as unknown as ReturnType<ReturnType<typeof createSender>["stats"]>,
  };
}

const dir = mkdtempSync(join(tmpdir(), "pk-sink-mem-"));
mkdirSync(join(dir, "data"));
const sink = await startSink();
const sample = recordText(EVENTS - 1).length;
const ringBytes = LIVE ? 128 << 20 : Math.ceil((EVENTS * (sample + 32) * 1.05) / (1 << 20) + 16) << 20;
const ring = await openRing({ dir: join(dir, "data"), capacityBytes: ringBytes, syncIntervalMs: 1000, log: quiet, traffic: new GcPacing({ everyBytes: GC_EVERY_MIB * (1 << 20) }) });
try {
  // Records built into one reused buffer; each append is awaited before the buffer is refilled.
  const chunk = new Uint8Array(1024 * 1024);
  let rawBytes = 0;
  const produce = async () => {
    for (let i = 0; i < EVENTS; ) {
      const views: Uint8Array[] = [];
      let at = 0;
      for (; i < EVENTS && views.length < 1024; i++) {
        const { written } = te.encodeInto(recordText(i), chunk.subarray(at));
        views.push(chunk.subarray(at, at + written!));
        at += written!;
      }
      rawBytes += at;
      await appendPayloads(ring, views);
    }
  };
  if (!LIVE) await produce();
  await ring.sync();
  Bun.gc(true);
  await Bun.sleep(100);
  Bun.gc(true);
  const baseAnon = statusKb("RssAnon");
  await sink.post("/control", { expected: [EVENTS] });

  const config = ConfigSchema.parse({
    messenger: { baseUri: sink.url, apiKey: KEY, concurrency: CONCURRENCY, batchMaxEvents: BATCH, compression: COMPRESSION, retryInitialBackoffMs: 50, retryMaxBackoffMs: 1000 },
  }).messenger;
  const sender = NULL_CONSUMER ? nullConsumer() : createSender({ ring, config, dataDir: join(dir, "data"), log: quiet });
  let peakAnon = baseAnon;
  let samples = 0;
  const timeline: string[] = [];
  const sampler = setInterval(() => {
    const a = statusKb("RssAnon");
    samples++;
    if (a > peakAnon) peakAnon = a;
  }, 5);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let nextLine = 0;
  sender.start();
  const producing = LIVE ? produce() : Promise.resolve();
  while (ring.stats().readSeq <= EVENTS) {
    await Bun.sleep(20);
    const t = performance.now() - t0;
    if (TIMELINE && t >= nextLine) {
      nextLine += 500;
      timeline.push(`  t=${(t / 1000).toFixed(1)} s sent=${sender.stats().eventsSent} RssAnon=${mb(statusKb("RssAnon"))} MB`);
    }
  }
  await producing;
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  await sender.stop();
  const st = sender.stats();
  const ss = await sink.stats();
  const cpuSPerM = (cpu.user + cpu.system) / 1e6 / (EVENTS / 1e6);
  if (TIMELINE) console.log(timeline.join("\n"));
  console.log(
    `sink memory${LIVE ? " (live: producer appending meanwhile)" : " (backlog)"}: ${EVENTS} events × ${(rawBytes / EVENTS).toFixed(0)} B, batch ${BATCH}, concurrency ${CONCURRENCY}, compression ${COMPRESSION}, ring gc every ${GC_EVERY_MIB} MiB, fail-rate ${FAIL_RATE} (Bun ${Bun.version})\n` +
      `  ${Math.round(EVENTS / secs)} ev/s, ${secs.toFixed(2)} s, ${cpuSPerM.toFixed(2)} CPU-s per M events (${((cpuSPerM * 1e9) / 1e6).toFixed(0)} ns/event), ` +
      `requests 2xx=${st.requests["2xx"]} 5xx=${st.requests["5xx"]}\n` +
      `  RssAnon before delivery ${mb(baseAnon)} MB, peak while delivering ${mb(peakAnon)} MB (+${mb(peakAnon - baseAnon)} MB; ${samples} samples), after ${mb(statusKb("RssAnon"))} MB; ` +
      `RssFile ${mb(statusKb("RssFile"))} MB, RssShmem ${mb(statusKb("RssShmem"))} MB`,
  );
  if (HEAP) {
    const { heapStats } = await import("bun:jsc");
    const top = (o: Record<string, number>) => Object.entries(o).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(`  heap before full GC: ${top(heapStats().objectTypeCounts)}`);
    Bun.gc(true);
    console.log(`  after a full GC: RssAnon ${mb(statusKb("RssAnon"))} MB; heap ${(heapStats().heapSize / 1e6).toFixed(1)} MB, extra ${(heapStats().extraMemorySize / 1e6).toFixed(1)} MB; ${top(heapStats().objectTypeCounts)}`);
  }
  if (!NULL_CONSUMER && (ss.distinct !== EVENTS || ss.missing !== 0)) throw new Error(`sink has ${String(ss.distinct)} distinct events (missing ${String(ss.missing)}), expected ${EVENTS}`);
} finally {
  await ring.close();
  await sink.stop();
  rmSync(dir, { recursive: true, force: true });
}
