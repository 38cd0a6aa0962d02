// One simulated run, all of it drawn from one seed: the config, the workload, the faults and when
// they happen. The run writes the workload through a schedule of faults, lets the faults end, gives
// the pipeline time to drain (liveness), stops the collector gracefully and checks the invariants.
import { accountingOf } from "../../src/api/accounting.ts";
import { type Config, ConfigSchema } from "../../src/config/schema.ts";
import { POD_SNAPSHOT_FILE } from "../../src/metadata/pod-snapshot.ts";
import { CHECKPOINTS_FILE } from "../../src/source/checkpoints.ts";
import { type CrashBound, CrashMeter, describeCrash, overBound, syncWindowMs } from "./crash-bound.ts";
import { checkRun, type Verdict } from "./invariants.ts";
import { goneUnread, leftUnfinished } from "./loss-bound.ts";
import { HEALTHY, type MessengerFaults } from "./messenger.ts";
import { Rng } from "./rng.ts";
import { ROOT, Workload, type WorkloadOptions, type WrittenLine } from "./workload.ts";
import { heldLineIds, linesNotDurable, type ProcessRecord, World } from "./world.ts";

const START = Date.UTC(2026, 11, 6, 10, 0, 0);
const KEY = "sim-key";
/** After the faults end, the pipeline must have delivered everything within this much virtual time. */
const LIVENESS_MS = 10 * 60_000;

export interface Fault {
  at: number;
  kind: "crash" | "restart" | "outage" | "errors" | "wrong-key" | "disk-full" | "watch-fails" | "busy-cpu";
  /** How long it lasts (ms; crash: the downtime). */
  forMs: number;
}

export interface Scenario {
  seed: number;
  config: Config;
  workload: WorkloadOptions;
  faults: Fault[];
  /** Background messenger trouble for the whole run. */
  background: MessengerFaults;
}

