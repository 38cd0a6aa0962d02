// The runner's parts: the counting sink as a child process, the collector as a child process
// (compiled executable if built, else `bun src/main.ts`), its config, and small waits.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import type { SinkStats } from "./counting-sink.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const OUT = join(ROOT, "bench/out");
export const API_KEY = "bench-key-0123456789";

export interface SinkProcess {
  pid: number;
  url: string;
  port: number;
  stats(): Promise<SinkStats>;
  control(c: { expected?: number[]; failRate?: number; latency?: boolean; recordStart?: string }): Promise<void>;
  stop(): Promise<void>;
}

/** BENCH_SINK_IN_THREAD=1 (`--sink-in-thread`): the sink counts each body in its request thread before answering, at normal priority, as before the seventh session (2026-12-06). */
const sinkInThread = () => process.env.BENCH_SINK_IN_THREAD === "1";

/** How the counting sink counts, for a run's header. */
export function sinkMode(): string {
  return sinkInThread()
    ? "counting sink, counting each body before answering it, at normal priority (--sink-in-thread)"
    : "counting sink, counting on a thread at nice 19 after answering, by arrival time (bench/lib/sink-verifier.ts)";
}

export async function startSink(opts: { port?: number; failRate?: number; latency?: boolean; seed?: number } = {}): Promise<SinkProcess> {
  const args = [process.execPath, join(ROOT, "bench/lib/counting-sink.ts"), "--port", String(opts.port ?? 0), "--api-key", API_KEY, "--fail-rate", String(opts.failRate ?? 0), "--seed", String(opts.seed ?? 1)];
  if (opts.latency) args.push("--latency");
  if (sinkInThread()) args.push("--in-thread");
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`counting sink exited before listening: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const url = /listening on (\S+)/.exec(text)?.[1];
  if (!url) throw new Error(`unexpected counting sink output: ${text}`);
  return {
    pid: proc.pid,
    url,
    port: Number(new URL(url).port),
    stats: async () => (await (await fetch(`${url}/stats`)).json()) as SinkStats,
    control: async (c) => {
      const r = await fetch(`${url}/control`, { method: "POST", body: JSON.stringify(c) });
      if (!r.ok) throw new Error(`sink control: ${r.status}`);
    },
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** How the collector is started: PIPEKIT_COLLECTOR_BIN, dist/ (npm run build), or bun src/main.ts. */
export function collectorCommand(cpuProfDir?: string): { argv: string[]; kind: string } {
  if (cpuProfDir && process.env.BENCH_HEAP_PROF === "1") {
    return { argv: [process.execPath, "--heap-prof", "--heap-prof-md", `--heap-prof-dir=${cpuProfDir}`, join(ROOT, "src/main.ts")], kind: "bun --heap-prof src/main.ts" };
  }
  if (cpuProfDir) {
    return { argv: [process.execPath, "--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${cpuProfDir}`, join(ROOT, "src/main.ts")], kind: "bun --cpu-prof src/main.ts" };
  }
  const env = process.env.PIPEKIT_COLLECTOR_BIN;
  if (env) return { argv: [resolve(env)], kind: env };
  const dist = join(ROOT, "dist/pipekit-log-collector");
  if (existsSync(dist)) {
    // A build older than the sources would measure old code.
    if (statSync(dist).mtimeMs >= newestMtime(join(ROOT, "src"))) return { argv: [dist], kind: "dist/pipekit-log-collector" };
    if (!warnedStale) console.error(`bench: ${dist} is older than src/ (npm run build, or --build); using bun src/main.ts`);
    warnedStale = true;
  }
  return { argv: [process.execPath, join(ROOT, "src/main.ts")], kind: "bun src/main.ts" };
}

let warnedStale = false;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export function collectorVersion(): string {
  const { argv } = collectorCommand();
  const r = Bun.spawnSync([...argv, "--version"], { cwd: ROOT, stderr: "ignore" });
  return r.stdout.toString().trim();
}

export function gitCommit(): string {
  const rev = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT, stderr: "ignore" }).stdout.toString().trim();
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no", "--", "src"], { cwd: ROOT, stderr: "ignore" }).stdout.toString().trim();
  return rev + (dirty ? "+dirty-src" : "");
}

/** A log agent process under test: the collector, or another agent to compare with (bench/fluent-bit.ts). */
export interface AgentProcess {
  proc: Subprocess;
  pid: number;
  spawnedAt: number;
  stderrPath: string;
  /** Whether it is ready to work (the collector: /ready answers 200). */
  ready(): Promise<boolean>;
  /** SIGTERM, then wait (SIGKILL after the timeout); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number>;
  /** A Prometheus metric's value (null when the agent has none). */
  metric(name: string): Promise<number | null>;
}

