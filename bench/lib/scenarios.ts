// The benchmark scenarios of issue 10. Each run: generate a node, start the counting sink and the
// collector, drive the scenario, wait for the last event to be acknowledged, measure, clean up.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type LogFormat, planNode, writeBacklog, writeLive, type NodePlan } from "./generator.ts";
import { type Agent, type AgentProcess, collectorAgent, freePort, OUT, roundRobin, type SinkProcess, startSink, waitUntil } from "./harness.ts";
import { cpuSeconds, formatThreadCpu, loadAverage, ProcSampler, readCpu, readMachineCpu, readSwitches, readThreadCpu, readWriteBytes, switchRates } from "./proc.ts";
import type { SinkStats } from "./counting-sink.ts";

export interface RunResult {
  scenario: string;
  events: number;
  /** Spawn → last event acknowledged (s). */
  wallS: number;
  /** Spawn → /ready (s). */
  readyS: number;
  evPerS: number;
  cpuS: number;
  cpuPerMillion: number;
  /** Of cpuS: kernel time (page faults, read/write/fsync, sockets). */
  cpuSysS: number;
  /** Of cpuS: the main (JavaScript) thread's. */
  mainCpuS: number;
  /** The collector's threads by CPU seconds, largest first. */
  threads: string;
  /** Bytes the collector caused to be written to disk (/proc/<pid>/io write_bytes) per event, and the input's bytes per line. */
  diskBytesPerEvent: number | null;
  inputBytesPerEvent: number;
  /** CPU seconds over the run of every process on the machine other than the collector and the sink (other work sharing the cores). */
  othersCpuS: number;
  /** Minor page faults of the collector up to the last acknowledgement. */
  minorFaults: number;
  /** The counting sink's own CPU seconds over the run (to show it is not the bottleneck). */
  sinkCpuS: number;
  peakAnonMB: number;
  peakFileMB: number;
  peakShmemMB: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  latencyMaxMs: number | null;
  idleCpuPct: number | null;
  wireMB: number;
  rawMB: number;
  requests: number;
  refused: number;
  missing: number;
  duplicates: number;
  foreign: number;
  exitCode: number;
  load: string;
  /** Scenario-specific remarks (e.g. ring full seen, backlog written while down). */
  note: string;
}

export interface ScenarioSize {
  full: boolean;
}

export interface Scenario {
  name: string;
  /** One line: what it measures. */
  about: string;
  /** The settings that change the result, as printed in the results. */
  settings: (size: ScenarioSize) => string;
  run: (size: ScenarioSize, ctx: RunContext) => Promise<RunResult>;
}

export interface RunContext {
  /** Write a CPU profile of the collector (bun --cpu-prof) into this directory. */
  cpuProfDir?: string;
  seed: number;
  log: (msg: string) => void;
}

const MB = 1e6;

export interface DriveOptions {
  name: string;
  /** What is measured (default: the collector). */
  agent?: Agent;
  size: ScenarioSize;
  ctx: RunContext;
  pods: number;
  /** The log files' format (default CRI). */
  format?: LogFormat;
  /** Events written before the collector starts (round-robin over the streams). */
  backlog?: number;
  /** Events written live after the collector is ready: rate (events/s, Infinity = as fast as possible). */
  live?: { total: number; rate: number };
  sink?: { failRate?: number; latency?: boolean; /** Start the sink only after the live writing ended and the ring filled. */ late?: boolean };
  messenger?: Record<string, unknown>;
  buffer?: Record<string, unknown>;
  /** After the last ack, measure idle CPU for this many seconds. */
  idleSeconds?: number;
  timeoutMs: number;
}

