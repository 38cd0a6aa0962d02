// `npm run bench` — the end-to-end benchmark of issue 10: generated node → real collector process
// → counting sink process, one printed row per run and per scenario (median of the runs).
//
//   npm run bench                              # every scenario, full size, 3 runs each
//   npm run bench -- throughput latency        # some scenarios
//   npm run bench -- --quick                   # reduced sizes (proves the harness in a few minutes)
//   npm run bench -- --runs 1 --write          # append the medians to bench/RESULTS.md (--results FILE: elsewhere)
//   npm run bench -- throughput --cpu-prof     # bun --cpu-prof src/main.ts; prints top self time
//   npm run bench -- chain batch ring          # micro-benchmarks: bench/<name>.bench.ts
//   npm run bench -- --build                   # compile the current tree into bench/out/bin first
//   npm run bench -- throughput --set messenger.concurrency=8 --set buffer.syncIntervalMs=200
//   npm run bench -- throughput gzip --sink-in-thread   # the sink counts before answering (see bench/lib/sink-verifier.ts)
//
// The collector is dist/pipekit-log-collector (npm run build) when present, else bun src/main.ts;
// PIPEKIT_COLLECTOR_BIN names another executable. Work files go to bench/out/work and are removed
// after each run.
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { addOverride, collectorCommand, collectorVersion, gitCommit, OUT, ROOT, sinkMode } from "./lib/harness.ts";
import { loadAverage, machine } from "./lib/proc.ts";
import { formatTop } from "./lib/profile.ts";
import { appendResults, crossVerdicts, HEADER, line, medianOf, row, RULE, targetVerdicts } from "./lib/results.ts";
import { type RunResult, SCENARIOS } from "./lib/scenarios.ts";

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const value = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : def;
};
const valued = new Set(["--runs", "--seed", "--note", "--results", "--set"]);
const names = argv.filter((a, i) => !a.startsWith("--") && !valued.has(argv[i - 1] ?? ""));
const full = !flag("quick");
const runs = Number(value("runs", "3"));
const seed = Number(value("seed", "1"));
const cpuProf = flag("cpu-prof");
const write = flag("write");

if (flag("sink-in-thread")) process.env.BENCH_SINK_IN_THREAD = "1";
argv.forEach((a, i) => {
  if (a === "--set" && argv[i + 1]) addOverride(argv[i + 1]!);
});

const micro = names.filter((n) => existsSync(join(ROOT, "bench", `${n}.bench.ts`)));
const unknown = names.filter((n) => !micro.includes(n) && !SCENARIOS.some((s) => s.name === n));
if (unknown.length) {
  const benches = readdirSync(join(ROOT, "bench")).filter((f) => f.endsWith(".bench.ts")).map((f) => f.replace(".bench.ts", ""));
  console.error(`unknown part(s): ${unknown.join(", ")}\nscenarios: ${SCENARIOS.map((s) => s.name).join(", ")}\nmicro-benchmarks: ${benches.join(", ")}`);
  process.exit(2);
}

for (const m of micro) {
  console.log(`\n== micro-benchmark bench/${m}.bench.ts`);
  const p = Bun.spawnSync([process.execPath, join(ROOT, "bench", `${m}.bench.ts`)], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (p.exitCode !== 0) process.exitCode = 1;
}

if (flag("build")) {
  const b = Bun.spawnSync([process.execPath, join(ROOT, "scripts/build.ts"), "--host", "--outdir", join(OUT, "bin")], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (b.exitCode !== 0) process.exit(1);
  process.env.PIPEKIT_COLLECTOR_BIN = join(OUT, "bin/pipekit-log-collector");
}

const chosen = names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));
if (chosen.length) {
  const cmd = collectorCommand(cpuProf ? join(OUT, "prof") : undefined);
  const meta: Record<string, string> = {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    size: full ? "full" : "reduced (--quick)",
    commit: gitCommit(),
    machine: machine(),
    collector: `${cmd.kind} — ${cpuProf ? "(profiled)" : collectorVersion()}`,
    runtime: `Bun ${Bun.version}`,
    messenger: sinkMode(),
    runs: `${runs} per scenario (median)`,
    "load average at start": loadAverage(),
  };
  if (argv.includes("--note")) meta.note = value("note", "");
  const sets = argv.flatMap((a, i) => (a === "--set" && argv[i + 1] ? [argv[i + 1]!] : []));
  if (sets.length) meta["config overrides (--set)"] = sets.join(", ");
  console.log(`pipekit-log-collector benchmark — ${meta.size}, ${meta.runs}`);
  for (const [k, v] of Object.entries(meta)) console.log(`  ${k}: ${v}`);
  const all: RunResult[] = [];
  const medians: RunResult[] = [];
  const settings = new Map<string, string>();
  for (const s of chosen) {
    settings.set(s.name, s.settings({ full }));
    console.log(`\n== ${s.name}: ${s.about}\n   ${s.settings({ full })}`);
    const mine: RunResult[] = [];
    for (let i = 0; i < runs; i++) {
      const profDir = cpuProf ? join(OUT, "prof", `${s.name}-${Date.now()}`) : undefined;
      try {
        const r = await s.run({ full }, { seed: seed + i, cpuProfDir: profDir, log: (m) => console.log(m) });
        mine.push(r);
        all.push(r);
        console.log(`  run ${i + 1}: ${line(r)}`);
      } catch (err) {
        console.log(`  run ${i + 1}: FAILED ${(err as Error).stack ?? err}`);
        process.exitCode = 1;
      }
      if (profDir && existsSync(profDir)) {
        const prof = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
        if (prof) console.log("\n" + formatTop(join(profDir, prof), 30, ROOT) + "\n");
        else console.log(`  (no .cpuprofile in ${profDir}: ${readdirSync(profDir).join(", ")})`);
      }
    }
    if (mine.length) {
      const m = medianOf(mine);
      medians.push(m);
      console.log(`  median: ${line(m)}`);
      console.log(`  targets: ${targetVerdicts(m).join("; ")}`);
    }
  }
  console.log(`\n${HEADER}\n${RULE}`);
  for (const m of medians) console.log(row(m));
  for (const c of crossVerdicts(medians)) console.log(`target: ${c}`);
  if (write && medians.length) {
    appendResults(resolve(value("results", join(ROOT, "bench/RESULTS.md"))), { ...meta, "load average at end": loadAverage() }, medians, all, settings, []);
    console.log(`\nappended to ${value("results", "bench/RESULTS.md")}`);
  }
  rmSync(join(OUT, "work"), { recursive: true, force: true });
}
