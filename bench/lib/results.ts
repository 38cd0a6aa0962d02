// Result rows: one printed line per run, the median of the runs per scenario, and the section
// appended to bench/RESULTS.md (append-only: another engineer appends a Chaos section too).
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import type { RunResult } from "./scenarios.ts";
import { TARGETS } from "./scenarios.ts";

const f = (n: number | null, d = 1) => (n === null || !Number.isFinite(n) ? "–" : n.toFixed(d));
const k = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(0)} k` : n.toFixed(0));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The median of every figure over the runs; missing/duplicates/foreign: the worst run. */
export function medianOf(runs: RunResult[]): RunResult {
  const r0 = runs[0]!;
  const med = (key: keyof RunResult) => {
    const xs = runs.map((r) => r[key]).filter((x): x is number => typeof x === "number");
    return xs.length ? median(xs) : null;
  };
  const out = { ...r0 } as Record<string, unknown>;
  for (const key of Object.keys(r0) as Array<keyof RunResult>) {
    if (typeof r0[key] === "number" || r0[key] === null) out[key] = med(key);
  }
  out.missing = Math.max(...runs.map((r) => r.missing));
  out.duplicates = Math.max(...runs.map((r) => r.duplicates));
  out.foreign = Math.max(...runs.map((r) => r.foreign));
  out.exitCode = Math.max(...runs.map((r) => r.exitCode));
  out.load = runs.map((r) => r.load.split(" ")[0]).join("/");
  out.note = runs.map((r) => r.note).filter(Boolean).join(" | ");
  return out as unknown as RunResult;
}

export const HEADER =
  "| scenario | events | wall s | events/s | CPU s (sys) | CPU s / M ev | main thread s | sink CPU s | others CPU s | peak anon MB | peak file MB | disk B / ev (line B) | latency p50/p99/max ms | idle CPU % | wire MB (raw MB) | requests (refused) | missing | dup | exit | load 1m |";
export const RULE = "|" + " --- |".repeat(20);

export function row(r: RunResult): string {
  const lat = r.latencyP50Ms === null ? "–" : `${f(r.latencyP50Ms, 0)} / ${f(r.latencyP99Ms, 0)} / ${f(r.latencyMaxMs, 0)}`;
  const disk = `${f(r.diskBytesPerEvent, 0)} (${f(r.inputBytesPerEvent, 0)})`;
  return `| ${r.scenario} | ${k(r.events)} | ${f(r.wallS)} | ${k(r.evPerS)} | ${f(r.cpuS)} (${f(r.cpuSysS)}) | ${f(r.cpuPerMillion, 2)} | ${f(r.mainCpuS)} | ${f(r.sinkCpuS)} | ${f(r.othersCpuS)} | ${f(r.peakAnonMB, 0)} | ${f(r.peakFileMB, 0)} | ${disk} | ${lat} | ${f(r.idleCpuPct, 2)} | ${f(r.wireMB, 0)} (${f(r.rawMB, 0)}) | ${f(r.requests, 0)} (${f(r.refused, 0)}) | ${r.missing} | ${r.duplicates} | ${r.exitCode} | ${r.load.split(" ")[0]} |`;
}

/** One printed line per run, for the terminal. */
export function line(r: RunResult): string {
  const parts = [
    r.scenario.padEnd(15),
    `${k(r.evPerS).padStart(6)} ev/s`,
    `wall ${f(r.wallS)} s (ready ${f(r.readyS, 2)} s)`,
    `CPU ${f(r.cpuS)} s (sys ${f(r.cpuSysS)}) = ${f(r.cpuPerMillion, 2)} s/M ev (sink ${f(r.sinkCpuS)} s, others ${f(r.othersCpuS)} s)`,
    `threads: ${r.threads}`,
    `disk ${f(r.diskBytesPerEvent, 0)} B/ev (line ${f(r.inputBytesPerEvent, 0)} B)`,
    `peak anon ${f(r.peakAnonMB, 0)} MB file ${f(r.peakFileMB, 0)} MB`,
    `minor faults ${k(r.minorFaults)}`,
  ];
  if (r.latencyP50Ms !== null) parts.push(`latency p50 ${r.latencyP50Ms} p99 ${r.latencyP99Ms} max ${r.latencyMaxMs} ms`);
  if (r.idleCpuPct !== null) parts.push(`idle CPU ${f(r.idleCpuPct, 2)} %`);
  parts.push(`wire ${f(r.wireMB, 0)} MB`, `req ${r.requests} (refused ${r.refused})`, `missing ${r.missing} dup ${r.duplicates}`, `exit ${r.exitCode}`, `load ${r.load}`);
  if (r.note) parts.push(`[${r.note}]`);
  return parts.join("  ");
}

/** Which targets a scenario's median meets: text for the note. */
export function targetVerdicts(r: RunResult): string[] {
  const v: string[] = [];
  const mark = (ok: boolean) => (ok ? "holds" : "MISSED");
  if (r.scenario === "throughput" && r.diskBytesPerEvent !== null) {
    const ratio = r.diskBytesPerEvent / r.inputBytesPerEvent;
    v.push(`disk bytes per event ≤ ${TARGETS.diskPerLine}× the line: ${mark(ratio <= TARGETS.diskPerLine)} (${f(r.diskBytesPerEvent, 0)} B = ${f(ratio, 2)}× ${f(r.inputBytesPerEvent, 0)} B)`);
  }
  v.push(`peak anon ≤ ${TARGETS.peakAnonMB} MB: ${mark(r.peakAnonMB <= TARGETS.peakAnonMB)} (${f(r.peakAnonMB, 0)})`);
  if (r.scenario === "latency" && r.latencyP99Ms !== null) v.push(`p99 ≤ ${TARGETS.latencyP99Ms} ms: ${mark(r.latencyP99Ms <= TARGETS.latencyP99Ms)} (${r.latencyP99Ms})`);
  if (r.scenario === "idle" && r.idleCpuPct !== null) v.push(`idle ≤ ${TARGETS.idleCpuPct} % of a core: ${mark(r.idleCpuPct <= TARGETS.idleCpuPct)} (${f(r.idleCpuPct, 2)})`);
  if (r.missing !== 0) v.push(`MISSING EVENTS: ${r.missing}`);
  return v;
}

/** Targets that compare two scenarios' medians (gzip and docker against throughput), when both ran. */
export function crossVerdicts(medians: RunResult[]): string[] {
  const by = (name: string) => medians.find((m) => m.scenario === name);
  const plain = by("throughput");
  const v: string[] = [];
  if (!plain) return v;
  const mark = (ok: boolean) => (ok ? "holds" : "MISSED");
  const gz = by("gzip");
  if (gz) {
    const share = gz.evPerS / plain.evPerS;
    v.push(`gzip ≥ ${TARGETS.gzipShare * 100} % of throughput's events/s: ${mark(share >= TARGETS.gzipShare)} (${k(gz.evPerS)} / ${k(plain.evPerS)} = ${f(share * 100, 0)} %)`);
  }
  const docker = by("docker");
  if (docker) {
    const ratio = docker.cpuPerMillion / plain.cpuPerMillion;
    v.push(`docker CPU per event ≤ ${TARGETS.dockerCpuRatio}× throughput's: ${mark(ratio <= TARGETS.dockerCpuRatio)} (${f(docker.cpuPerMillion, 2)} / ${f(plain.cpuPerMillion, 2)} = ${f(ratio, 2)}×)`);
  }
  return v;
}