export async function drive(o: DriveOptions): Promise<RunResult> {
  mkdirSync(join(OUT, "work"), { recursive: true });
  const dir = mkdtempSync(join(OUT, "work", `${o.name}-`));
  const dataDir = join(dir, "data");
  mkdirSync(dataDir);
  let sink: SinkProcess | null = null;
  let collector: AgentProcess | null = null;
  let sampler: ProcSampler | null = null;
  const notes: string[] = [];
  try {
    const plan: NodePlan = planNode({ dir, pods: o.pods, messageBytes: 200, seed: o.ctx.seed, format: o.format });
    const streams = plan.streams.length;
    const expected = new Array<number>(streams).fill(0);
    let inputBytes = 0;
    if (o.backlog) {
      const per = roundRobin(o.backlog, streams);
      if (per.some((n) => n !== per[0])) throw new Error("backlog must divide evenly over the streams");
      const t = performance.now();
      const bytes = writeBacklog(plan, per[0]!);
      inputBytes += bytes;
      o.ctx.log(`  wrote ${o.backlog} events (${(bytes / MB).toFixed(0)} MB of ${plan.format}, fsynced) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      per.forEach((n, i) => (expected[i]! += n));
    }
    if (o.live) roundRobin(o.live.total, streams).forEach((n, i) => (expected[i]! += n));
    const total = expected.reduce((a, b) => a + b, 0);

    const agent = o.agent ?? collectorAgent;
    const sinkPort = o.sink?.late ? await freePort() : 0;
    if (!o.sink?.late) {
      sink = await startSink({ failRate: o.sink?.failRate, latency: o.sink?.latency, seed: o.ctx.seed });
      await sink.control({ expected, recordStart: agent.recordStart });
    }
    const sinkUrl = sink ? sink.url : `http://127.0.0.1:${sinkPort}`;
    collector = await agent.spawn(dir, { root: plan.root, podsFile: plan.podsFile, dataDir, sinkUrl, messenger: o.messenger, buffer: o.buffer, cpuProfDir: o.ctx.cpuProfDir });
    sampler = new ProcSampler(collector.pid).start();
    const machine0 = readMachineCpu();
    const c = collector;
    let readyAt = 0;
    const ready = await waitUntil(async () => {
      const ok = await c.ready();
      if (ok) readyAt = Date.now();
      return ok;
    }, 60_000, 20);
    if (!ready) throw new Error(`${agent.name} not ready within 60 s; stderr: ${readFileSync(c.stderrPath, "utf8").slice(-2000)}`);

    if (o.live) {
      const w = await writeLive(plan, { rate: o.live.rate, total: o.live.total, from: o.backlog ? o.backlog / streams : 0 });
      inputBytes += w.bytes;
      o.ctx.log(`  live: wrote ${o.live.total} events (${(w.bytes / MB).toFixed(0)} MB) in ${w.seconds.toFixed(1)} s (${Math.round(o.live.total / w.seconds)} ev/s)`);
    }
    if (o.sink?.late) {
      // The messenger is down: wait until reading pauses on a full ring, then bring it up.
      const full = await waitUntil(async () => (await c.metric("pipekit_collector_ring_full")) === 1, 60_000, 200);
      const ringBytes = await c.metric("pipekit_collector_ring_bytes");
      const read = await c.metric("pipekit_collector_events_read_total");
      notes.push(full ? `ring full at ${((ringBytes ?? 0) / MB).toFixed(0)} MB after ${read} of ${total} events read` : "ring never filled");
      notes.push(`peak anon while down ${(sampler.peakAnon / MB).toFixed(0)} MB`);
      o.ctx.log(`  messenger down: ${notes.join("; ")}`);
      sink = await startSink({ port: sinkPort, failRate: o.sink?.failRate, latency: o.sink?.latency, seed: o.ctx.seed });
      await sink.control({ expected, recordStart: agent.recordStart });
    }

    const s = sink!;
    let last: SinkStats | null = null;
    let cpuAtEnd = 0;
    let sysAtEnd = 0;
    let faultsAtEnd = 0;
    let threadsAtEnd = new Map<string, number>();
    let writeBytesAtEnd: number | null = null;
    let machineAtEnd = machine0;
    let sinkCpuAtEnd = 0;
    const done = await waitUntil(async () => {
      last = await s.stats();
      if (last.completeAt !== null) {
        const t = readCpu(c.pid);
        cpuAtEnd = cpuSeconds(t);
        sysAtEnd = t?.sys ?? 0;
        faultsAtEnd = t?.minflt ?? 0;
        threadsAtEnd = readThreadCpu(c.pid);
        writeBytesAtEnd = readWriteBytes(c.pid);
        machineAtEnd = readMachineCpu();
        sinkCpuAtEnd = cpuSeconds(readCpu(s.pid));
        return true;
      }
      if (c.proc.exitCode !== null) throw new Error(`${agent.name} exited (${c.proc.exitCode}): ${readFileSync(c.stderrPath, "utf8").slice(-2000)}`);
      return false;
    }, o.timeoutMs, 100);
    const stats0 = last as SinkStats | null;
    if (!done) notes.push(`TIMEOUT after ${o.timeoutMs / 1000} s: ${stats0?.distinct ?? 0} of ${total} distinct`);

    let idleCpuPct: number | null = null;
    if (o.idleSeconds && done) {
      await Bun.sleep(3000); // let the last sync and checkpoint writes settle
      const a = cpuSeconds(readCpu(c.pid));
      const w0 = readSwitches(c.pid);
      const t = performance.now();
      await Bun.sleep(o.idleSeconds * 1000);
      const b = cpuSeconds(readCpu(c.pid));
      const secs = (performance.now() - t) / 1000;
      idleCpuPct = ((b - a) / secs) * 100;
      const sw = switchRates(w0, readSwitches(c.pid), secs);
      notes.push(`idle: ${sw.total.toFixed(0)} context switches/s (${sw.top})`);
    }

    const sinkCpuS = cpuSeconds(readCpu(s.pid));
    sampler.sample();
    const exitCode = await c.stop();
    sampler.stop();
    await Bun.sleep(200); // late duplicates after shutdown, if any
    const st = await s.stats();
    if (st.invalidBodies > 0) notes.push(`${st.invalidBodies} bodies answered 200 proved undecodable when counted`);
    const end = st.completeAt ?? Date.now();
    const wallS = (end - c.spawnedAt) / 1000;
    const cpuS = cpuAtEnd || cpuSeconds(sampler.lastCpu);
    const machineS = (machineAtEnd.busy - machine0.busy) / 100;
    const refused = Object.entries(st.byStatus).reduce((a, [k, v]) => a + (k === "200" ? 0 : v), 0);
    return {
      scenario: o.name,
      events: total,
      wallS,
      readyS: (readyAt - c.spawnedAt) / 1000,
      evPerS: total / wallS,
      cpuS,
      cpuPerMillion: (cpuS / total) * 1e6,
      sinkCpuS,
      minorFaults: faultsAtEnd || (sampler.lastCpu?.minflt ?? 0),
      cpuSysS: sysAtEnd || (sampler.lastCpu?.sys ?? 0),
      mainCpuS: threadsAtEnd.get("main") ?? 0,
      threads: formatThreadCpu(threadsAtEnd),
      diskBytesPerEvent: writeBytesAtEnd === null ? null : writeBytesAtEnd / total,
      inputBytesPerEvent: inputBytes / total,
      othersCpuS: Math.max(0, machineS - cpuS - sinkCpuAtEnd),
      peakAnonMB: sampler.peakAnon / MB,
      peakFileMB: sampler.peakFile / MB,
      peakShmemMB: sampler.peakShmem / MB,
      latencyP50Ms: st.latency?.p50 ?? null,
      latencyP99Ms: st.latency?.p99 ?? null,
      latencyMaxMs: st.latency?.max ?? null,
      idleCpuPct,
      wireMB: st.bytesWire / MB,
      rawMB: st.bytesRaw / MB,
      requests: st.requests,
      refused,
      missing: st.missing ?? -1,
      duplicates: st.duplicates,
      foreign: st.foreign,
      exitCode,
      load: loadAverage(),
      note: notes.join("; "),
    };
  } finally {
    sampler?.stop();
    if (collector && collector.proc.exitCode === null) await collector.stop(5000);
    await sink?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const THROUGHPUT_EVENTS = (s: ScenarioSize) => (s.full ? 2_000_000 : 200_000);
const defaults = "sync 1000 ms, concurrency 4, batch 1024, compression none";

export const SCENARIOS: Scenario[] = [
  {
    name: "throughput",
    about: "2 M events × 200 B over 50 pods, files present at start, delivered to the counting sink",
    settings: (s) => `${THROUGHPUT_EVENTS(s) / 1e6} M ev, 50 files; ${defaults}`,
    run: (size, ctx) => drive({ name: "throughput", size, ctx, pods: 50, backlog: THROUGHPUT_EVENTS(size), timeoutMs: 600_000 }),
  },
  {
    name: "throughput-503",
    about: "the same with 20 % of requests answered 503 (default backoff 1 s..60 s, full jitter)",
    settings: (s) => `${THROUGHPUT_EVENTS(s) / 1e6} M ev, 20 % 503; ${defaults}, backoff 1 s..60 s`,
    run: (size, ctx) => drive({ name: "throughput-503", size, ctx, pods: 50, backlog: THROUGHPUT_EVENTS(size), sink: { failRate: 0.2 }, timeoutMs: 900_000 }),
  },
  {
    name: "latency",
    about: "end-to-end latency at a fixed 20 k events/s (line timestamp → acknowledgement)",
    settings: (s) => `20 k ev/s × ${s.full ? 60 : 10} s, 50 files; ${defaults}, flush 1000 ms`,
    run: (size, ctx) => {
      const secs = size.full ? 60 : 10;
      return drive({ name: "latency", size, ctx, pods: 50, live: { total: 20_000 * secs, rate: 20_000 }, sink: { latency: true }, timeoutMs: (secs + 120) * 1000 });
    },
  },
  {
    name: "idle",
    about: "500 quiet files (20 lines each, delivered first), then CPU used while nothing is written",
    settings: (s) => `500 files, idle ${s.full ? 60 : 10} s; ${defaults}, scan 10 s`,
    run: (size, ctx) => drive({ name: "idle", size, ctx, pods: 500, backlog: 500 * 20, idleSeconds: size.full ? 60 : 10, timeoutMs: 120_000 }),
  },
  {
    name: "backlog",
    about: "messenger down while 5 M events are written (more than the ring holds: reading pauses), then up",
    settings: (s) => `${s.full ? 5 : 0.5} M ev, ring ${s.full ? "500MB" : "50MB"}, messenger down until the ring is full; ${defaults}, backoff 200 ms..2 s`,
    run: (size, ctx) =>
      drive({
        name: "backlog",
        size,
        ctx,
        pods: 50,
        live: { total: size.full ? 5_000_000 : 500_000, rate: Infinity },
        sink: { late: true },
        buffer: { maxBytes: size.full ? "500MB" : "50MB" },
        messenger: { retryInitialBackoffMs: 200, retryMaxBackoffMs: 2000 },
        timeoutMs: 1_200_000,
      }),
  },
  {
    name: "gzip",
    about: "the throughput scenario with gzip on (compare wire MB and CPU with the throughput row)",
    settings: (s) => `${THROUGHPUT_EVENTS(s) / 1e6} M ev, 50 files; sync 1000 ms, concurrency 4, batch 1024, compression gzip (level 1)`,
    run: (size, ctx) => drive({ name: "gzip", size, ctx, pods: 50, backlog: THROUGHPUT_EVENTS(size), messenger: { compression: "gzip" }, timeoutMs: 600_000 }),
  },
  {
    name: "docker",
    about: "the throughput scenario with docker json-file logs instead of CRI (compare CPU per event with the throughput row)",
    settings: (s) => `${THROUGHPUT_EVENTS(s) / 1e6} M ev, 50 files, docker json-file; ${defaults}`,
    run: (size, ctx) => drive({ name: "docker", size, ctx, pods: 50, format: "docker", backlog: THROUGHPUT_EVENTS(size), timeoutMs: 600_000 }),
  },
];

/** Issue 20's targets on the development machine (those against Fluent Bit: bench/fluent-bit.ts). */
export const TARGETS = {
  /** Disk bytes written per event ≤ this × the input line (throughput). */
  diskPerLine: 1.3,
  /** gzip's events/s ≥ this × the throughput scenario's. */
  gzipShare: 0.9,
  /** docker's CPU per event ≤ this × the throughput scenario's. */
  dockerCpuRatio: 1.15,
  peakAnonMB: 100,
  /** No worse than before issue 20. */
  latencyP99Ms: 120,
  idleCpuPct: 0.67,
};