/** Where an agent reads, keeps its state and sends, in one benchmark run. */
export interface AgentSetup {
  root: string;
  podsFile: string;
  dataDir: string;
  sinkUrl: string;
  messenger?: Record<string, unknown>;
  buffer?: Record<string, unknown>;
  cpuProfDir?: string;
}

export interface Agent {
  name: string;
  /** The text each record it sends begins with (the counting sink's recordStart; default the collector's). */
  recordStart?: string;
  spawn(dir: string, setup: AgentSetup): Promise<AgentProcess>;
}

/** The collector as an Agent. */
export const collectorAgent: Agent = {
  name: "collector",
  spawn: (dir, s) => spawnCollector(dir, collectorConfig(s), { cpuProfDir: s.cpuProfDir }),
};

export interface CollectorHandle extends AgentProcess {
  apiPort: number;
}

export async function freePort(): Promise<number> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = s.port as number;
  await s.stop(true);
  return port;
}

/** Config overrides from the command line (`--set messenger.concurrency=1`), applied to every run. */
export const overrides: Array<[string[], unknown]> = [];

export function addOverride(spec: string): void {
  const eq = spec.indexOf("=");
  if (eq <= 0) throw new Error(`--set wants key.path=value, got ${spec}`);
  const raw = spec.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a plain string ("gzip", "50MB")
  }
  overrides.push([spec.slice(0, eq).split("."), value]);
}

function applyOverrides(config: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(config);
  for (const [path, value] of overrides) {
    let node = out;
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return out;
}

export async function spawnCollector(dir: string, config: Record<string, unknown>, opts: { cpuProfDir?: string } = {}): Promise<CollectorHandle> {
  const apiPort = await freePort();
  const full = applyOverrides({ ...config, api: { address: `127.0.0.1:${apiPort}` }, log: { level: "warn" } });
  const configPath = join(dir, "collector.json");
  writeFileSync(configPath, JSON.stringify(full, null, 2));
  const stderrPath = join(dir, "collector.stderr");
  if (opts.cpuProfDir) mkdirSync(opts.cpuProfDir, { recursive: true });
  const { argv } = collectorCommand(opts.cpuProfDir);
  const spawnedAt = Date.now();
  // No PIPEKIT_* from the caller's environment: the config file is the whole setting.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("PIPEKIT_") && !["NODE_NAME", "NODE_IP", "POD_UID"].includes(k)) env[k] = v;
  const proc = Bun.spawn([...argv, "run", "--config", configPath], { cwd: dir, env, stdin: "ignore", stdout: "ignore", stderr: Bun.file(stderrPath) });
  return {
    proc,
    pid: proc.pid,
    apiPort,
    spawnedAt,
    stderrPath,
    ready: async () => {
      try {
        return (await fetch(`http://127.0.0.1:${apiPort}/ready`)).ok;
      } catch {
        return false;
      }
    },
    stop: (timeoutMs) => stopProcess(proc, timeoutMs),
    metric: async (name) => {
      try {
        const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
        const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, "m").exec(text);
        return m ? Number(m[1]) : null;
      } catch {
        return null;
      }
    },
  };
}

/** SIGTERM, then wait (SIGKILL after the timeout); resolves with the exit code. */
export async function stopProcess(proc: Subprocess, timeoutMs = 60_000): Promise<number> {
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return code;
}

/** The collector config of a benchmark run: static metadata, the sink, the data dir; plus overrides. */
export function collectorConfig(o: { root: string; podsFile: string; dataDir: string; sinkUrl: string; messenger?: Record<string, unknown>; buffer?: Record<string, unknown> }): Record<string, unknown> {
  return {
    dataDir: o.dataDir,
    source: { root: o.root },
    metadata: { provider: "static", podsFile: o.podsFile },
    buffer: { ...o.buffer },
    messenger: { baseUri: o.sinkUrl, apiKey: API_KEY, ...o.messenger },
    shutdownTimeoutMs: 20_000,
  };
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await Bun.sleep(stepMs);
  }
  return check();
}

/** Events per stream when `total` events go round-robin over `streams` streams. */
export function roundRobin(total: number, streams: number): number[] {
  return Array.from({ length: streams }, (_, s) => Math.floor(total / streams) + (s < total % streams ? 1 : 0));
}
