// `npm run chaos` (issues 9 and 17): the full reliability run against the real executable
// (dist/pipekit-log-collector when built, or PIPEKIT_COLLECTOR_BIN, else bun src/main.ts).
//   phase 1: continuous writing with kubelet rotation, 20 % 503s and hanging requests, ≥ 10 SIGKILLs
//            at random moments (requests in flight, files lagging), each followed by an immediate restart;
//   phase 2: the messenger down for a full minute while writing goes on (the ring fills, reading
//            pauses, files rotate and are deleted underneath), then everything must arrive.
//   phase 3 (--skip-outage-crash to leave out): a SIGKILL during an outage, after rotation deleted files that only the
//            collector held open: their unread part is gone for good (inherent); the run reports how much,
//            and fails unless the collector counted it as lost bytes (about what the lost events took).
// The writer interleaves stdout and stderr partial lines and rotates inside lines (bench/lib/chaos-run.ts).
//   --seeds N: N seeds back to back (seed S, S+3, …; each uses S, S+1, S+2 for its phases), one summary.
//   --busy: one busy loop per core for the whole run and source.partialFlushMs 300 (or --partial-flush-ms),
//           so that timing-dependent paths (a partial line's flush timer against a paused reader) run.
// Prints each run's figures and a summary table (per seed: events, missing, corrupt, duplicates per crash
// against one sync interval of traffic in and out of the ring plus the wire, plus what was read again from behind a line
// pending at the kill, wall time) and appends it to bench/RESULTS.md.
// Exit 1 if any seed lost or damaged anything, with the command that replays it.
//   bun bench/chaos.ts [--seed N] [--seeds N] [--busy] [--partial-flush-ms N] [--events N] [--rate N] [--kills N]
//                      [--outage-seconds N] [--skip-outage] [--skip-outage-crash] [--no-results]
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type BusyLoad, startBusyLoad } from "./lib/busy-load.ts";
import { describe, insertIntoSection, type SeedRun, type SeedSummary, seedTable, summarizeSeed } from "./lib/chaos-report.ts";
import { type ChaosOptions, runChaos } from "./lib/chaos-run.ts";
import { loadAverage, machine } from "./lib/proc.ts";

const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    seeds: { type: "string" },
    busy: { type: "boolean" },
    "partial-flush-ms": { type: "string" },
    events: { type: "string" },
    rate: { type: "string" },
    kills: { type: "string" },
    "outage-seconds": { type: "string" },
    "no-results": { type: "boolean" },
    "skip-outage": { type: "boolean" },
    "skip-outage-crash": { type: "boolean" },
  },
});
const firstSeed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const seedCount = Number(values.seeds ?? 1);
const events = Number(values.events ?? 2_000_000);
const rate = Number(values.rate ?? 20_000);
const kills = Number(values.kills ?? 12);
const outageSeconds = Number(values["outage-seconds"] ?? 60);
const busy = values.busy ?? false;
const partialFlushMs = Number(values["partial-flush-ms"] ?? (busy ? 300 : 2000));
for (const [name, v] of Object.entries({ seed: firstSeed, seeds: seedCount, events, rate, kills, "outage-seconds": outageSeconds, "partial-flush-ms": partialFlushMs })) {
  if (!Number.isInteger(v) || v < 0 || (name !== "kills" && name !== "seed" && v === 0)) {
    console.error(`chaos: --${name} must be a positive integer`);
    process.exit(2);
  }
}

/** The options that shape a seed's run, as flags (the summary's replay commands repeat them). */
const shape = [
  `--events ${events} --rate ${rate} --kills ${kills}`,
  values["skip-outage"] ? "--skip-outage" : `--outage-seconds ${outageSeconds}`,
  values["skip-outage-crash"] ? "--skip-outage-crash" : "",
  busy ? "--busy" : "",
  values["partial-flush-ms"] !== undefined ? `--partial-flush-ms ${partialFlushMs}` : "",
]
  .filter(Boolean)
  .join(" ");
