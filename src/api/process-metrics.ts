// Process CPU, memory and descriptors for /metrics, read on scrape. Not prom-client's
// collectDefaultMetrics: it also starts an event-loop-delay monitor with a 10 ms resolution, which
// woke an idle collector 100 times a second (bench/RESULTS.md, idle wake-ups).
import { readdirSync, readFileSync } from "node:fs";
import { Counter, Gauge, type Registry } from "prom-client";
import { procStatusBytes } from "../platform/proc-status.ts";

const startTimeSeconds = Math.round(Date.now() / 1000 - process.uptime());

function openFds(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return 0;
  }
}

function maxFds(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Registers the process_* metrics (names as prom-client's defaults, with `prefix`). */
export function registerProcessMetrics(registry: Registry, prefix: string): void {
  const cpu = (name: string, help: string, pick: (u: NodeJS.CpuUsage) => number) =>
    new Counter({
      name: prefix + name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(pick(process.cpuUsage()) / 1e6);
      },
    });
  const gauge = (name: string, help: string, get: () => number) =>
    new Gauge({
      name: prefix + name,
      help,
      registers: [registry],
      collect() {
        this.set(get());
      },
    });
  cpu("process_cpu_user_seconds_total", "User CPU time spent, seconds.", (u) => u.user);
  cpu("process_cpu_system_seconds_total", "System CPU time spent, seconds.", (u) => u.system);
  cpu("process_cpu_seconds_total", "User and system CPU time spent, seconds.", (u) => u.user + u.system);
  gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, seconds.", () => startTimeSeconds);
  gauge("process_resident_memory_bytes", "Resident memory size, bytes.", () => Math.max(0, procStatusBytes("VmRSS")) || process.memoryUsage().rss);
  gauge("process_virtual_memory_bytes", "Virtual memory size, bytes.", () => Math.max(0, procStatusBytes("VmSize")));
  gauge("process_open_fds", "Open file descriptors.", openFds);
  gauge("process_max_fds", "Maximum number of open file descriptors.", maxFds);
}
