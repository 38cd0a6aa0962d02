// Issue 17's bound on what a crash sends again, as the chaos harness asserts it for real processes
// (bench/lib/chaos-report.ts, crashBounds): one sync interval of the ring's traffic both ways — what
// was appended since the last sync is read again from the files (the source's checkpoints follow the
// sync), what was acknowledged since the last header is sent again — plus what was on the wire
// (docs/ring-format.md, "Bounded replay"). Measured in virtual time, the clock the ring's sync timer
// runs on, from the pipeline's own counters sampled after every step of the run.
import type { LedgerLine } from "../support/behind-pending.ts";
import type { Delivered } from "./messenger.ts";

/** What the ring of one process took in and gave out by a time (its counters start at 0). */
interface TrafficSample {
  t: number;
  appended: number;
  acked: number;
}

/** The running process's ring traffic over the last few seconds of virtual time. */
export class RingTraffic {
  private gen = -1;
  private samples: TrafficSample[] = [];

  constructor(private readonly keepMs: number) {}

  /** Counters of process `gen` at virtual time `t` (after a step of the run). */
  sample(gen: number, t: number, appended: number, acked: number): void {
    if (gen !== this.gen) {
      this.gen = gen;
      this.samples = [];
    }
    const last = this.samples[this.samples.length - 1];
    if (last && last.appended === appended && last.acked === acked) return;
    this.samples.push({ t, appended, acked });
    // Keep the newest sample at or before t - keepMs: it is the baseline of a window that long.
    let drop = 0;
    while (drop + 1 < this.samples.length && (this.samples[drop + 1] as TrafficSample).t <= t - this.keepMs) drop++;
    if (drop > 64) this.samples = this.samples.slice(drop);
  }

  /** Records appended and acknowledged by process `gen` in (t - windowMs, t], given its counters at t. */
  within(gen: number, t: number, windowMs: number, appendedNow: number, ackedNow: number): { appended: number; acked: number } {
    let base: TrafficSample = { t: 0, appended: 0, acked: 0 };
    if (gen === this.gen) for (const s of this.samples) if (s.t <= t - windowMs) base = s;
    return { appended: appendedNow - base.appended, acked: ackedNow - base.acked };
  }
}

/** The counters of the running process's ring traffic: appended by its router, acknowledged by its ring tap. */
export interface RunningTraffic {
  gen: number;
  appended: number;
  acked: number;
}

/** Measures each crash of a run against the bound: samples after every step, a record at every crash. */
export class CrashMeter {
  readonly crashes: CrashTraffic[] = [];
  private readonly traffic: RingTraffic;

  constructor(
    readonly terms: BoundTerms,
    private readonly startMs: number,
    private readonly running: () => RunningTraffic | null,
    /** When the workload wrote each line so far. */
    private readonly written: () => ReadonlyArray<{ writtenAt: number }>,
    private readonly checkpointsStale: () => boolean,
    /** The lines whose records the running process appended after its ring's last completed sync. */
    private readonly notDurable: () => ReadonlySet<number> = () => new Set(),
  ) {
    this.traffic = new RingTraffic(terms.windowMs + 1000);
  }

  /** After a step of the run, at virtual time t. */
  step(t: number): void {
    const r = this.running();
    if (r) this.traffic.sample(r.gen, t, r.appended, r.acked);
  }

  /** The running process crashes now (before its state is dropped). */
  crash(t: number): void {
    const r = this.running();
    if (!r) return;
    const w = this.traffic.within(r.gen, t, this.terms.windowMs, r.appended, r.acked);
    const written = this.written().filter((l) => l.writtenAt > t - this.terms.windowMs && l.writtenAt <= t).length;
    this.crashes.push({ n: this.crashes.length + 1, at: t - this.startMs, gen: r.gen, ...w, written, checkpointsStale: this.checkpointsStale(), notDurable: this.notDurable() });
  }