const replay = (seed: number) => `bun bench/chaos.ts --seed ${seed} ${shape}`;
const log = (l: string) => console.log(l);

async function runSeed(seed: number): Promise<SeedRun> {
  const common: Partial<ChaosOptions> = { partialFlushMs, preferDist: true, log };
  const writeSeconds = events / rate;
  const gap = (writeSeconds * 1000) / (kills + 1);
  const killRun = await runChaos({
    ...common,
    seed,
    events,
    rate,
    pods: 6,
    rotateBytes: 2 * 1024 * 1024,
    maxFiles: 5,
    kills,
    // Kills land while writing goes on (not in the idle end): gaps average a bit under the writing time / kills.
    killAfterMs: { min: Math.max(1500, gap * 0.4), max: Math.max(3000, gap * 1.1) },
    ringBytes: "64MiB",
    syncIntervalMs: 1000,
    drainTimeoutMs: 300_000,
  });
  console.log(`\n== seed ${seed}, phase 1: kills ==\n${describe(killRun)}\n`);
  let outage = null;
  if (!values["skip-outage"]) {
    outage = await runChaos({
      ...common,
      seed: seed + 1,
      events: Math.round(8_000 * (outageSeconds + 20)),
      rate: 8_000,
      pods: 4,
      rotateBytes: 1024 * 1024,
      maxFiles: 4,
      kills: 0,
      ringBytes: "4MiB",
      syncIntervalMs: 1000,
      failRate: 0,
      hangRate: 0,
      outage: { startAfterMs: 5_000, durationMs: outageSeconds * 1000 },
      drainTimeoutMs: 300_000,
    });
    console.log(`\n== seed ${seed}, phase 2: ${outageSeconds} s outage ==\n${describe(outage)}\n`);
  }
  let outageCrash = null;
  if (!values["skip-outage-crash"]) {
    outageCrash = await runChaos({
      ...common,
      seed: seed + 2,
      events: 150_000,
      rate: 8_000,
      pods: 3,
      rotateBytes: 256 * 1024,
      maxFiles: 3,
      kills: 1,
      killAfterMs: { min: 9_000, max: 9_500 },
      ringBytes: "1MiB",
      syncIntervalMs: 500,
      failRate: 0,
      hangRate: 0,
      outage: { startAfterMs: 2_000, durationMs: 12_000 },
      lossExpected: true,
    });
    const perEvent = outageCrash.writer.bytes / Math.max(1, outageCrash.writer.events);
    console.log(`\n== seed ${seed}, phase 3: SIGKILL during an outage ==\n${describe(outageCrash)}`);
    console.log(`lost with the deleted files: ${outageCrash.missing} events (${Math.round(outageCrash.missing * perEvent)} bytes of log lines); counted by the collector as lost: ${outageCrash.bytesLost} bytes${outageCrash.missing > 0 && outageCrash.bytesLost === 0 ? " (UNCOUNTED LOSS)" : ""}\n`);
  }
  return { seed, kills: killRun, outage, outageCrash, replay: replay(seed) };
}

function collectorLabel(command: string): string {
  if (command.includes("src/main.ts")) return "bun src/main.ts";
  // A compiled executable: its own --version names the commit it was built from.
  const r = Bun.spawnSync([command, "--version"], { stdout: "pipe", stderr: "pipe" });
  return `executable ${r.stdout.toString().trim().replace(/^pipekit-log-collector /, "")}`;
}

function gitCommit(): string {
  const r = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir, stdout: "pipe", stderr: "pipe" });
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--", "src"], { cwd: join(import.meta.dir, ".."), stdout: "pipe", stderr: "pipe" });
  return r.stdout.toString().trim() + (dirty.stdout.toString().trim() ? "-dirty" : "");
}

