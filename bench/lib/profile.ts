// Summarises a V8/JSC .cpuprofile (as `bun --cpu-prof` writes it): self time per function,
// aggregated by name + file + line, and inclusive time for the same keys.
//
//   bun bench/lib/profile.ts FILE.cpuprofile [--top 30]
import { readFileSync } from "node:fs";
import { relative } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The sampling interval (--cpu-prof-interval, 1 ms by default): the 10th percentile of the deltas, as idle gaps only lengthen them. */
function intervalUs(p: CpuProfile): number {
  const d = p.timeDeltas.filter((x) => x > 0).sort((a, b) => a - b);
  return d.length ? Math.max(100, d[Math.floor(d.length / 10)]!) : 1000;
}

export interface FunctionTime {
  name: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

export function summarise(path: string, root = process.cwd()): { totalMs: number; functions: FunctionTime[] } {
  const p = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfById = new Map<number, number>();
  let totalUs = 0;
  // Each sample stands for one sampling interval of JS running on the main thread. Time deltas
  // are NOT used as weights: while the thread is idle no samples are taken, and the next sample's
  // delta spans the whole idle gap (a 1 s wait would be charged to whatever ran next).
  const interval = intervalUs(p);
  for (let i = 0; i < p.samples.length; i++) {
    selfById.set(p.samples[i]!, (selfById.get(p.samples[i]!) ?? 0) + interval);
    totalUs += interval;
  }
  const key = (n: ProfileNode) => {
    const f = n.callFrame;
    const file = f.url ? relative(root, f.url.replace(/^file:\/\//, "")) : "";
    return `${f.functionName || "(anonymous)"} ${file ? `${file}:${f.lineNumber + 1}` : ""}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (const [id, us] of selfById) {
    const n = byId.get(id)!;
    self.set(key(n), (self.get(key(n)) ?? 0) + us);
    // Inclusive: every distinct function on the stack gets the sample once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + us);
    }
  }
  const functions = [...self.entries()]
    .map(([name, us]) => ({ name, selfMs: us / 1000, selfPct: (us / totalUs) * 100, totalMs: (total.get(name) ?? 0) / 1000, totalPct: ((total.get(name) ?? 0) / totalUs) * 100 }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs: totalUs / 1000, functions };
}

/** The top functions by inclusive time (only those with a source file: the collector's own code). */
export function topInclusive(path: string, n: number, root = process.cwd()): FunctionTime[] {
  const { functions } = summarise(path, root);
  return functions.filter((f) => /\.ts:\d+$/.test(f.name)).sort((a, b) => b.totalMs - a.totalMs).slice(0, n);
}

export function formatTop(path: string, n = 30, root = process.cwd()): string {
  const { totalMs, functions } = summarise(path, root);
  const lines = [`profile ${relative(root, path)}: ${(totalMs / 1000).toFixed(1)} s of JS on the main thread (samples × interval; idle excluded)`, "self %   self ms  incl %  function"];
  for (const f of functions.slice(0, n)) lines.push(`${f.selfPct.toFixed(1).padStart(6)} ${f.selfMs.toFixed(0).padStart(9)} ${f.totalPct.toFixed(1).padStart(7)}  ${f.name}`);
  lines.push("", "top inclusive (collector code):", "incl %   incl ms  self %  function");
  for (const f of topInclusive(path, n, root)) lines.push(`${f.totalPct.toFixed(1).padStart(6)} ${f.totalMs.toFixed(0).padStart(9)} ${f.selfPct.toFixed(1).padStart(7)}  ${f.name}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: bun bench/lib/profile.ts FILE.cpuprofile [--top N]");
    process.exit(2);
  }
  const i = process.argv.indexOf("--top");
  console.log(formatTop(file, i > 0 ? Number(process.argv[i + 1]) : 30));
}
