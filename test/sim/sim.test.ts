// The deterministic simulation in the suite (docs/simulation.md): thousands of seeds, each a whole
// run of the production data path over simulated edges with its own faults, in two processes (the CI
// machine has two cores), and the seeds that once failed. Any violation fails the test and names the
// command that replays it.
import { expect, test } from "bun:test";
import { join } from "node:path";

const SEEDS = Number(process.env.SIM_SEEDS ?? 2000);
const JOBS = 2;

interface Summary {
  seeds: number;
  failed: number[];
  wallSeconds: number;
}

async function run(args: string[]): Promise<Summary & { output: string }> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "cli.ts"), ...args, "--json"], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  const last = out.trim().split("\n").pop() ?? "";
  try {
    return { ...(JSON.parse(last) as Summary), output: out + err };
  } catch {
    throw new Error(`the simulation did not report (exit ${proc.exitCode}):\n${(out + err).slice(-3000)}`);
  }
}

test(`${SEEDS} simulated runs keep every invariant`, async () => {
  const r = await run(["--seeds", String(SEEDS), "--jobs", String(JOBS)]);
  expect(r.seeds).toBe(SEEDS);
  expect(r.failed.map((s) => `npm run sim -- --seed ${s}`)).toEqual([]);
}, 600_000);

test("the seeds that once failed keep every invariant", async () => {
  const r = await run(["--regressions"]);
  expect(r.seeds).toBeGreaterThan(10);
  expect(r.failed.map((s) => `npm run sim -- --seed ${s}`)).toEqual([]);
}, 300_000);
