// `npm run chaos` (issue 9): the full reliability run against the real executable
// (dist/pipekit-log-collector when built, or PIPEKIT_COLLECTOR_BIN, else bun src/main.ts).
//   phase 1: continuous writing with kubelet rotation, 20 % 503s and hanging requests, ≥ 10 SIGKILLs
//            at random moments (requests in flight, files lagging), each followed by an immediate restart;
//   phase 2: the messenger down for a full minute while writing goes on (the ring fills, reading
//            pauses, files rotate and are deleted underneath), then everything must arrive.
// Prints the figures and appends them to bench/RESULTS.md ("Chaos" section). Exit 1 on any loss.
//   phase 3 (--skip-outage-crash to leave out): a SIGKILL during an outage, after rotation deleted files that only the
//            collector held open: their unread part is gone for good (inherent); the run reports how much,
//            and fails unless the collector counted it as lost bytes (about what the lost events took).
//   bun bench/chaos.ts [--seed N] [--events N] [--rate N] [--kills N] [--outage-seconds N] [--skip-outage] [--skip-outage-crash] [--no-results]
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type ChaosResult, describe, runChaos } from "./lib/chaos-run.ts";

const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    events: { type: "string" },
    rate: { type: "string" },
    kills: { type: "string" },
    "outage-seconds": { type: "string" },
    "no-results": { type: "boolean" },
    "skip-outage": { type: "boolean" },
    "skip-outage-crash": { type: "boolean" },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const events = Number(values.events ?? 2_000_000);
const rate = Number(values.rate ?? 20_000);
const kills = Number(values.kills ?? 12);
const outageSeconds = Number(values["outage-seconds"] ?? 60);
console.log(`chaos seed ${seed} — replay: bun bench/chaos.ts --seed ${seed} --events ${events} --rate ${rate} --kills ${kills}`);

const writeSeconds = events / rate;
const gap = (writeSeconds * 1000) / (kills + 1);
const kill = await runChaos({
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
  preferDist: true,
  drainTimeoutMs: 300_000,
  log: (l) => console.log(l),
});
console.log(`\n== phase 1: kills ==\n${describe(kill)}\n`);

let outage: ChaosResult | null = null;
if (!values["skip-outage"]) {
  outage = await runChaos({
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
    preferDist: true,
    drainTimeoutMs: 300_000,
    log: (l) => console.log(l),
  });
  console.log(`\n== phase 2: ${outageSeconds} s outage ==\n${describe(outage)}\n`);
}

let outageCrash: ChaosResult | null = null;
if (!values["skip-outage-crash"]) {
  outageCrash = await runChaos({
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
    preferDist: true,
    log: (l) => console.log(l),
  });
  console.log(`\n== phase 3: SIGKILL during an outage ==\n${describe(outageCrash)}`);
  console.log(`lost with the deleted files: ${outageCrash.missing} events (${outageCrash.writer.bytes ? Math.round((outageCrash.missing * outageCrash.writer.bytes) / outageCrash.writer.events) : 0} bytes of log lines); counted by the collector as lost: ${outageCrash.bytesLost} bytes${outageCrash.missing > 0 && outageCrash.bytesLost === 0 ? " (UNCOUNTED LOSS)" : ""}\n`);
}

if (!values["no-results"]) {
  const file = join(import.meta.dir, "RESULTS.md");
  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  let out = "";
  const hasSection = existsSync(file) && readFileSync(file, "utf8").includes("\n## Chaos\n");
  if (!hasSection) {
    out += `${existsSync(file) ? "\n" : "# Benchmark results\n\n"}## Chaos\n\n`;
    out += "`npm run chaos` (bench/chaos.ts): real collector process, kubelet-style rotation with gzip and deletion, mock messenger with 20 % 503 and 2 % hanging requests, SIGKILL at random moments with an immediate restart; then a messenger outage with a small ring. Duplicates are attributed to the crash that preceded the run they arrived in; the figure in brackets is how many seconds of one stream’s writing the duplicated sequences span. One-sync bound: one sync interval of reads and acks (×2 for sampling) plus the requests on the wire — exceeded whenever a hanging or failing batch holds the ring’s contiguous-ack prefix back (the acknowledged records behind it are resent after a crash).\n\n";
    out += "| date (UTC) | seed | collector | events | kills | missing | duplicates per crash: n (s of writing replayed) | one-sync bounds exceeded | outage | wall | result |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  }
  const perCrash = kill.crashes.map((c) => `${c.duplicates} (${c.duplicateSpanSeconds} s)`).join(", ");
  const exceeded = kill.crashes.filter((c) => c.duplicates > c.syncBound).length;
  const o = outage?.outage;
  const outageCell = outage && o ? `${o.durationMs / 1000} s, ring 4 MiB full ${(o.ringFullMs / 1000).toFixed(0)} s, ${outage.events} events, missing ${outage.missing}, dup ${outage.duplicates}` : "skipped";
  const ok = kill.failures.length === 0 && (!outage || outage.failures.length === 0) && (!outageCrash || outageCrash.failures.length === 0);
  const crashCell = outageCrash ? `; SIGKILL during an outage: ${outageCrash.missing} events lost with deleted files, ${outageCrash.bytesLost} B counted lost` : "";
  out += `| ${date} | ${seed} | ${collectorLabel(kill.command)} | ${kill.events} | ${kill.crashes.length} | ${kill.missing} | ${perCrash} | ${exceeded} of ${kill.crashes.length} | ${outageCell}${crashCell} | ${(kill.wallMs / 1000).toFixed(0)} s + ${outage ? (outage.wallMs / 1000).toFixed(0) : 0} s + ${outageCrash ? (outageCrash.wallMs / 1000).toFixed(0) : 0} s | ${ok ? "pass" : "FAIL"} |\n`;
  if (hasSection) insertIntoChaosSection(file, out);
  else appendFileSync(file, out);
  console.log(`added to the Chaos section of ${file}`);
}
/**
 * Adds a row at the end of the Chaos table. Other sections (the benchmark's) may follow it in the same
 * file: their lines are left byte for byte as they are; only a line is inserted after the last row.
 */
function insertIntoChaosSection(file: string, row: string): void {
  const before = readFileSync(file, "utf8");
  const lines = before.split("\n");
  const start = lines.indexOf("## Chaos");
  let end = start + 1;
  while (end < lines.length && !lines[end]!.startsWith("## ")) end++;
  let last = end - 1;
  while (last > start && !lines[last]!.startsWith("|")) last--;
  lines.splice(last + 1, 0, row.replace(/\n$/, ""));
  // Written only if nobody changed the file meanwhile (another engineer appends to it too).
  if (readFileSync(file, "utf8") !== before) throw new Error(`${file} changed while the row was being added; add it again`);
  writeFileSync(file, lines.join("\n"));
}

function collectorLabel(command: string): string {
  if (command.includes("src/main.ts")) return "bun src/main.ts";
  // A compiled executable: its own --version names the commit it was built from.
  const r = Bun.spawnSync([command, "--version"], { stdout: "pipe", stderr: "pipe" });
  return `executable ${r.stdout.toString().trim().replace(/^pipekit-log-collector /, "")}`;
}

const failed = [...kill.failures, ...(outage?.failures ?? []), ...(outageCrash?.failures ?? [])];
if (failed.length) {
  console.log(`chaos FAILED (seed ${seed}): ${failed.join("; ")}`);
  process.exit(1);
}
console.log(`chaos passed (seed ${seed})`);
