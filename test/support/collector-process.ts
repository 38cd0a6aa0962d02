// Spawning the real collector for end-to-end tests: `bun src/main.ts`, or the compiled
// executable when PIPEKIT_COLLECTOR_BIN names one.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

const ROOT = join(import.meta.dir, "../..");

export function collectorCommand(): string[] {
  const bin = process.env.PIPEKIT_COLLECTOR_BIN;
  return bin ? [bin] : [process.execPath, join(ROOT, "src/main.ts")];
}

export interface CollectorProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything written to stderr so far (the collector's JSON log lines). */
  stderr(): string;
  exited: Promise<number>;
}

export function spawnCollector(args: string[], env: Record<string, string> = {}): CollectorProcess {
  const proc = Bun.spawn([...collectorCommand(), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let err = "";
  (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) err += decoder.decode(chunk);
  })();
  return { proc, stderr: () => err, exited: proc.exited };
}

export function writeJson(path: string, value: unknown): string {
  writeFileSync(path, JSON.stringify(value, null, 2));
  return path;
}

/** Polls until `check` returns true or the timeout passes; returns whether it became true. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await Bun.sleep(stepMs);
  }
  return check();
}

export async function freePort(): Promise<number> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = s.port as number;
  await s.stop(true);
  return port;
}