const SECTION = "## Chaos: seeds, contention and duplicates per crash";
const SECTION_INTRO = `\`npm run chaos -- --seeds N [--busy]\` (bench/chaos.ts, issue 17): each seed runs the three phases of the Chaos section above (SIGKILLs under 20 % 503 and 2 % hanging requests; a messenger outage filling a small ring; a SIGKILL during an outage), the writer interleaving stdout and stderr partial lines and rotating inside lines about every second rotation. \`--busy\`: one busy-loop process per core for the whole run and \`source.partialFlushMs\` 300. *missing* and *corrupt* count the first two phases, and the third's corrupt messages other than pieces of the lines lost with deleted files; the third phase's loss is inherent and must be counted by the collector. *Duplicates per crash* (the last one of a row is the SIGKILL during an outage) are set against issue 17's bound: one \`buffer.syncIntervalMs\` of traffic in and out of the ring (the larger of the write rate and the append rate before the kill, plus the acknowledgement rate before it: a SIGKILL reads again what was appended since the last sync and sends again what was acknowledged since) plus what can be on the wire (concurrency 4 × 1024 events), plus (shown as "+N") the duplicates of lines read again from behind a line pending at the kill (a checkpoint stays at the head of a split line until the ring has synced its record: docs/ring-format.md, "Bounded replay"; counted from the writer's ledger and when each line arrived); a crash over it fails the seed.`;

function appendResults(rows: SeedSummary[], collector: string, loadStart: string): void {
  const file = join(import.meta.dir, "RESULTS.md");
  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const failed = rows.filter((r) => r.failures.length).length;
  const text = [
    `### ${date} — ${rows.length} seed${rows.length > 1 ? "s" : ""}, ${busy ? `under contention (${navigator.hardwareConcurrency} busy loops)` : "no added contention"}, commit ${gitCommit()}: ${failed ? `${failed} FAILED` : "pass"}`,
    "",
    `- machine: ${machine()}; load average at start ${loadStart}, at end ${loadAverage()}`,
    `- collector: ${collector}; options: \`${shape}\` (partialFlushMs ${partialFlushMs})`,
    "",
    seedTable(rows),
  ].join("\n");
  const before = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmark results\n";
  const after = insertIntoSection(before, SECTION, text, SECTION_INTRO, "## Chaos");
  // Written only if nobody changed the file meanwhile (other engineers append to it too).
  if (existsSync(file) && readFileSync(file, "utf8") !== before) throw new Error(`${file} changed while the section was being added; add it again`);
  writeFileSync(file, after);
  console.log(`added to "${SECTION}" in ${file}`);
}

const loadStart = loadAverage();
let load: BusyLoad | null = null;
if (busy) {
  load = startBusyLoad();
  console.log(`chaos: ${load.pids.length} busy loops (pids ${load.pids.join(", ")}), partialFlushMs ${partialFlushMs}`);
}
const rows: SeedSummary[] = [];
let collector = "";
try {
  for (let i = 0; i < seedCount; i++) {
    const seed = firstSeed + 3 * i;
    console.log(`chaos seed ${seed} (${i + 1} of ${seedCount}) — replay: ${replay(seed)}`);
    const run = await runSeed(seed);
    collector ||= collectorLabel(run.kills.command);
    rows.push(summarizeSeed(run));
  }
} finally {
  await load?.stop();
}

console.log(`\n== summary: ${rows.length} seed${rows.length > 1 ? "s" : ""}${busy ? `, under contention (partialFlushMs ${partialFlushMs})` : ""} ==\n${seedTable(rows)}\n`);
if (!values["no-results"]) appendResults(rows, collector, loadStart);
const failed = rows.filter((r) => r.failures.length);
if (failed.length) {
  for (const r of failed) console.log(`seed ${r.seed} FAILED: ${r.failures.join("; ")}\n  replay: ${r.replay}`);
  process.exit(1);
}
console.log(`chaos passed (${rows.length} seed${rows.length > 1 ? "s" : ""}: ${rows.map((r) => r.seed).join(", ")})`);
