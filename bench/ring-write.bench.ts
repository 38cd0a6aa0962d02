// Why the ring writes with pwrite and reads through the mapping (src/buffer/ring.ts writeSome):
// the same 2 M records of 560 bytes (~1.1 GB, over two laps of a 500 MiB preallocated file, an
// fdatasync every second as the ring does) stored through a shared mapping vs staged in 1 MiB
// and written with pwrite. Prints wall time, the process's user and system CPU, and minor faults.
//
//   bun bench/ring-write.bench.ts [mmap|pwrite|both] [--rate MBps]   (default: both, flat out)
import { closeSync, fdatasync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { posixFallocate } from "../src/platform/ffi.ts";

const modeArg = process.argv[2] && !process.argv[2].startsWith("--") ? process.argv[2] : "both";
const rateAt = process.argv.indexOf("--rate");
const rate = rateAt > 0 ? Number(process.argv[rateAt + 1]) : 0;
const FILE = 500 * 1024 * 1024;
const RECORD = 560;
const TOTAL = 2_000_000;

function minorFaults(): number {
  return Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[7]);
}

async function run(mode: "mmap" | "pwrite"): Promise<void> {
  const dir = mkdtempSync(join(import.meta.dir, "out", "ring-write-"));
  const path = join(dir, "ring.dat");
  const fd = openSync(path, "w+");
  posixFallocate(fd, 0, FILE);
  const map = Bun.mmap(path, { shared: true });
  const rec = new Uint8Array(RECORD).fill(0x61);
  const stage = new Uint8Array(1 << 20);
  let stageLen = 0;
  let stageAt = 0;
  const flush = () => {
    if (stageLen) writeSync(fd, stage, 0, stageLen, stageAt);
    stageLen = 0;
  };
  const faults0 = minorFaults();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let pos = 0;
  let lastSync = t0;
  let syncing = false;
  for (let i = 0; i < TOTAL; i += 1000) {
    for (let k = 0; k < 1000; k++) {
      if (pos + RECORD > FILE) {
        flush();
        pos = 0;
      }
      if (mode === "mmap") map.set(rec, pos);
      else {
        if (stageLen === 0) stageAt = pos;
        if (stageLen + RECORD > stage.length) {
          flush();
          stageAt = pos;
        }
        stage.set(rec, stageLen);
        stageLen += RECORD;
      }
      pos += RECORD;
    }
    flush();
    const now = performance.now();
    if (now - lastSync > 1000 && !syncing) {
      syncing = true;
      lastSync = now;
      fdatasync(fd, () => (syncing = false));
    }
    if (rate) {
      const wait = t0 + ((i + 1000) * RECORD) / (rate * 1e3) - performance.now();
      if (wait > 1) await Bun.sleep(wait);
    } else if (i % 20_000 === 0) await Bun.sleep(0);
  }
  await new Promise<void>((r) => fdatasync(fd, () => r()));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `${mode.padEnd(6)} ${rate ? `${rate} MB/s` : "flat out"}: wall ${wall.toFixed(2)} s, user ${(cpu.user / 1e6).toFixed(2)} s, ` +
      `sys ${(cpu.system / 1e6).toFixed(2)} s, CPU per M records ${((cpu.user + cpu.system) / 1e6 / (TOTAL / 1e6)).toFixed(2)} s, minor faults ${minorFaults() - faults0}`,
  );
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
}

for (const mode of modeArg === "both" ? (["mmap", "pwrite"] as const) : [modeArg as "mmap" | "pwrite"]) await run(mode);
