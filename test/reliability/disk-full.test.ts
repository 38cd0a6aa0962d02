// A full data dir disk (issue 17, defect 3): checkpoint writes fail with ENOSPC, and so does the
// prefix table's write for a container that starts meanwhile (its records are stored whole). Each
// must be a /status reason and a metric while it lasts, and nothing the log files still hold may be lost:
// SIGKILL while full, free the space, start again — every line arrives (some twice: positions stayed
// where they were saved last). The data dir is a small tmpfs, filled to the last byte by a file of
// the test's own; mounting needs CAP_SYS_ADMIN (tests run as root; without it the test says so).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { argoPod, podListJson, prng, type SamplePod } from "../../src/dev/sample-node.ts";
import { waitFor } from "../support/collector-process.ts";
import { type Env, makeEnv, sh, stop } from "./support.ts";

let env: Env;
let pod: SamplePod;
let logFile = "";
let sidecarDir = "";
const dataDir = () => join(env.dir, "data");
let mounted = false;

beforeAll(async () => {
  env = await makeEnv("disk-full", (dir) => {
    const root = join(dir, "pods");
    const podsFile = join(dir, "pods.json");
    pod = argoPod(prng(21), "full-wf", "full", ["main"]);
    writeFileSync(podsFile, podListJson([pod]));
    const d = join(root, `${pod.namespace}_${pod.name}_${pod.uid}`, "main");
    mkdirSync(d, { recursive: true });
    logFile = join(d, "0.log");
    sidecarDir = join(root, `${pod.namespace}_${pod.name}_${pod.uid}`, "sidecar");
    writeFileSync(logFile, "");
    return { root, podsFile };
  });
  mkdirSync(dataDir());
  mounted = sh(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dataDir()]).ok;
  if (!mounted) console.warn("disk-full: cannot mount a tmpfs here (no CAP_SYS_ADMIN); skipped");
});
afterAll(async () => {
  if (mounted) sh(["umount", "-l", dataDir()]);
  await env.cleanup();
});

/** Fills the file system of `dir` with one file until it refuses (ENOSPC). */
function fill(dir: string): string {
  const path = join(dir, "filler");
  const fd = openSync(path, "w");
  const block = new Uint8Array(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
  } finally {
    closeSync(fd);
  }
  // The last partial block: fill byte by byte what is left.
  const fd2 = openSync(path, "a");
  try {
    for (;;) writeSync(fd2, new Uint8Array(1));
  } catch {
    // full
  } finally {
    closeSync(fd2);
  }
  return path;
}

const TS = "2026-12-06T12:00:00.000000001Z";
const lines = (from: number, to: number, what = "full") => {
  let s = "";
  for (let i = from; i < to; i++) s += `${TS} stdout F ${what} ${i}\n`;
  return s;
};
const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? 0);

test("checkpoints and a prefix table that cannot be written are reasons and metrics; after SIGKILL and space back, nothing is lost", async () => {
  if (!mounted) return;
  const config = env.config({ buffer: { maxBytes: "1MiB", syncIntervalMs: 100 }, source: { maxLineBytes: "64KiB" } });
  writeFileSync(logFile, lines(0, 200));
  const c = env.start(config);
  expect(await env.ready()).toBe(true);
  expect(await waitFor(() => env.messenger.received().length >= 200, 15_000)).toBe(true);

  const filler = fill(dataDir());
  writeFileSync(logFile, lines(0, 600)); // 400 more lines while the disk is full
  const full = await waitFor(async () => (await env.status()).pipeline.reasons.some((r: string) => r.includes("disk is full")), 15_000, 100);
  expect(full).toBe(true);
  // A container starts while the disk is full: its prefix cannot be written, its records are stored whole.
  mkdirSync(sidecarDir);
  writeFileSync(join(sidecarDir, "0.log"), lines(0, 50, "sidecar"));
  const tableReason = await waitFor(async () => (await env.status()).pipeline.reasons.some((r: string) => r.startsWith("prefix table not written")), 15_000, 100);
  expect(tableReason).toBe(true);
  expect((await env.status()).prefixTable).toMatchObject({ lastError: "ENOSPC" });
  const metrics = await (await fetch(`http://127.0.0.1:${env.port}/metrics`)).text();
  expect(metric(metrics, "pipekit_collector_checkpoint_write_errors_total")).toBeGreaterThan(0);
  expect(metric(metrics, "pipekit_collector_prefix_table_write_errors_total")).toBeGreaterThan(0);
  expect((await env.status()).live).toBe(true); // a full disk is not a reason to restart the pod

  c.proc.kill("SIGKILL");
  await c.exited;
  rmSync(filler);
  const again = env.start(config);
  try {
    expect(await env.ready()).toBe(true);
    const want = new Set([...Array.from({ length: 600 }, (_, i) => `full ${i}`), ...Array.from({ length: 50 }, (_, i) => `sidecar ${i}`)]);
    expect(await waitFor(() => [...want].every((m) => env.messenger.received().some((r) => r.message === m)), 20_000, 200)).toBe(true);
    expect((await env.status()).pipeline.reasons.filter((r: string) => r.includes("checkpoints") || r.includes("prefix table"))).toEqual([]);
  } finally {
    expect(await stop(again)).toBe(0);
  }
}, 60_000);
