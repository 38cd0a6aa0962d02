// What the runner reads about the collector process from /proc (Linux): CPU seconds (user+sys,
// /proc/<pid>/stat fields 14 and 15) and resident memory split into anonymous and file-backed
// (/proc/<pid>/status RssAnon, RssFile, RssShmem), sampled on a timer for the peaks.
import { readdirSync, readFileSync } from "node:fs";

const TICKS = 100; // USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK)

export interface CpuTimes {
  user: number;
  sys: number;
  /** Minor page faults so far (mapped-file first touches, fresh anonymous pages). */
  minflt: number;
}

export function readCpu(pid: number): CpuTimes | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces: fields are counted after its closing paren.
    const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { user: Number(rest[11]) / TICKS, sys: Number(rest[12]) / TICKS, minflt: Number(rest[7]) };
  } catch {
    return null;
  }
}

export interface MemSample {
  rssAnon: number;
  rssFile: number;
  rssShmem: number;
}

export function readMem(pid: number): MemSample | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? 0) * 1024;
    return { rssAnon: kb("RssAnon"), rssFile: kb("RssFile"), rssShmem: kb("RssShmem") };
  } catch {
    return null;
  }
}

/** CPU seconds (user+sys) per thread so far, summed by thread name; the main thread (tid = pid) is "main". */
export function readThreadCpu(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = Number(tid) === pid ? "main" : s.slice(s.indexOf("(") + 1, s.lastIndexOf(")")).replace(/[ :]?\d+$/, "");
      const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
      byName.set(name, (byName.get(name) ?? 0) + (Number(rest[11]) + Number(rest[12])) / TICKS);
    }
  } catch {}
  return byName;
}

/** Threads' CPU seconds as text, largest first: "main 3.1, HTTP Client 0.4, …". */
export function formatThreadCpu(t: Map<string, number>, top = 5): string {
  return [...t.entries()]
    .filter(([, s]) => s > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([n, s]) => `${n} ${s.toFixed(2)}`)
    .join(", ");
}

/** Bytes the process caused to be written to storage so far (/proc/<pid>/io write_bytes: page cache writeback it dirtied). */
export function readWriteBytes(pid: number): number | null {
  try {
    return Number(/^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? NaN);
  } catch {
    return null;
  }
}

/** The machine's busy and total CPU jiffies so far (/proc/stat "cpu" line), for how loaded it was over a run. */
export function readMachineCpu(): { busy: number; total: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Context switches so far, over every thread of the process (wake-ups while idle). */
export function readSwitches(pid: number): Map<string, number> {
  const byThread = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const s = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      const name = /^Name:\s+(.*)$/m.exec(s)?.[1]?.trim() ?? "?";
      const n = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      const key = `${name}#${tid}`;
      byThread.set(key, (byThread.get(key) ?? 0) + n);
    }
  } catch {}
  return byThread;
}

/** Switches per second between two readings, summed by thread name, largest first. */
export function switchRates(a: Map<string, number>, b: Map<string, number>, secs: number): { total: number; top: string } {
  const byName = new Map<string, number>();
  let total = 0;
  for (const [key, n] of b) {
    const d = n - (a.get(key) ?? 0);
    total += d;
    const name = key.slice(0, key.lastIndexOf("#"));
    byName.set(name, (byName.get(name) ?? 0) + d);
  }
  const top = [...byName.entries()].sort((x, y) => y[1] - x[1]).slice(0, 4).map(([n, d]) => `${n} ${(d / secs).toFixed(0)}`).join(", ");
  return { total: total / secs, top };
}

/** Samples memory every `everyMs` and keeps the peaks (and the last CPU reading while alive). */
export class ProcSampler {
  peakAnon = 0;
  peakFile = 0;
  peakShmem = 0;
  peakTotal = 0;
  samples = 0;
  lastCpu: CpuTimes | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly pid: number, private readonly everyMs = 100) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  sample(): void {
    const m = readMem(this.pid);
    const c = readCpu(this.pid);
    if (c) this.lastCpu = c;
    if (!m) return;
    this.samples++;
    this.peakAnon = Math.max(this.peakAnon, m.rssAnon);
    this.peakFile = Math.max(this.peakFile, m.rssFile);
    this.peakShmem = Math.max(this.peakShmem, m.rssShmem);
    this.peakTotal = Math.max(this.peakTotal, m.rssAnon + m.rssFile + m.rssShmem);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

export function cpuSeconds(c: CpuTimes | null): number {
  return c ? c.user + c.sys : 0;
}

/** The 1-minute load average and the machine, for the results. */
export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

export function machine(): string {
  let cpu = "?";
  try {
    cpu = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "?";
  } catch {}
  const cores = navigator.hardwareConcurrency;
  let memGB = "?";
  try {
    memGB = (Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1]) / 1024 / 1024).toFixed(1);
  } catch {}
  let kernel = "?";
  try {
    kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  } catch {}
  return `${cpu}, ${cores} cores, ${memGB} GiB RAM, Linux ${kernel}`;
}
