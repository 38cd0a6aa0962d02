// Source benchmark (issue 4): a generated node on local disk (pods × containers × lines of CRI,
// with partials), read by the real Source through inotify, descriptors, fair slices and the
// checkpoint machinery, into an output that only counts (the ring's sequence numbers, durable
// every 100 ms like a synced ring). Prints events/s and MB/s for the initial backlog, then for
// lines written while it runs (with kubelet-style rotation), and the idle wake-ups.
//
//   bun bench/source.bench.ts [--pods 200] [--lines 5000] [--live-lines 200000]
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigSchema } from "../src/config/schema.ts";
import { createLogger } from "../src/log.ts";
import { Source } from "../src/source/source.ts";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const pods = arg("pods", 200);
const linesPerFile = arg("lines", 5000);
const liveLines = arg("live-lines", 200_000);
const containers = ["main", "wait"];

const dir = mkdtempSync(join(tmpdir(), "source-bench-"));
const root = join(dir, "pods");
const dataDir = join(dir, "data");
mkdirSync(dataDir, { recursive: true });

let n = 0;
function lines(prefix: string, count: number): string {
  let s = "";
  for (let i = 0; i < count; i++, n++) {
    const t = `2026-11-25T10:00:00.${String(n % 1e9).padStart(9, "0")}Z`;
    const msg = `${prefix} line ${n} ${"lorem ipsum dolor sit amet ".repeat(1 + (n % 3))}`;
    if (n % 50 === 49) {
      const cut = msg.length >> 1;
      s += `${t} stdout P ${msg.slice(0, cut)}\n${t} stdout F ${msg.slice(cut)}\n`;
    } else s += `${t} stdout F ${msg}\n`;
  }
  return s;
}

const files: string[] = [];
let backlogBytes = 0;
for (let p = 0; p < pods; p++) {
  for (const c of containers) {
    const d = join(root, `argo_bench-${p}_uid-${p}`, c);
    mkdirSync(d, { recursive: true });
    const text = lines(`${p}/${c}`, linesPerFile);
    backlogBytes += text.length;
    writeFileSync(join(d, "0.log"), text);
    files.push(join(d, "0.log"));
  }
}
const backlogEvents = pods * containers.length * linesPerFile;

let events = 0;
let seq = 0;
let durable = 0;
const config = ConfigSchema.parse({ source: { root, scanIntervalMs: 10_000 } }).source;
const source: Source = new Source({
  config,
  dataDir,
  ownPodUid: null,
  durableSeq: () => durable,
  log: createLogger({ bench: "source" }),
  output: {
    decide: () => "read",
    emit: async (_file, ls) => {
      events += ls.length;
      seq += ls.length;
      return seq;
    },
  },
});
const sync = setInterval(() => {
  durable = seq;
  source.onDurable(durable);
}, 100);

async function until(check: () => boolean): Promise<void> {
  while (!check()) await Bun.sleep(2);
}

console.log(`node: ${pods} pods × ${containers.length} containers, ${backlogEvents} lines, ${(backlogBytes / 1e6).toFixed(1)} MB on disk`);
let t0 = performance.now();
source.start();
await until(() => events >= backlogEvents);
let ms = performance.now() - t0;
console.log(
  `backlog:  ${((events / ms) * 1000).toFixed(0).padStart(8)} events/s  ${((backlogBytes / ms) * 1000 / 1e6).toFixed(0).padStart(4)} MB/s  (${ms.toFixed(0)} ms)`,
);

// Live: writers append in rounds across all files; one file in ten rotates every 2 MB.
const before = events;
const perRound = 2000;
let written = 0;
let liveBytes = 0;
const sizes = new Map<string, number>();
t0 = performance.now();
for (let r = 0; written < liveLines; r++) {
  for (let k = 0; k < 20 && written < liveLines; k++) {
    const f = files[(r * 20 + k) % files.length] as string;
    const text = lines("live", perRound / 20);
    appendFileSync(f, text);
    liveBytes += text.length;
    written += perRound / 20;
    const s = (sizes.get(f) ?? 0) + text.length;
    if (s > 2e6) {
      renameSync(f, `${f}.20261125-1000${String(r % 60).padStart(2, "0")}`);
      writeFileSync(f, "");
      sizes.set(f, 0);
    } else sizes.set(f, s);
  }
  await Bun.sleep(0);
}
await until(() => events - before >= written);
ms = performance.now() - t0;
console.log(
  `live:     ${(((events - before) / ms) * 1000).toFixed(0).padStart(8)} events/s  ${((liveBytes / ms) * 1000 / 1e6).toFixed(0).padStart(4)} MB/s  (${written} lines written while running, with rotation; ${ms.toFixed(0)} ms)`,
);

const w0 = source.counters.wakeups;
await Bun.sleep(3000);
console.log(`idle:     ${source.counters.wakeups - w0} wake-ups of the source in 3 s with ${source.filesWatched} files open`);
clearInterval(sync);
await source.stop();
source.close();
const mem = process.memoryUsage();
console.log(`memory:   rss ${(mem.rss / 1e6).toFixed(0)} MB, heap ${(mem.heapUsed / 1e6).toFixed(0)} MB`);
rmSync(dir, { recursive: true, force: true });
