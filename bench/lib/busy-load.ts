// CPU contention for the chaos run (issue 17): one busy-loop process per core, so that the collector,
// the writer and the messenger are descheduled at random and timing-dependent paths (a partial line's
// flush timeout, a sync racing a read) get exercised as on a loaded node.
// The loops end with stop(), on the harness's exit or Ctrl-C, and on their own when the harness dies
// without a word (SIGKILL): each checks every 100 ms that its parent is still the one that started it.
import { availableParallelism } from "node:os";

// The parent's pid is written in, not read at start: a harness killed before a loop started must end it too.
const loop = (parent: number) => `
const parent = ${parent};
for (;;) {
  const until = Date.now() + 100;
  while (Date.now() < until) {}
  if (process.ppid !== parent) process.exit(0);
}
`;

export interface BusyLoad {
  readonly pids: number[];
  /** Kills the loops and waits for them to exit; safe to call twice. */
  stop(): Promise<void>;
}

/** Starts `count` busy loops (default: one per core), spawned with Bun. */
export function startBusyLoad(count = availableParallelism()): BusyLoad {
  const procs = Array.from({ length: count }, () =>
    Bun.spawn([process.execPath, "-e", loop(process.pid)], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }),
  );
  const killAll = () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  };
  // Ctrl-C or a SIGTERM of the harness: end the loops, then exit as the signal would have.
  const onSignal = (signal: NodeJS.Signals) => {
    killAll();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("exit", killAll);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let stopped: Promise<void> | null = null;
  return {
    pids: procs.map((p) => p.pid),
    stop() {
      stopped ??= (async () => {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        killAll();
        await Promise.all(procs.map((p) => p.exited));
        process.off("exit", killAll);
      })();
      return stopped;
    },
  };
}

/** Runs `body` with one busy loop per core (or `count`), ending them however `body` ends. */
export async function withBusyLoad<T>(body: (load: BusyLoad) => Promise<T>, count?: number): Promise<T> {
  const load = startBusyLoad(count);
  try {
    return await body(load);
  } finally {
    await load.stop();
  }
}
