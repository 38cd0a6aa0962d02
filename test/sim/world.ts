// One simulated node: the file system the containers write to, the data dir's disk, the API server,
// the messenger, and the collector process running the production data path (src/data-path.ts) on
// them. The process can be stopped gracefully or crash: a crash drops everything it scheduled and
// every descriptor it held, and the data dir keeps only what its disk had made durable (pages
// written since the last completed datasync may be lost or torn).
import type { Config } from "../../src/config/schema.ts";
import { type DataPath, openDataPath, startDataPath } from "../../src/data-path.ts";
import { Cleanups } from "../../src/lifecycle/cleanups.ts";
import type { Logger, LogFields } from "../../src/log.ts";
import type { Fetch } from "../../src/sink/types.ts";
import type { Lines } from "../../src/source/types.ts";
import { type DiskBehaviour, MemoryDisk } from "../support/memory-disk.ts";
import { SimMessenger } from "./messenger.ts";
import type { Rng } from "./rng.ts";
import { Scheduler } from "./scheduler.ts";
import { SimApiServer, SimDataFiles, SimMetadataProvider } from "./sim-edges.ts";
import { SimFs } from "./sim-fs.ts";

/** SIM_LOG=1: the collector's info and debug lines go into the trace too (replaying one seed). */
const VERBOSE = process.env.SIM_LOG === "1";

export interface TraceEntry {
  at: number;
  what: string;
}

/** What the collector processes did, per process, for the checks. */
export interface ProcessRecord {
  gen: number;
  startedAt: number;
  endedAt: number | null;
  /** When a graceful stop began (SIGTERM): reading stops, and what the API says from then on may miss the last save. */
  stoppingAt: number | null;
  how: "running" | "stopped" | "crashed";
  counters: Record<string, number>;
  /**
   * The losses it counted, as its warnings place them (`path`, and `bytesLost` or `unreadBytes`):
   * which file, or checkpoint's live path, each came from (the over-count check, loss-bound.ts).
   */
  losses: Array<{ path: string; bytes: number }>;
  accounting: { imbalance: number } | null;
  problems: string[];
}

export class SimProcess {
  data: DataPath | null = null;
  readonly cleanups: Cleanups;
  readonly problems: string[] = [];
  started = false;
  /** A graceful stop is under way. */
  stopping = false;
  /**
   * The source's hand-overs to the router not resolved yet (waiting for room in the ring): lines the
   * process holds in memory.
   */
  readonly emitsInFlight = new Set<Lines>();
  /**
   * The ids of the lines of hand-overs that failed (the ring closed under them at a graceful stop),
   * one entry per hand-over: the source may reuse a failed hand-over's batch for another (a stop
   * reads on after its loop is out, docs/source.md "A graceful stop"), so they are kept apart from it.
   */
  readonly failedHandOvers: number[][] = [];
  /**
   * The ring sequence number of the hand-over that first took each line, by line id: the source
   * marks its files' checkpoints with it, and they move over the line only once the ring has made
   * that number durable (the crash bound's lines pending at a crash).
   */
  readonly appendedSeq = new Map<number, number>();

  constructor(
    readonly gen: number,
    readonly log: Logger,
  ) {
    this.cleanups = new Cleanups(log);
  }
}

export class World {
  readonly scheduler: Scheduler;
  readonly fs: SimFs;
  readonly api = new SimApiServer();
  readonly messenger: SimMessenger;
  readonly dataFiles: SimDataFiles;
  disk: MemoryDisk;
  diskFull = false;
  /** Virtual ms a datasync takes. */
  syncLatencyMs: [number, number] = [1, 20];
  process: SimProcess | null = null;
  readonly processes: ProcessRecord[] = [];
  readonly trace: TraceEntry[] = [];
  private gen = 0;
  private crashedWhileStopping: (() => void) | null = null;
  /** Called when a process ends (before its descriptors close). */
  onEnd: (how: "stopped" | "crashed") => void = () => {};
  /** Called when a graceful stop begins (reading stops). */
  onStopping: () => void = () => {};

