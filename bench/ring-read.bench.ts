// What reading records right behind the writer costs, per lap of a fresh ring: the collector's
// pattern on the real ring — appendPacked of 1024 records of 530 bytes, then readRanges +
// Buffer.copy into a body + ack — over a 500 MB ring, printing the CPU per record on each side
// and the minor faults per half lap. The first lap of a fresh ring is the expensive one: its page
// cache is new memory (on the development VM, memory the guest touches for the first time costs a
// host fault; the reader's faults also read ahead of the writer and zero-fill those pages).
// `--readahead off` advises MADV_RANDOM on the mapping for comparison (measured, not adopted: it
// halves the first lap but leaves small folios that make every later lap slower).
//
//   bun bench/ring-read.bench.ts [--laps 3] [--readahead on|off|both]   (default: on, 3 laps)
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openRing } from "../src/buffer/ring.ts";
import type { PackedRecords } from "../src/buffer/types.ts";
import { adviseReadahead } from "./lib/madvise.ts";
import { GcPacing } from "../src/buffer/gc-pacer.ts";

const raAt = process.argv.indexOf("--readahead");
const modeArg = raAt > 0 ? process.argv[raAt + 1]! : "on";
const lapsAt = process.argv.indexOf("--laps");
const HALVES = 2 * (lapsAt > 0 ? Number(process.argv[lapsAt + 1]) : 3);
const RECORD = 530;
const BATCH = 1024;
const CAPACITY = 500e6;
const HALF_LAP_BATCHES = Math.floor(CAPACITY / 2 / ((RECORD + 24) * BATCH));

function minorFaults(): number {
  return Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[7]);
}
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const bytes = new Uint8Array(RECORD * BATCH).fill(0x61);
const ends = new Uint32Array(BATCH);
for (let i = 0; i < BATCH; i++) ends[i] = (i + 1) * RECORD;
const packed: PackedRecords = { bytes, ends, count: BATCH };
const body = Buffer.allocUnsafe(RECORD * BATCH + BATCH);

async function run(readahead: boolean): Promise<number[]> {
  const dir = mkdtempSync(join(import.meta.dir, "out", "ring-read-"));
  const ring = await openRing({ dir, capacityBytes: CAPACITY, syncIntervalMs: 1000, traffic: new GcPacing() });
  if (!readahead) adviseReadahead((ring as unknown as { map: Uint8Array }).map, true);
  const perRecord: number[] = [];
  try {
    for (let half = 0; half < HALVES; half++) {
      let readMs = 0;
      let appendMs = 0;
      let records = 0;
      const f0 = minorFaults();
      for (let k = 0; k < HALF_LAP_BATCHES; k++) {
        let t = cpuMs();
        await ring.appendPacked(packed);
        appendMs += cpuMs() - t;
        t = cpuMs();
        for (;;) {
          const r = ring.readRanges(BATCH, 4e6);
          if (!r) break;
          let o = 0;
          for (let i = 0; i < r.count; i++) o += r.data.copy(body, o, r.offsets[2 * i]!, r.offsets[2 * i + 1]!) + 1;
          if (o !== r.bytes + r.count) throw new Error("short copy");
          ring.ack(r.firstSeq, r.count);
          records += r.count;
        }
        readMs += cpuMs() - t;
      }
      if (records !== HALF_LAP_BATCHES * BATCH) throw new Error(`read ${records} records`);
      perRecord.push((readMs * 1e6) / records);
      console.log(
        `  readahead ${readahead ? "on " : "off"} half lap ${half + 1}: read ${((readMs * 1e6) / records).toFixed(0).padStart(5)} ns/record CPU, ` +
          `append ${((appendMs * 1e6) / records).toFixed(0).padStart(4)} ns/record, minor faults ${minorFaults() - f0}`,
      );
    }
  } finally {
    await ring.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return perRecord;
}

console.log(`ring-read micro-benchmark: fresh ${CAPACITY / 1e6} MB ring, ${RECORD}-byte records, ${HALF_LAP_BATCHES * BATCH} per half lap, Bun ${Bun.version}`);
const summary: string[] = [];
for (const readahead of modeArg === "both" ? [true, false] : [modeArg !== "off"]) {
  const r = await run(readahead);
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  summary.push(`readahead ${readahead ? "on " : "off"}: first lap ${mean(r.slice(0, 2)).toFixed(0)} ns/record read, later laps ${mean(r.slice(2)).toFixed(0)} ns/record`);
}
for (const s of summary) console.log(s);