  /** Each crash against its bound, from what the messenger acknowledged over the whole run and the lines written. */
  bounds(delivered: readonly Delivered[], idOf: (d: Delivered) => number, lines: readonly MeteredLine[] = []): CrashBound[] {
    return this.crashes.map((t) => {
      const dups = duplicatesById(delivered, t.gen, idOf);
      const pinned = pinnedBehindPendingLines(delivered, t.gen, idOf, lines, this.startMs + t.at, t.notDurable);
      let total = 0;
      let behind = 0;
      for (const [id, n] of dups) {
        total += n;
        if (pinned.has(id)) behind += n;
      }
      return boundOf(t, total, this.terms, behind);
    });
  }
}

/** A line written, as the bound needs it: its container instance, when it was begun, and its fragments' places. */
export interface MeteredLine extends LedgerLine {
  id: number;
  writtenAt: number;
  /** Its container instance (pod, container, restart): its files are read in the order they were written. */
  source: string;
}

/**
 * The lines a crash re-sends by design from behind a pending line (docs/simulation.md, "Crash
 * duplicates"): a checkpoint never passes the first fragment of a line still pending, so the next
 * process reads its container's files again from there, and sends again what the crashed one had
 * emitted after it (lines of the other stream). Per container instance: the lines the crashed process
 * delivered that were written after the head of a split line, begun before the crash, that it did
 * not deliver (its head read — a later line of the container was delivered —, its end not yet), or
 * that it delivered but had appended to the ring after the last sync that completed (`notDurable`):
 * the checkpoints move over a line only once the ring has made its record durable, so they were
 * still at its head (seed 2874).
 * An overlap of both streams adds nothing: a checkpoint says where each stream stands, and each
 * file's moves with its own pending lines (docs/source.md, "Lines of both streams overlapping").
 */
export function pinnedBehindPendingLines(
  delivered: readonly Delivered[],
  gen: number,
  idOf: (d: Delivered) => number,
  lines: readonly MeteredLine[],
  crashAt: number,
  notDurable: ReadonlySet<number> = new Set(),
): Set<number> {
  const sent = new Set<number>();
  for (const d of delivered) if (d.gen === gen) sent.add(idOf(d));
  const bySource = new Map<string, MeteredLine[]>();
  for (const l of lines) {
    const list = bySource.get(l.source) ?? [];
    list.push(l);
    bySource.set(l.source, list);
  }
  const pinned = new Set<number>();
  for (const list of bySource.values()) {
    list.sort((a, b) => a.firstWrite - b.firstWrite || a.id - b.id);
    let last = -1;
    for (let i = 0; i < list.length; i++) if (sent.has((list[i] as MeteredLine).id)) last = i;
    const head = list.findIndex((l, i) => i < last && l.split && l.writtenAt <= crashAt && (!sent.has(l.id) || notDurable.has(l.id)));
    if (head < 0) continue;
    for (let i = head; i <= last; i++) if (i !== head && sent.has((list[i] as MeteredLine).id)) pinned.add((list[i] as MeteredLine).id);
  }
  return pinned;
}

/** One crash: when, which process, and the traffic of its ring over the window before it. */
export interface CrashTraffic {
  n: number;
  at: number;
  gen: number;
  appended: number;
  acked: number;
  /** Lines the workload wrote in the window (the source may read faster or slower than that). */
  written: number;
  /** The crashed process's last checkpoint save was refused (disk full): its checkpoints are older. */
  checkpointsStale: boolean;
  /** The lines whose records it appended after its ring's last completed sync: its checkpoints were still behind them. */
  notDurable: ReadonlySet<number>;
}

export interface CrashBound extends CrashTraffic {
  /** Records first delivered by the crashed process and again by the next one (answers lost excepted). */
  duplicates: number;
  /** Traffic in: max(appended, written); out: acknowledged; the wire: concurrency × batchMaxEvents. */
  inEvents: number;
  outEvents: number;
  wireEvents: number;
  /** Duplicates of lines read again from behind a line pending at the crash (pinnedBehindPendingLines). */
  pinnedEvents: number;
  bound: number;
}