  constructor(
    readonly seed: number,
    readonly rng: Rng,
    readonly config: Config,
    startMs: number,
    private readonly traceOn: boolean,
  ) {
    this.scheduler = new Scheduler(startMs, rng.child());
    this.fs = new SimFs(this.scheduler, rng.child());
    this.messenger = new SimMessenger(this.scheduler, rng.child(), config.messenger.apiKey ?? "");
    this.dataFiles = new SimDataFiles(() => this.diskFull);
    this.disk = new MemoryDisk("/var/lib/pipekit-log-collector", this.diskBehaviour(0));
    this.fs.note = (what) => this.note(what);
    if (process.env.SIM_CHECKPOINTS === "1") this.dataFiles.onWrite = (name, text) => this.note(`${name}: ${text.slice(0, 200000)}`);
  }

  note(what: string): void {
    if (this.traceOn) this.trace.push({ at: this.scheduler.peek(), what });
  }

  /** Starts a collector process (the previous one must be gone). */
  async launch(): Promise<void> {
    if (this.process) throw new Error("a collector is already running");
    const gen = ++this.gen;
    const clock = this.scheduler.clockFor(gen);
    const losses: ProcessRecord["losses"] = [];
    const p = new SimProcess(gen, this.logger(gen, losses));
    this.process = p;
    this.disk = this.disk.crash(() => true, this.diskBehaviour(gen)); // the same disk, seen by this process
    const record: ProcessRecord = { gen, startedAt: this.scheduler.peek(), endedAt: null, stoppingAt: null, how: "running", counters: {}, losses, accounting: null, problems: p.problems };
    this.processes.push(record);
    this.note(`process ${gen} starts`);
    try {
      p.data = await openDataPath(
        this.config,
        {
          clock,
          logs: this.fs.port(gen),
          dataFiles: this.dataFiles,
          ringStorage: this.disk,
          fetch: this.messenger.fetchFor(clock, gen) as unknown as Fetch,
          random: () => this.rng.float(),
          metadata: (cache) => new SimMetadataProvider(cache, p.log, clock, this.api),
        },
        p.log,
        p.cleanups,
        () => {},
      );
      watchHandOvers(p);
      await startDataPath(p.data, p.cleanups);
      p.started = true;
    } catch (err) {
      p.problems.push(`start-up failed: ${(err as Error).stack ?? err}`);
    }
  }

  /** SIGKILL: nothing more runs; the disk keeps what it made durable, and some of the rest. */
  crash(): void {
    const p = this.process;
    if (!p) return;
    this.snapshot(p, "crashed");
    this.onEnd("crashed");
    this.process = null;
    this.scheduler.dropOwner(p.gen);
    this.fs.endProcess(p.gen); // files only it held open are gone now
    const tear = this.rng.child();
    const keepChance = tear.float();
    this.disk = this.disk.crash(() => tear.chance(keepChance), this.diskBehaviour(0));
    this.note(`process ${p.gen} crashes (pages written since the last sync each kept with p=${keepChance.toFixed(2)})`);
    this.crashedWhileStopping?.();
  }

  private stopping: Promise<void> | null = null;