export interface SimResult {
  seed: number;
  violations: string[];
  verdict: Verdict | null;
  faults: Record<string, number>;
  crashes: number;
  /** Duplicate deliveries per crash (crashes only; 0 when none). */
  duplicatesPerCrash: number;
  /** Each crash's duplicates against one sync interval of ring traffic and the wire (issue 17). */
  crashBounds: CrashBound[];
  /** The largest duplicates / bound of the run's crashes held to it (0: none). */
  maxBoundRatio: number;
  /** The crashes held to the bound that went over it (described; printed, not a violation). */
  overBound: string[];
  /** Virtual seconds simulated. */
  virtualSeconds: number;
  steps: number;
  trace: string[];
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => rng.pick(xs);

export function scenarioOf(seed: number): Scenario {
  const rng = new Rng(seed);
  const maxLineBytes = pick(rng, [4096, 16 * 1024, 64 * 1024, 1 << 20]);
  const ringBytes = pick(rng, [64 * 1024, 256 * 1024, 1 << 20, 4 << 20].filter((b) => b >= maxLineBytes + 24 * 1024));
  const config = ConfigSchema.parse({
    dataDir: "/var/lib/pipekit-log-collector",
    source: {
      root: ROOT,
      maxLineBytes,
      partialFlushMs: pick(rng, [300, 1000, 2000, 5000]),
      scanIntervalMs: pick(rng, [500, 2000, 10_000]),
      readSliceBytes: pick(rng, [4096, 16 * 1024, 256 * 1024]),
      maxDeletedHeldBytes: pick(rng, ["1GB", "1GB", "1GB", "64KiB"]),
      watchdogSeconds: pick(rng, [0, 60]),
    },
    metadata: { provider: "apiserver", waitForMetadataSeconds: pick(rng, [30, 60]), deletionGraceSeconds: pick(rng, [0, 60]) },
    buffer: { maxBytes: ringBytes, syncIntervalMs: pick(rng, [50, 250, 1000]) },
    messenger: {
      baseUri: "http://messenger.sim",
      apiKey: KEY,
      batchMaxEvents: pick(rng, [16, 256, 1024]),
      flushIntervalMs: pick(rng, [50, 200, 1000]),
      concurrency: rng.int(1, 4),
      compression: pick(rng, ["none", "none", "gzip"]),
      timeoutMs: pick(rng, [500, 2000, 30_000]),
      retryInitialBackoffMs: pick(rng, [50, 200, 1000]),
      retryMaxBackoffMs: pick(rng, [1000, 5000]),
    },
    shutdownTimeoutMs: pick(rng, [1000, 5000, 30_000]),
    log: { level: "warn" },
  });
  const workload: WorkloadOptions = {
    pods: rng.int(1, 5),
    linesPerContainer: rng.int(20, 400),
    rotateBytes: pick(rng, [2048, 8192, 64 * 1024]),
    splitBytes: pick(rng, [64, 512, 4096]),
    longLineChance: pick(rng, [0, 0.02, 0.1]),
    hugeLineBytes: maxLineBytes,
    hugeLineChance: pick(rng, [0, 0, 0.005]),
    writeIntervalMs: pick(rng, [5, 50, 300]),
    maxFragmentGapMs: Math.floor(config.source.partialFlushMs / 2),
    partialFlushMs: config.source.partialFlushMs,
  };
  const faults: Fault[] = [];
  const horizon = 60_000;
  const n = rng.int(0, 5);
  const kinds: Fault["kind"][] = ["crash", "crash", "restart", "outage", "errors", "wrong-key", "disk-full", "watch-fails", "busy-cpu"];
  for (let i = 0; i < n; i++) {
    const kind = pick(rng, kinds);
    faults.push({ at: rng.int(0, horizon), kind, forMs: kind === "crash" || kind === "restart" ? pick(rng, [0, 500, 5000, 20_000]) : rng.int(1000, 30_000) });
  }
  faults.sort((a, b) => a.at - b.at);
  const background: MessengerFaults = {
    ...HEALTHY,
    error5xx: pick(rng, [0, 0, 0.05, 0.2]),
    error429: pick(rng, [0, 0, 0.02]),
    hang: pick(rng, [0, 0, 0.01]),
    lostAnswer: pick(rng, [0, 0, 0.01]),
    latencyMs: pick(rng, [[1, 10], [5, 100], [50, 500]] as Array<[number, number]>),
  };
  return { seed, config, workload, faults, background };
}

/**
 * kubeletInStep: the chance, before each path operation of the collector (open, stat, readdir,
 * readFile), that the kubelet rotates or compresses a container's files right then, inside the
 * collector's step (by default the world acts only between steps, so the catch-up at a start and
 * a scan each run whole). Drawn from a stream of its own; 0 leaves every seed's run as it was.
 */
export async function simulate(seed: number, opts: { trace?: boolean; kubeletInStep?: number } = {}): Promise<SimResult> {
  const sc = scenarioOf(seed);
  const rng = new Rng(seed ^ 0x5eed);
  const world = new World(seed, rng, sc.config, START, opts.trace ?? false);
  const { scheduler: clock, messenger } = world;
  messenger.faults = { ...sc.background };
  const workload = new Workload(world.fs, clock, rng.child(), sc.workload);
  const inStep = opts.kubeletInStep ?? 0;
  if (inStep > 0) {
    const kubeletRng = new Rng(seed ^ 0x6b756265);
    world.fs.betweenCalls = () => {
      if (!kubeletRng.chance(inStep)) return;
      world.note("kubelet acts between two calls of one collector step");
      workload.kubeletNow(kubeletRng);
    };
  }
  workload.onMetadata = (uid, meta) => {
    if (process.env.SIM_PODS) world.note(`api: pod ${uid} ${meta ? "set" : "deleted"}`);
    world.api.set(uid, meta);
  };
  workload.collectorUp = () => world.process !== null;
  const counts: Record<string, number> = {};
  let active = 0; // faults in progress
  let crashes = 0;
  const down = { since: null as number | null };
  const deletedWhileDown = new Set<number>();
  // Each crash's ring traffic over one sync interval before it (crash-bound.ts), in virtual time.
  const meter = new CrashMeter(
    { windowMs: syncWindowMs(sc.config.buffer.syncIntervalMs, world.syncLatencyMs[1]), concurrency: sc.config.messenger.concurrency, batchMaxEvents: sc.config.messenger.batchMaxEvents },
    START,
    () => {
      const p = world.process;
      return p?.data ? { gen: p.gen, appended: p.data.router.counters.eventsAppended, acked: p.data.tap.counters.ackedOwn + p.data.tap.counters.ackedReplayed } : null;
    },
    () => workload.lines,
    () => world.dataFiles.checkpointSaveRefused,
    () => (world.process ? linesNotDurable(world.process) : new Set()),
  );
  clock.onStep = () => meter.step(clock.peek());
  // When each process scanned (listed the root) with room on the data dir disk to save what the scan
  // saw: the sizes of the files it follows, unread ones too (the loss check).
  const scansWithRoom = new Map<number, number[]>();
  // The processes that stopped gracefully and saved their checkpoints at the end (sizes refreshed),
  // and when: what was written after that save, while the stop went on, it cannot know (seed 49462).
  const savedAtStop = new Map<number, number>();
  let checkpointsWrittenAt = Number.NEGATIVE_INFINITY;
  // The rotated files a first start (no checkpoints saved before it) found at its first scan: history,
  // never read by it nor, once it remembers the young ones, by any later process (docs/source.md,
  // "Done files" and "Known limits"). The scan lists the root and every dir at once.
  const historyAtFirstStart = new Set<number>();
  const listedRoot = new Set<number>();
  world.fs.onListed = (owner, path) => {
    if (path !== ROOT) return;
    if (!listedRoot.has(owner) && world.dataFiles.read(CHECKPOINTS_FILE) === null) for (const f of workload.rotatedFilesNow()) historyAtFirstStart.add(f);
    listedRoot.add(owner);
    if (world.diskFull) return;
    const times = scansWithRoom.get(owner) ?? [];
    times.push(clock.peek());
    scansWithRoom.set(owner, times);
  };

  // The pods some process saved in its pod snapshot (src/metadata/pod-snapshot.ts): what a crashed
  // process learned outlives it only there.
  const snapshotted = new Set<string>();
  const traceWrite = world.dataFiles.onWrite;
  world.dataFiles.onWrite = (name, text) => {
    traceWrite(name, text);
    if (name === CHECKPOINTS_FILE) checkpointsWrittenAt = clock.peek();
    if (name !== POD_SNAPSHOT_FILE) return;
    for (const pod of (JSON.parse(text) as { pods: Array<{ uid: string }> }).pods) snapshotted.add(pod.uid);
  };

  clock.after(0, () => void world.launch());
  workload.start();
  for (const f of sc.faults) {
    clock.after(f.at, () => {
      counts[f.kind] = (counts[f.kind] ?? 0) + 1;
      world.note(`fault: ${f.kind} for ${f.forMs} ms`);
      active++;
      const end = (undo: () => void) =>
        clock.after(f.forMs, () => {
          undo();
          active--;
          world.note(`fault over: ${f.kind}`);
        });
      switch (f.kind) {
        case "crash":
        case "restart": {
          if (!world.process) return void active--;
          // Each brings a process back after its downtime, unless one runs already (a crash during a
          // graceful stop ends both faults; the first to end starts the next process).
          const relaunch = () => {
            if (!world.process) void world.launch();
          };
          if (f.kind === "crash") {
            crashes++;
            meter.crash(clock.peek());
            world.crash();
            down.since = clock.peek();
            end(relaunch);
          } else {
            void world.stop().then(() => {
              down.since = clock.peek();
              end(relaunch);
            });
          }
          return;
        }
        case "outage":
          messenger.faults = { ...messenger.faults, down: true };
          return void end(() => (messenger.faults = { ...messenger.faults, down: false }));
        case "errors":
          messenger.faults = { ...messenger.faults, error5xx: 0.5, error429: 0.1 };
          return void end(() => (messenger.faults = { ...messenger.faults, error5xx: sc.background.error5xx, error429: sc.background.error429 }));
        case "wrong-key":
          messenger.faults = { ...messenger.faults, wrongKey: true };
          return void end(() => (messenger.faults = { ...messenger.faults, wrongKey: false }));
        case "disk-full":
          world.diskFull = true;
          return void end(() => (world.diskFull = false));
        case "watch-fails":
          world.fs.failWatches(Object.assign(new Error("ENOSPC: System limit for number of file watchers reached"), { code: "ENOSPC" }));
          return void end(() => {});
        case "busy-cpu":
          clock.setDrift(50);
          return void end(() => clock.setDrift(0));
      }
    });
  }
  // Files gone while no collector read: none ran, or its source had not started yet (a process opens
  // the ring and lists the pods first; it sees no file before its first scan), or it was stopping
  // gracefully (reading stops at SIGTERM, README "Signals": the bytes it had not read by then are
  // lost with a deleted file it alone held open, and the next process counts them from the sizes
  // the stopped one saved). And those gone while one ran that later crashed: what it had read from
  // them but not yet made durable went with it (the source counts such files as lost).
  // The files freed while a process ran that stopped without saving its checkpoints (the data dir
  // disk full) are forgotten: the next one starts from older checkpoints, as after a crash, but
  // with every record the stopped one appended durable in the ring.
  const forgotten = new Set<number>();
  const freedThisProcess = new Set<number>();
  const freedStopping = new Set<number>();
  const freedAt = new Map<number, number>();
  world.fs.onFree = (file) => {
    freedAt.set(file, clock.peek());
    const p = world.process;
    if (!p?.started || p.stopping) deletedWhileDown.add(file);
    if (p?.stopping) freedStopping.add(file);
    else if (p?.started) freedThisProcess.add(file);
  };
  // A line still being written when a process stopped, with fragments in a file it saw deleted: the
  // line's head lived only in that process's memory, and its next one cannot read it again. So did a
  // line the process held, read whole, in a hand-over the ring never took (full until the shutdown
  // deadline): with fragments in a file freed while it ran and others still on disk, the next process
  // resumes those at the line's pins and delivers its rest alone, as after a crash (docs/source.md,
  // "A graceful stop"; seed 13339). And when the stop was cut short — the ring closed under a
  // hand-over still waiting for room at the shutdown deadline —, so may any line begun before the end
  // whose head's file was freed while the process ran: the source may hold it pending, its end on
  // disk but not read (the loop waited on the ring, and reading on at the stop needs room too; seed
  // 37518).
  const unfinishedAtStop = { lines: new Set<number>(), files: new Set<number>() };
  // Files freed while a process ran that its graceful stop left unfinished (loss-bound.ts).
  const stopLeftUnfinished = new Set<number>();
  let unfinished: WrittenLine[] = [];
  world.onStopping = () => (unfinished = workload.lines.filter((l) => !l.complete));
  // Lines a process held in memory when it stopped gracefully, the ring never having taken them
  // (its hand-over waited for room until the shutdown deadline), and when it ended.
  const heldAtStop: Array<{ ids: number[]; endedAt: number }> = [];
  world.onEnd = (how) => {
    const held = how === "stopped" && world.process ? heldLineIds(world.process) : [];
    if (how === "stopped") heldAtStop.push({ ids: held, endedAt: clock.peek() });
    const heldLines = held.map((id) => workload.byId.get(id)).filter((l): l is WrittenLine => l !== undefined);
    const freedHere = (f: number | undefined) => f !== undefined && (freedThisProcess.has(f) || freedStopping.has(f));
    const cutShort = how === "stopped" && (world.process?.failedHandOvers.length ?? 0) > 0;
    const headless = cutShort ? workload.lines.filter((l) => l.writtenAt <= clock.peek() && freedHere(l.files[0])) : [];
    for (const l of how === "stopped" ? [...unfinished, ...heldLines, ...headless] : []) {
      const freed = l.files.filter(freedHere);
      if (freed.length === 0) continue;
      unfinishedAtStop.lines.add(l.id);
      for (const f of freed) unfinishedAtStop.files.add(f);
    }
    if (how === "crashed") for (const file of freedThisProcess) deletedWhileDown.add(file);
    if (how === "stopped" && world.process) for (const f of leftUnfinished(world.process.gen, world.fs, workload.lines, freedThisProcess, freedStopping)) stopLeftUnfinished.add(f);
    if (how === "stopped" && world.dataFiles.checkpointSaveRefused) for (const file of [...freedThisProcess, ...freedStopping]) forgotten.add(file);
    if (how === "stopped" && !world.dataFiles.checkpointSaveRefused && world.process) savedAtStop.set(world.process.gen, checkpointsWrittenAt);
    freedThisProcess.clear();
    freedStopping.clear();
  };

  // Write, fault, recover: until the workload is done and no fault is in progress.
  const horizon = START + 30 * 60_000;
  await clock.runUntil(horizon, () => workload.finished && active === 0 && world.process?.started === true && clock.peek() > START + 65_000);
  const violations: string[] = [];
  if (!workload.finished || active > 0) violations.push(`the run did not settle: workload finished ${workload.finished}, faults in progress ${active}`);
  // Liveness: with every fault over, everything due must arrive.
  messenger.faults = { ...HEALTHY };
  const deadline = clock.peek() + LIVENESS_MS;
  // Lines of selected, labelled pods not delivered yet (kept up to date as the messenger acknowledges).
  const owed = new Set(workload.lines.filter((l) => l.pod.kind === "argo").map((l) => l.id));
  for (const d of messenger.delivered) owed.delete(idOf(d.record.message));
  messenger.onDelivered = (record) => owed.delete(idOf(record.message));
  let checkAt = 0;
  await clock.runUntil(deadline, () => {
    const p = world.process?.data;
    if (!p || owed.size > 0 || clock.peek() < checkAt) return false;
    checkAt = clock.peek() + 100; // the ring and the files: looked at every 100 ms of virtual time at most
    return p.ring.stats().records === 0 && p.source.fileStatus().every((f) => f.lag === 0);
  });
  const p = world.process?.data;
  const ringLeft = p?.ring.stats().records ?? -1;
  if (p) {
    const sent = p.totals.of(p.sender.get().stats());
    const a = accountingOf({
      router: p.router.counters,
      linesMalformed: p.source.counters.linesMalformed,
      ringAppended: p.ring.stats().appendedRecords,
      ackedOwn: p.tap.counters.ackedOwn,
      ackedReplayed: p.tap.counters.ackedReplayed,
      eventsSent: sent.eventsSent,
      deadLetteredEvents: sent.deadLetteredEvents,
    });
    if (a.imbalance !== 0) violations.push(`accounting imbalance ${a.imbalance} in the last process: ${JSON.stringify(a)}`);
  }
  // The graceful stop runs on virtual time too.
  let stopped = false;
  clock.after(0, () => void world.stop().then(() => (stopped = true)));
  await clock.runUntil(clock.peek() + 120_000, () => stopped);
  if (!stopped) violations.push("the graceful stop did not finish within 120 s");
  for (const r of world.processes) for (const problem of r.problems) violations.push(`process ${r.gen}: ${problem}`);
  if (ringLeft > 0) violations.push(`liveness: ${ringLeft} records still in the ring ${LIVENESS_MS / 1000} s after the faults ended`);
  violations.push(...messenger.violations);
  const bytesLost = world.processes.reduce((s, r) => s + (r.counters.bytesLost ?? 0), 0);
  const gone = goneUnread([deletedWhileDown, forgotten, unfinishedAtStop.files, stopLeftUnfinished], world.fs.closedUnread, { createdAs: world.fs.createdAs, peakSize: world.fs.peakSize, gzOf: workload.gzOf, freedAt });
  const verdict = checkRun(
    workload,
    messenger.delivered,
    sc.config.source.maxLineBytes,
    {
      deletedWhileDown,
      neverOpened: world.fs.neverOpenedFreed,
      historyAtFirstStart,
      forgotten,
      unfinishedAtStop,
      // Held when a process stopped, in files no later process could read (freed by its end: given
      // up over maxDeletedHeldBytes while the lines waited, or deleted and closed with it).
      heldAtStop: new Set(heldAtStop.flatMap(({ ids, endedAt }) => ids.filter((id) => workload.byId.get(id)?.files.every((f) => (freedAt.get(f) ?? Infinity) <= endedAt)))),
      bytesLostCounted: bytesLost,
      overCount: { counted: world.processes.map((r) => ({ gen: r.gen, endedAt: r.endedAt ?? Infinity, bytesLost: r.counters.bytesLost ?? 0, losses: r.losses })), ...gone },
      givenUp: world.fs.closedUnread,
      // Written while a process ran that scanned after it, with room to save (a scan learns the sizes
      // of the files followed, unread ones too, and saves them), or that then stopped and saved its
      // checkpoints (docs/simulation.md, "Invariants").
      knowable: (line) =>
        world.processes.some((r) => {
          if (r.startedAt > line.writtenAt) return false;
          if (line.writtenAt < (savedAtStop.get(r.gen) ?? Number.NEGATIVE_INFINITY)) return true;
          return (scansWithRoom.get(r.gen) ?? []).some((at) => at > line.writtenAt);
        }),
      // A pod created and deleted while no collector ran (or one was stopping: its last save may come
      // before the pod does; or the one that ran ended without saving the pod in its snapshot —
      // crashed 31 ms after the pod came or with the data dir disk full, seeds 1240, 1702; stopped
      // with the disk full, its save at the stop refused, seed 46090): no process could learn its
      // labels. A pod
      // deleted before any collector opened a file of the line, its tombstone's grace over: it may
      // be forgotten by then (docs/metadata.md; files not opened yet do not keep it).
      metadataKnowable: (line) => {
        const pod = line.pod;
        const outlived = (r: ProcessRecord) => savedAtStop.has(r.gen) || snapshotted.has(pod.uid);
        const learnt = (r: ProcessRecord) => r.startedAt < pod.deletedAt && (r.stoppingAt ?? r.endedAt ?? Infinity) > pod.metaAt && outlived(r);
        if (!world.processes.some(learnt)) return false;
        const forgetAt = pod.deletedAt + sc.config.metadata.deletionGraceSeconds * 1000;
        return line.files.some((f) => (world.fs.firstOpenedAt.get(f) ?? Number.NEGATIVE_INFINITY) < forgetAt);
      },
    },
    crashes > 0 || messenger.stats.lostAnswers > 0 || counts["restart"] !== undefined,
  );
  violations.push(...verdict.violations);
  // Each crash's duplicates within issue 17's bound (docs/simulation.md, "Crash duplicates").
  const metered = workload.lines.map((l) => ({ id: l.id, writtenAt: l.writtenAt, source: `${l.pod.uid}/${l.container}/${l.restart}`, split: l.content.length > sc.workload.splitBytes, firstWrite: l.firstWrite, lastWrite: l.lastWrite }));
  const crashBounds = meter.bounds(messenger.delivered, (d) => idOf(d.record.message), metered);
  const overBoundCrashes = crashBounds.map((b) => overBound(b, meter.terms)).filter((v): v is string => v !== null);
  violations.push(...overBoundCrashes);
  for (const b of crashBounds) world.note(describeCrash(b, meter.terms, b.duplicates > b.bound ? "OVER the bound" : "within the bound"));
  return {
    seed,
    violations,
    verdict,
    faults: counts,
    crashes,
    duplicatesPerCrash: crashes > 0 ? verdict.duplicates / crashes : 0,
    crashBounds,
    maxBoundRatio: crashBounds.reduce((m, b) => (b.checkpointsStale ? m : Math.max(m, b.duplicates / b.bound)), 0),
    overBound: overBoundCrashes,
    virtualSeconds: (clock.peek() - START) / 1000,
    steps: clock.steps,
    trace: world.trace.map((t) => `${((t.at - START) / 1000).toFixed(3).padStart(9)} s  ${t.what}`),
  };
}

/** The line id a record's message starts with (-1: none). */
function idOf(message: unknown): number {
  const m = /^L(\d+);/.exec(String(message));
  return m ? Number(m[1]) : -1;
}
