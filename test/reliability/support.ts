// Shared by the reliability tests: a sample node, the mock messenger, a config for the spawned
// collector, and /status reads.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { freePort, spawnCollector, type CollectorProcess, waitFor, writeJson } from "../support/collector-process.ts";

export const KEY = "reliability-key";

export interface Env {
  dir: string;
  port: number;
  messenger: MockMessenger;
  /** Writes the collector's config (merged over defaults suited to tests) and returns its path. */
  config(over?: Record<string, unknown>, name?: string): string;
  start(configPath: string, env?: Record<string, string>): CollectorProcess;
  status(): Promise<Record<string, any>>;
  ready(timeoutMs?: number): Promise<boolean>;
  cleanup(): Promise<void>;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === "object" && !Array.isArray(v) && out[k] && typeof out[k] === "object" ? merge(out[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export async function makeEnv(prefix: string, root: (dir: string) => { root: string; podsFile: string }): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), `pipekit-${prefix}-`));
  const messenger = await startMockMessenger({ apiKey: KEY });
  const port = await freePort();
  const { root: logRoot, podsFile } = root(dir);
  const env: Env = {
    dir,
    port,
    messenger,
    config(over = {}, name = "config.json") {
      const base = {
        dataDir: join(dir, "data"),
        source: { root: logRoot, partialFlushMs: 500, scanIntervalMs: 1000 },
        metadata: { provider: "static", podsFile, waitForMetadataSeconds: 1 },
        // Holds the record of the longest default line (1 MiB): `run` refuses less.
        buffer: { maxBytes: "8MiB", syncIntervalMs: 100 },
        messenger: { baseUri: messenger.url, flushIntervalMs: 100, retryInitialBackoffMs: 50, retryMaxBackoffMs: 500, timeoutMs: 3000 },
        api: { address: `127.0.0.1:${port}` },
        shutdownTimeoutMs: 3000,
      };
      return writeJson(join(dir, name), merge(base, over));
    },
    start(configPath, extra = {}) {
      return spawnCollector(["run", "--config", configPath], { PIPEKIT_API_KEY: KEY, ...extra });
    },
    async status() {
      return (await fetch(`http://127.0.0.1:${port}/status`)).json() as Promise<Record<string, any>>;
    },
    ready(timeoutMs = 20_000) {
      return waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null))?.ok === true, timeoutMs);
    },
    async cleanup() {
      await messenger.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** Sends SIGTERM and waits for the exit status (SIGKILL after 15 s). */
export async function stop(c: CollectorProcess): Promise<number> {
  c.proc.kill("SIGTERM");
  const code = await Promise.race([c.exited, Bun.sleep(15_000).then(() => null)]);
  if (code === null) {
    c.proc.kill("SIGKILL");
    return c.exited;
  }
  return code;
}

/** Runs a command, returning its exit status (for mount/umount/chattr). */
export function sh(cmd: string[]): { ok: boolean; out: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: r.stdout.toString() + r.stderr.toString() };
}