  /** SIGTERM: the graceful stop, bounded by shutdownTimeoutMs; resolves early if the process crashes meanwhile. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.stopOnce().finally(() => (this.stopping = null));
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    const p = this.process;
    if (!p) return;
    this.note(`process ${p.gen} stops`);
    p.stopping = true;
    const record = this.processes.find((r) => r.gen === p.gen);
    if (record) record.stoppingAt = this.scheduler.peek();
    this.onStopping();
    const crashed = new Promise<void>((resolve) => (this.crashedWhileStopping = resolve));
    await Promise.race([p.data ? p.data.shutdown.run() : p.cleanups.run(), crashed]);
    this.crashedWhileStopping = null;
    if (this.process !== p) return; // it crashed while stopping
    this.snapshot(p, "stopped");
    this.onEnd("stopped");
    this.process = null;
    this.scheduler.dropOwner(p.gen);
    this.fs.endProcess(p.gen);
  }

  private snapshot(p: SimProcess, how: "stopped" | "crashed"): void {
    const record = this.processes.find((r) => r.gen === p.gen) as ProcessRecord;
    record.endedAt = this.scheduler.peek();
    record.how = how;
    if (p.data) {
      const s = p.data.source.counters;
      const r = p.data.router.counters;
      record.counters = { ...s, recordsCut: r.recordsCut, eventsRead: r.eventsRead, eventsAppended: r.eventsAppended };
      for (const [reason, n] of Object.entries(r.eventsFiltered)) if (n > 0) record.counters[`filtered:${reason}`] = n;
      this.note(`process ${p.gen} counters: ${JSON.stringify(record.counters)}`);
    }
  }

  private diskBehaviour(gen: number): DiskBehaviour {
    const clock = this.scheduler.clockFor(gen);
    return {
      datasync: (done) => void clock.after(this.rng.int(this.syncLatencyMs[0], this.syncLatencyMs[1]), done),
      full: () => this.diskFull,
    };
  }

  private logger(gen: number, losses: ProcessRecord["losses"]): Logger {
    const make = (base: LogFields): Logger => {
      const at = (level: string) => (msg: string, fields: LogFields = {}) => {
        const all = { ...base, ...fields };
        const bytes = all.bytesLost ?? all.unreadBytes;
        if (level === "warn" && typeof all.path === "string" && typeof bytes === "number") losses.push({ path: all.path, bytes });
        if (level === "error" || (this.traceOn && (level === "warn" || (level === "info" && VERBOSE)))) this.note(`p${gen} ${level}: ${msg} ${safeJson(all)}`);
        if (level === "error" && /turn failed/.test(msg)) this.process?.problems.push(`${msg} ${safeJson(fields)}`);
      };
      return { debug: VERBOSE ? at("info") : () => {}, info: at("info"), warn: at("warn"), error: at("error"), child: (f) => make({ ...base, ...f }) };
    };
    return make({});
  }
}

/**
 * Keeps the lines of each hand-over from the source to the router while it waits for room in the
 * ring (the loop awaits it: the batch is not reused meanwhile), and their ids if it fails (the ring
 * closed under it at a graceful stop): what a process held in memory when it ended; and the ring
 * sequence number each line's hand-over got (linesNotDurable). Only observes; the router's emit runs
 * unchanged.
 */
function watchHandOvers(p: SimProcess): void {
  const router = p.data?.router;
  if (!router) return;
  const emit = router.emit.bind(router);
  router.emit = async (file, lines) => {
    p.emitsInFlight.add(lines);
    try {
      const seq = await emit(file, lines);
      for (const id of idsOf(lines)) if (!p.appendedSeq.has(id)) p.appendedSeq.set(id, seq);
      return seq;
    } catch (err) {
      p.failedHandOvers.push(idsOf(lines)); // the source may reuse the batch from now on
      throw err;
    } finally {
      p.emitsInFlight.delete(lines);
    }
  };
}

/** The lines whose records the process appended to the ring after its last sync that completed: their checkpoints have not moved over them. */
export function linesNotDurable(p: SimProcess): Set<number> {
  const durable = p.data?.ring.durableSeq() ?? Number.POSITIVE_INFINITY;
  const ids = new Set<number>();
  for (const [id, seq] of p.appendedSeq) if (seq > durable) ids.add(id);
  return ids;
}

/** The ids of the lines a process held in hand-overs the ring never completed. */
export function heldLineIds(p: SimProcess): number[] {
  return [...[...p.emitsInFlight].flatMap(idsOf), ...p.failedHandOvers.flat()];
}

function idsOf(lines: Lines): number[] {
  const ids: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^L(\d+);/.exec(lines.line(i).message);
    if (m) ids.push(Number(m[1]));
  }
  return ids;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (x instanceof Error ? x.message : x)).slice(0, 300);
  } catch {
    return String(v);
  }
}
