// The side-by-side comparison with Fluent Bit (issue 20, deliver 5): the throughput scenario (2 M
// events × 200 B, 50 files present at start, the same counting sink) run with the collector and with
// Fluent Bit (tail + CRI multiline parser + filesystem storage + http json; bench/lib/fluent-bit.ts),
// alternating, one table. Skipped, exit 0, when FLUENT_BIT does not name an executable.
//
//   FLUENT_BIT=/usr/bin/fluent-bit bun bench/fluent-bit.ts [--runs 3] [--quick | --events N] [--gzip] [--seed 1] [--sink-in-thread] [--write]
//
// The collector is what bench/run.ts runs (PIPEKIT_COLLECTOR_BIN, dist/, or bun src/main.ts).
// --write appends the table to bench/RESULTS.md.
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { fluentBitAgent, fluentBitFromEnv, fluentBitOptimization, fluentBitVersion } from "./lib/fluent-bit.ts";
import { collectorCommand, collectorVersion, gitCommit, ROOT, sinkMode } from "./lib/harness.ts";
import { loadAverage, machine } from "./lib/proc.ts";
import { line, medianOf } from "./lib/results.ts";
import { drive, type RunResult, type ScenarioSize } from "./lib/scenarios.ts";

const argv = process.argv.slice(2);
const value = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : def;
};
if (argv.includes("--sink-in-thread")) process.env.BENCH_SINK_IN_THREAD = "1";
const bin = fluentBitFromEnv();
if (!bin) {
  console.log("fluent-bit comparison skipped: FLUENT_BIT is not set (the path of a fluent-bit executable)");
  process.exit(0);
}
let version: string;
try {
  version = fluentBitVersion(bin);
} catch (err) {
  console.error(`fluent-bit comparison: FLUENT_BIT=${bin} cannot run: ${(err as Error).message}`);
  process.exit(2);
}

const optimization = fluentBitOptimization(bin);
version += `, built ${optimization}`;
if (optimization.startsWith("unoptimised")) {
  console.warn(`fluent-bit comparison: ${bin} is an unoptimised build (cmake's FLB_DEBUG defaults to On and forces -O0): build it with -DFLB_RELEASE=On -DFLB_DEBUG=Off, or the comparison flatters the collector`);
}

const size: ScenarioSize = { full: !argv.includes("--quick") };
const runs = Number(value("runs", "3"));
const seed = Number(value("seed", "1"));
const gzip = argv.includes("--gzip");
const events = Number(value("events", size.full ? "2000000" : "200000"));
if (!Number.isInteger(events) || events <= 0 || events % 50 !== 0) {
  console.error(`--events wants a positive multiple of 50 (the files), got ${value("events", "")}`);
  process.exit(2);
}
const fluentBit = fluentBitAgent(bin, { gzip });
const scenario = gzip ? "gzip" : "throughput";

console.log(`side by side: ${events / 1e6} M events × 200 B, 50 files, ${runs} runs each, alternating${gzip ? ", gzip" : ""}`);
console.log(`  collector: ${collectorCommand().kind} — ${collectorVersion()}\n  fluent-bit: ${bin} — ${version}\n  messenger: ${sinkMode()}\n  load average at start: ${loadAverage()}`);
const mine: RunResult[] = [];
const theirs: RunResult[] = [];
for (let i = 0; i < runs; i++) {
  for (const [agent, into] of [[undefined, mine], [fluentBit, theirs]] as const) {
    const ctx = { seed: seed + i, log: (m: string) => console.log(m) };
    try {
      const r = await drive({ name: agent ? "fluent-bit" : scenario, agent, size, ctx, pods: 50, backlog: events, messenger: gzip ? { compression: "gzip" } : undefined, timeoutMs: 900_000 });
      into.push(r);
      console.log(`  run ${i + 1}: ${line(r)}`);
    } catch (err) {
      console.log(`  run ${i + 1} (${agent ? "fluent-bit" : "collector"}): FAILED ${(err as Error).stack ?? err}`);
      process.exitCode = 1;
    }
  }
}
if (!mine.length || !theirs.length) process.exit(1);

const table = comparisonTable(medianOf(mine), medianOf(theirs));
console.log(`\n${table}`);
if (argv.includes("--write")) {
  const meta = [
    `- machine: ${machine()}`,
    `- collector: ${collectorCommand().kind} — ${collectorVersion()} (commit ${gitCommit()})`,
    `- fluent-bit: ${version} (tail + CRI multiline parser + filesystem storage + http json, 4 workers, flush 1 s; bench/lib/fluent-bit.ts)`,
    `- messenger: ${sinkMode()}`,
    `- runs: ${runs} each, alternating (median)`,
    `- load average at end: ${loadAverage()}`,
  ];
  appendFileSync(join(ROOT, "bench/RESULTS.md"), `\n### ${new Date().toISOString().replace(/\.\d+Z$/, "Z")} — side by side with Fluent Bit (${scenario})\n\n${meta.join("\n")}\n\n${table}\n`);
  console.log("appended to bench/RESULTS.md");
}

/** One table: each agent's medians, and the collector's ratios against Fluent Bit with issue 20's targets. */
function comparisonTable(c: RunResult, fb: RunResult): string {
  const f = (n: number | null, d = 1) => (n === null || !Number.isFinite(n) ? "–" : n.toFixed(d));
  const rowOf = (name: string, r: RunResult) =>
    `| ${name} | ${f(r.evPerS / 1000, 0)} k | ${f(r.cpuS)} | ${f(r.cpuPerMillion, 2)} | ${f(r.peakAnonMB, 0)} | ${f(r.diskBytesPerEvent, 0)} | ${f(r.wireMB, 0)} | ${r.missing} | ${r.duplicates} | ${f(r.othersCpuS)} |`;
  const speed = c.evPerS / fb.evPerS;
  const cpu = c.cpuPerMillion / fb.cpuPerMillion;
  const mark = (ok: boolean) => (ok ? "holds" : "MISSED");
  return [
    "| agent | events/s | CPU s | CPU s / M ev | peak anon MB | disk B / ev | wire MB | missing | dup | others CPU s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    rowOf("collector", c),
    rowOf("Fluent Bit", fb),
    `| collector ÷ Fluent Bit | ${f(speed, 2)}× (target ≥ 4×: ${mark(speed >= 4)}) | | ${f(cpu, 2)}× (target ≤ 0.22×: ${mark(cpu <= 0.22)}) | ${f(c.peakAnonMB / fb.peakAnonMB, 2)}× | ${f((c.diskBytesPerEvent ?? NaN) / (fb.diskBytesPerEvent ?? NaN), 2)}× | | | | |`,
  ].join("\n");
}