export interface BoundTerms {
  windowMs: number;
  concurrency: number;
  batchMaxEvents: number;
}

/**
 * The window one sync interval spans in the ring: a crash forgets the changes since the last sync
 * that completed began, at most syncIntervalMs (the timer, armed when that sync completed) after two
 * datasyncs (the one that completed and the one under way).
 */
export function syncWindowMs(syncIntervalMs: number, maxDatasyncMs: number): number {
  return syncIntervalMs + 2 * maxDatasyncMs;
}

/**
 * Duplicates a crash caused: deliveries by the next process (generation gen + 1) of records the
 * crashed one delivered. A delivery whose answer was lost is sent again by design (once), whatever
 * crashes: it excuses one later delivery of its record.
 */
export function crashDuplicates(delivered: readonly Delivered[], gen: number, idOf: (d: Delivered) => number): number {
  let duplicates = 0;
  for (const n of duplicatesById(delivered, gen, idOf).values()) duplicates += n;
  return duplicates;
}

/** crashDuplicates, per record id. */
export function duplicatesById(delivered: readonly Delivered[], gen: number, idOf: (d: Delivered) => number): Map<number, number> {
  const before = new Map<number, boolean>(); // id → whether its last delivery by the crashed process lost its answer
  const after = new Map<number, number>(); // id → deliveries by the next process, less those whose answer was lost
  for (const d of delivered) {
    const id = idOf(d);
    if (id < 0) continue;
    if (d.gen === gen) before.set(id, d.answerLost);
    else if (d.gen === gen + 1) after.set(id, (after.get(id) ?? 0) + (d.answerLost ? 0 : 1));
  }
  const duplicates = new Map<number, number>();
  for (const [id, n] of after) {
    const lastLost = before.get(id);
    if (lastLost === undefined) continue;
    const dup = Math.max(0, n - (lastLost ? 1 : 0));
    if (dup > 0) duplicates.set(id, dup);
  }
  return duplicates;
}

export function boundOf(t: CrashTraffic, duplicates: number, terms: BoundTerms, pinnedEvents = 0): CrashBound {
  const inEvents = Math.max(t.appended, t.written);
  const outEvents = t.acked;
  const wireEvents = terms.concurrency * terms.batchMaxEvents;
  return { ...t, duplicates, inEvents, outEvents, wireEvents, pinnedEvents, bound: inEvents + outEvents + wireEvents + pinnedEvents };
}

/**
 * A crash over the bound, named with its duplicates, the bound and its terms; null within it. A crash
 * whose checkpoints could not be saved (the data dir disk full) is not held to it: the next process
 * starts from older checkpoints, whatever the ring did.
 */
export function overBound(b: CrashBound, terms: BoundTerms): string | null {
  if (b.duplicates <= b.bound || b.checkpointsStale) return null;
  return describeCrash(b, terms, "more than one sync interval of ring traffic and the wire");
}

export function describeCrash(b: CrashBound, terms: BoundTerms, what: string): string {
  return (
    `crash ${b.n} (process ${b.gen}, +${(b.at / 1000).toFixed(3)} s): ${b.duplicates} duplicates, ${what}${b.checkpointsStale ? " (its checkpoints could not be saved: data dir disk full)" : ""}: bound ${b.bound} = ` +
    `in ${b.inEvents} (max of ${b.appended} appended, ${b.written} written) + out ${b.outEvents} acknowledged, over ${terms.windowMs} ms, ` +
    `+ ${b.wireEvents} on the wire (${terms.concurrency} × ${terms.batchMaxEvents})` +
    (b.pinnedEvents > 0 ? ` + ${b.pinnedEvents} read again from behind a pending line` : "")
  );
}