const SECTION_MARK = "## Scenarios (npm run bench)";
const FILE_HEADER = `# Benchmark results
`;
const SECTION_HEADER = `
${SECTION_MARK}

Written by \`npm run bench\` (bench/run.ts; harness in bench/lib/). Each section is one invocation:
the machine, date, commit, the collector binary, and one row per scenario holding the **median of
the runs** (missing/duplicate counts: the worst run). Sections are appended, never rewritten.

Columns: *wall* = collector spawn → arrival at the counting sink of the last event missing; *events/s* =
events / wall; *CPU* = the collector's user+sys seconds (/proc/<pid>/stat) at that moment, with
the kernel's share in parentheses; *sink CPU* = the counting sink process's own CPU seconds;
*peak anon/file* = the highest RssAnon / RssFile sampled every 100 ms (/proc/<pid>/status);
*latency* = arrival at the sink − the line's own timestamp, every event (counting sink);
*idle CPU* = CPU seconds over the idle period / its length; *wire MB* = request bodies as sent
(after gzip), every attempt; *missing/dup* = sequence numbers the sink never got / got twice.
The sink does not zod-validate records (src/dev/mock-messenger.ts does, for tests); it checks
the wire contract (path, key, JSON array, gzip) and scans each record's sequence number. Since
the seventh session (2026-12-06) it counts on a thread at nice 19, after answering, timing every figure by arrival
(bench/lib/sink-verifier.ts): the real messenger runs elsewhere, and counting a gzip body here took
~0.45 of a core from the collector on the two shared cores. Earlier sections counted before
answering, at normal priority (--sink-in-thread runs that way).
`;

export function appendResults(path: string, meta: Record<string, string>, medians: RunResult[], runs: RunResult[], settings: Map<string, string>, notes: string[]): void {
  if (!existsSync(path)) writeFileSync(path, FILE_HEADER);
  if (!readFileSync(path, "utf8").includes(SECTION_MARK)) appendFileSync(path, SECTION_HEADER);
  let s = `\n### ${meta.date} — ${meta.size} size, commit ${meta.commit}\n\n`;
  for (const [key, value] of Object.entries(meta)) if (!["date", "size", "commit"].includes(key)) s += `- ${key}: ${value}\n`;
  s += `\n${HEADER}\n${RULE}\n`;
  for (const m of medians) s += row(m) + "\n";
  s += "\nSettings per scenario:\n\n";
  for (const m of medians) s += `- **${m.scenario}**: ${settings.get(m.scenario) ?? ""}${m.note ? ` — ${m.note}` : ""}\n`;
  s += "\nTargets (issue 20, development machine):\n\n";
  for (const m of medians) s += `- ${m.scenario}: ${targetVerdicts(m).join("; ")}\n`;
  for (const c of crossVerdicts(medians)) s += `- ${c}\n`;
  if (notes.length) s += "\n" + notes.join("\n") + "\n";
  s += "\n<details><summary>Every run</summary>\n\n" + HEADER + "\n" + RULE + "\n";
  for (const r of runs) s += row(r) + "\n";
  s += "\n</details>\n";
  appendFileSync(path, s);
}
