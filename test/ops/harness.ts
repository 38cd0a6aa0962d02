// Shared by the operations tests: a sample node on disk, the mock messenger, the real collector
// as a process, and readers for its local API (JSON endpoints and the Prometheus text, parsed).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { type SampleNode, writeSampleNode } from "../../src/dev/sample-node.ts";
import { type CollectorProcess, freePort, spawnCollector, waitFor, writeJson } from "../support/collector-process.ts";

export { freePort, spawnCollector, waitFor, writeJson };
export const KEY = "ops-test-key-0123456789";

export interface Env {
  dir: string;
  node: SampleNode;
  messenger: MockMessenger;
  cleanup(): Promise<void>;
}

export async function setUp(prefix: string, linesPerContainer = 100): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), `pipekit-${prefix}-`));
  const node = writeSampleNode(dir, { seed: 11, linesPerContainer });
  const messenger = await startMockMessenger({ apiKey: KEY });
  return {
    dir,
    node,
    messenger,
    cleanup: async () => {
      await messenger.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A config for tests: short intervals and thresholds everywhere; `over` is merged per section. */
export function testConfig(env: Env, port: number, over: Record<string, any> = {}): Record<string, any> {
  const base: Record<string, any> = {
    dataDir: join(env.dir, "data"),
    source: { root: env.node.root, partialFlushMs: 500, scanIntervalMs: 500 },
    metadata: { provider: "static", podsFile: env.node.podsFile, waitForMetadataSeconds: 1 },
    buffer: { maxBytes: "8MiB", syncIntervalMs: 100 },
    messenger: { baseUri: env.messenger.url, flushIntervalMs: 100, retryInitialBackoffMs: 50, retryMaxBackoffMs: 200, timeoutMs: 2000 },
    api: { address: `127.0.0.1:${port}` },
    health: { sinkFailingSeconds: 1, bufferFullSeconds: 1 },
    shutdownTimeoutMs: 3000,
  };
  for (const [k, v] of Object.entries(over)) {
    base[k] = v && typeof v === "object" && !Array.isArray(v) && base[k] && typeof base[k] === "object" ? { ...base[k], ...v } : v;
  }
  return base;
}

export class Api {
  constructor(readonly port: number) {}
  async get(path: string): Promise<{ status: number; body: any; text: string; headers: Headers }> {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`);
    const text = await res.text();
    let body: any = null;
    try {
      body = JSON.parse(text);
    } catch {
      // /metrics
    }
    return { status: res.status, body, text, headers: res.headers };
  }
  async status(): Promise<any> {
    return (await this.get("/status")).body;
  }
  async code(path: string): Promise<number | null> {
    try {
      return (await fetch(`http://127.0.0.1:${this.port}${path}`)).status;
    } catch {
      return null;
    }
  }
  async metrics(): Promise<PromText> {
    return parsePrometheus((await this.get("/metrics")).text);
  }
}

/** Polls /metrics until the metric's sum is above zero (gauges that are non-zero only for a moment). */
export async function eventuallyAboveZero(api: Api, name: string, timeoutMs = 5000): Promise<boolean> {
  return waitFor(async () => (await api.metrics()).sum(name) > 0, timeoutMs, 10);
}

export async function startCollector(env: Env, over: Record<string, any> = {}, extraEnv: Record<string, string> = {}) {
  const port = await freePort();
  const configPath = writeJson(join(env.dir, `config-${port}.json`), testConfig(env, port, over));
  const proc = spawnCollector(["run", "--config", configPath], { PIPEKIT_API_KEY: KEY, ...extraEnv });
  const api = new Api(port);
  const up = await waitFor(async () => (await api.code("/ready")) === 200, 15_000);
  if (!up) throw new Error(`collector did not become ready:\n${proc.stderr()}`);
  return { ...proc, api, port, configPath };
}

export async function stopCollector(p: Pick<CollectorProcess, "proc" | "exited">): Promise<number> {
  p.proc.kill("SIGTERM");
  return p.exited;
}

// ---- Prometheus text exposition, parsed back ----

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface PromText {
  samples: Sample[];
  help: Map<string, string>;
  types: Map<string, string>;
  /** The sum of every series of a metric (optionally filtered by labels). */
  sum(name: string, labels?: Record<string, string>): number;
  has(name: string): boolean;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): PromText {
  const samples: Sample[] = [];
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# HELP ")) {
      const [name, ...rest] = line.slice(7).split(" ");
      help.set(name!, rest.join(" "));
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      types.set(name!, type!);
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1]!] = l[2]!;
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== "NaN") throw new Error(`bad value in ${JSON.stringify(line)}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return {
    samples,
    help,
    types,
    sum: (name, want = {}) =>
      samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0),
    has: (name) => samples.some((s) => s.name === name || s.name.startsWith(name + "_")),
  };
}

/** Asserts (by throwing with the values) that each metric is above zero; returns them. */
export function expectAboveZero(m: PromText, names: string[]): Record<string, number> {
  const values: Record<string, number> = {};
  for (const n of names) values[n] = n.endsWith("_bucket") || m.types.get(n) === "histogram" ? m.sum(`${n}_count`) : m.sum(n);
  const zero = Object.entries(values).filter(([, v]) => !(v > 0));
  if (zero.length) throw new Error(`metrics not above zero: ${JSON.stringify(zero)}`);
  return values;
}

export function distinctMessages(messenger: MockMessenger): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of messenger.received()) counts.set(r.message, (counts.get(r.message) ?? 0) + 1);
  return counts;
}
