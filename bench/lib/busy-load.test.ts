// The contention of `npm run chaos -- --busy`: real processes that really burn a core each, and that
// never outlive the harness, whether it stops them or dies without a word.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startBusyLoad } from "./busy-load.ts";

function cpuTicks(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")); // a zombie is gone for our purposes
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (cond()) return true;
    await Bun.sleep(50);
  }
  return cond();
}

test("one process per requested core, each burning CPU, all ended by stop()", async () => {
  const load = startBusyLoad(2);
  try {
    expect(load.pids).toHaveLength(2);
    const before = load.pids.map(cpuTicks);
    await Bun.sleep(1500);
    const after = load.pids.map(cpuTicks);
    // Each loop got CPU time of its own (ticks are 10 ms; on a loaded machine well under its share).
    load.pids.forEach((_, i) => expect(after[i]! - before[i]!).toBeGreaterThan(10));
  } finally {
    await load.stop();
  }
  for (const pid of load.pids) expect(alive(pid)).toBe(false);
  await load.stop(); // twice is harmless
});

test("the loops end on their own when the harness is SIGKILLed", async () => {
  const harness = Bun.spawn(
    [process.execPath, "-e", `const { startBusyLoad } = await import(${JSON.stringify(join(import.meta.dir, "busy-load.ts"))}); console.log(startBusyLoad(1).pids.join(",")); await Bun.sleep(60_000);`],
    { stdout: "pipe", stderr: "inherit" },
  );
  const reader = harness.stdout.getReader();
  const { value } = await reader.read();
  const pids = new TextDecoder().decode(value).trim().split(",").map(Number);
  expect(pids).toHaveLength(1);
  expect(alive(pids[0]!)).toBe(true);
  harness.kill("SIGKILL");
  await harness.exited;
  expect(await until(() => !alive(pids[0]!), 5000)).toBe(true);
}, 20_000);
