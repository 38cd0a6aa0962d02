// The chaos run's figures (issue 17): the duplicate bounds of each crash, the readable account of one
// run, and the one-table summary of many seeds. Pure: the run (chaos-run.ts) measures, this judges and
// formats; bench/chaos.ts prints and appends to bench/RESULTS.md.
import { type LedgerLine, pinnedBehindPending } from "../../test/support/behind-pending.ts";
import type { LineLedger } from "../../test/support/rotating-writer.ts";
import { syncWindowMs } from "../../test/sim/crash-bound.ts";
import type { ChaosResult, CrashReport } from "./chaos-run.ts";

export interface CrashRates {
  /** Events a second the writer produces (the run's rate). */
  writeRate: number;
  /** Events a second appended to the ring and acknowledged, over the seconds before the kill. */
  appendRate: number;
  sendRate: number;
  syncIntervalMs: number;
  /** The longest fdatasync /status showed (ring.lastSyncMs) over the seconds before the kill. */
  maxDatasyncMs: number;
  /**
   * How long before the kill the header of the ring's last completed sync was taken, as far as the
   * last /status tells (ring.unsyncedMs then, plus the time since): a sync timer that fired late (the
   * process waiting for a CPU) widens the window beyond syncIntervalMs. Unknown: the nominal window.
   */
  observedWindowMs?: number;
  /** messenger.concurrency: batches that can be in flight. */
  concurrency: number;
  batchMaxEvents: number;
}

export type CrashBounds = Pick<CrashReport, "appendRate" | "sendRate" | "trafficRate" | "wireEvents" | "windowMs" | "nominalWindowMs" | "syncBound">;

/**
 * What a crash may re-send (issue 17's bound, asserted): one sync interval of the ring's traffic, plus
 * what was on the wire (answered, the answer lost with the process). The ring's traffic goes both ways,
 * and a SIGKILL forgets one interval of each (docs/ring-format.md, "Durability"): what was appended
 * since the last sync is read again from the files (the source's checkpoints follow the sync) while
 * the ring, whose pages outlive the process, still holds it; what was acknowledged since the last
 * header is sent again. So traffic is what went in (the faster of the writer and the appends sampled
 * before the kill: a collector catching up appends more than is written) plus what went out (the
 * acknowledgements sampled before the kill). An event appended and acknowledged within the interval
 * counts twice, and comes twice more. The interval is the simulation's window (syncWindowMs): the
 * sync timer is armed when a datasync completes, so a slow disk widens it by two datasyncs. A process
 * starved of CPU runs its sync timer late, which no design can help: the window is then the one
 * /status showed (observedWindowMs) when that is longer.
 */
export function crashBounds(r: CrashRates): CrashBounds {
  const wireEvents = r.concurrency * r.batchMaxEvents;
  const trafficRate = Math.max(r.writeRate, r.appendRate) + r.sendRate;
  const nominalWindowMs = Math.round(syncWindowMs(r.syncIntervalMs, r.maxDatasyncMs));
  const windowMs = Math.max(nominalWindowMs, Math.round(r.observedWindowMs ?? 0));
  return {
    appendRate: Math.round(r.appendRate),
    sendRate: Math.round(r.sendRate),
    trafficRate: Math.round(trafficRate),
    wireEvents,
    windowMs,
    nominalWindowMs,
    syncBound: Math.ceil((trafficRate * windowMs) / 1000) + wireEvents,
  };
}

/** What a crash sent again from behind a line pending at the kill, and where (the container with the most). */
export interface BehindPending {
  /**
   * Duplicates, in the run after the kill, of the lines the killed process delivered that a line
   * pending at the kill pinned (duplicatesBehindPending): in the bound.
   */
  duplicates: number;
  /** Those lines. */
  lines: number;
  /** The container (stream) that contributed most: the pending line that pins its first such line, its overlap's first line, the last line delivered. */
  widest: null | { stream: number; from: number; head: number; last: number; duplicates: number };
  /**
   * Not in the bound, shown: what counting every line delivered behind a pending line's head would
   * add — lines that ended after it. Their records were appended after its own: were that one not
   * durable at the kill, neither were theirs, and their duplicates are the sync interval's, in the
   * bound already.
   */
  afterPendingEnds: number;
}

/** A crash as the ledger tells it: which lines each collector run delivered, and how far the writer had got. */
export interface CrashLedger {
  /** Per stream, where each line's fragments were written (RotatingWriter's ledger). */
  ledger: readonly LineLedger[];
  /** Lines written per stream by the end of the run. */
  written: readonly number[];
  /** The writer's writes (physical lines) when the kill was sent: a line whose first fragment is within them was begun before it. */
  writesAtKill: number;
  /** When the kill was sent (ms, on the clock of sentByKilledBy). */
  killAtMs: number;
  /** The crash's sync window (CrashReport.windowMs): a record appended this long before the kill was durable at it. */
  windowMs: number;
  /** Whether the killed process delivered event `seq` of stream `stream`. */
  sentByKilled(stream: number, seq: number): boolean;
  /** A time by which the killed process had first delivered it, no earlier than that delivery (Infinity: unknown or never). */
  sentByKilledBy(stream: number, seq: number): number;
  /** Whether it or an earlier process did: a line delivered before the kill was not pending at it. */
  deliveredBeforeKill(stream: number, seq: number): boolean;
  /** Its arrivals in the run after the kill. */
  arrivalsAfter(stream: number, seq: number): number;
}

/**
 * The duplicates a crash sends by design from behind a line pending at the kill (docs/ring-format.md,
 * "Bounded replay"): a file's checkpoint moves over a line only once the ring says its record is
 * durable, so the next process reads a container's files again from the head of a split line whose
 * record was not durable at the kill. Pending: split, begun before the kill, its head read (the killed
 * process delivered a later line), and not known durable: not delivered by the killed process a sync
 * window before the kill (a record is appended before it is delivered, and durable within the window
 * after its append — the ring's sequence numbers are not seen from here), nor delivered by an earlier
 * process only (the killed one started from a checkpoint past it). Per container, a pending line pins
 * the lines the killed process delivered from the start of the overlap of both streams' partial lines
 * it is in to the last line it delivered that ended before it did (appended before it, possibly long
 * before the last sync); each of their arrivals after the kill is a duplicate, counted from the ledger.
 */
export function duplicatesBehindPending(c: CrashLedger): BehindPending {
  const out: BehindPending = { duplicates: 0, lines: 0, widest: null, afterPendingEnds: 0 };
  const settledBy = c.killAtMs - c.windowMs;
  c.ledger.forEach((l, stream) => {
    const list: Line[] = [];
    for (let seq = 0; seq < (c.written[stream] ?? 0); seq++) list.push({ seq, split: l.firstWrite[seq] !== l.lastWrite[seq], firstWrite: l.firstWrite[seq]!, lastWrite: l.lastWrite[seq]! });
    list.sort((a, b) => a.firstWrite - b.firstWrite);
    const sent = (x: Line) => c.sentByKilled(stream, x.seq);
    const found = pinnedBehindPending(list, {
      sentByCrashed: sent,
      begunBeforeCrash: (x) => x.firstWrite <= c.writesAtKill,
      settledBeforeCrash: (x) => (sent(x) ? c.sentByKilledBy(stream, x.seq) <= settledBy : c.deliveredBeforeKill(stream, x.seq)),
    });
    const arrivals = (i: number) => c.arrivalsAfter(stream, list[i]!.seq);
    const duplicates = found.pinned.reduce((a, i) => a + arrivals(i), 0);
    out.afterPendingEnds += found.afterEnds.reduce((a, i) => a + arrivals(i), 0);
    if (!found.first) return;
    out.duplicates += duplicates;
    out.lines += found.pinned.length;
    if (!out.widest || duplicates > out.widest.duplicates) {
      const f = found.first;
      out.widest = { stream, from: list[f.from]!.seq, head: list[f.head]!.seq, last: list[f.last]!.seq, duplicates };
    }
  });
  return out;
}

type Line = LedgerLine & { seq: number };

/** Issue 17's bound on a crash: one sync interval of traffic and the wire, plus what it read again from behind a pending line. */
export function boundOf(c: CrashReport): number {
  return c.syncBound + c.behindPending.duplicates;
}

export function withinBound(c: CrashReport): boolean {
  return c.duplicates <= boundOf(c);
}

/** The crash's window and where it comes from: the sync interval, the datasyncs, a late sync timer. */
function windowWhy(c: CrashReport, syncIntervalMs: number): string {
  if (c.windowMs > c.nominalWindowMs) return `${c.windowMs} ms (the last sync's header that long before the kill: its timer late; nominal ${c.nominalWindowMs})`;
  return `${c.windowMs} ms${c.windowMs > syncIntervalMs ? ` = ${syncIntervalMs} + 2 datasyncs` : ""}`;
}

/** Human-readable figures of one run. */
export function describe(r: ChaosResult): string {
  const lines = [
    `seed ${r.seed} · ${r.command} · ${r.rate} events/s, syncIntervalMs ${r.syncIntervalMs}, partialFlushMs ${r.partialFlushMs}`,
    `events written ${r.events} · delivered distinct ${r.distinct} · missing ${r.missing} · corrupt ${r.corrupt}${r.piecesOfLostLines ? ` (${r.piecesOfLostLines} of them pieces of lines lost with their files)` : ""} · duplicates ${r.duplicates} (before any crash: ${r.duplicatesWithoutCrash})`,
    `writer: ${r.writer.rotations} rotations (${r.writer.lateWrites} late writes into renamed files, ${r.writer.splitAcrossRotation} inside a line), ${r.writer.interleaved} stdout/stderr lines interleaved, ${r.writer.gzipped} gzipped, ${r.writer.deleted} deleted, ${(r.writer.bytes / 1e6).toFixed(1)} MB`,
    `messenger: ${r.requests} requests, by status ${JSON.stringify(r.byStatus)}`,
    `kills ${r.crashes.length}; per crash: duplicates against the bound, one sync interval of traffic in and out of the ring + the wire + what was read again from behind a pending line (issue 17):`,
    ...r.crashes.map(
      (c) =>
        `  #${c.n} at ${(c.atMs / 1000).toFixed(1)} s: ${c.duplicates} duplicates, ${withinBound(c) ? "within" : "OVER"} ${boundOf(c)} = one sync ${c.syncBound} (${c.trafficRate} ev/s in and out × ${windowWhy(c, r.syncIntervalMs)} + ${c.wireEvents} on the wire) + ${c.behindPending.duplicates} behind a pending line${behindWhere(c.behindPending)}; ` +
        `(${c.duplicatesDeliveredBefore} delivered before the crash, spanning ${c.duplicateSpanSeconds} s of a stream; uptime ${(c.uptimeMs / 1000).toFixed(1)} s, ${c.inFlight} in flight, ${c.lagBytes} B lag, ${c.ringRecords} in ring, ${c.appendRate} appended/s, ${c.sendRate} sent/s)`,
    ),
  ];
  if (r.outage) lines.push(`outage ${r.outage.durationMs / 1000} s: ring full ${r.outage.ringFullObserved ? `for ${(r.outage.ringFullMs / 1000).toFixed(1)} s` : "never"}, ${r.outage.rotationsDuringOutage} rotations meanwhile, up to ${r.outage.maxDeletedHeldBytes} B held by deleted files`);
  lines.push(`wall ${(r.wallMs / 1000).toFixed(1)} s · final exit ${r.finalExit} · bytes lost ${r.bytesLost} · accounting imbalance ${r.accountingImbalance}`);
  lines.push(r.failures.length ? `FAILED: ${r.failures.join("; ")} (collector log: ${r.logFile})` : "PASSED");
  return lines.join("\n");
}

/** Where the lines read again from behind a pending line came from, briefly. */
function behindWhere(b: BehindPending): string {
  const afterEnds = b.afterPendingEnds ? `; not counted: ${b.afterPendingEnds} duplicates of lines that ended after the pending ones` : "";
  if (!b.widest) return afterEnds ? ` (${afterEnds.slice(2)})` : "";
  const w = b.widest;
  return ` (${b.lines} lines delivered before the kill; most in c${w.stream}: lines ${w.from}–${w.last}, the overlap from ${w.from}, pending ${w.head}, ${w.duplicates} duplicates${afterEnds})`;
}

/** One seed of `npm run chaos`: its phases (kills, outage, SIGKILL during an outage), those that ran. */
export interface SeedRun {
  seed: number;
  kills: ChaosResult;
  outage: ChaosResult | null;
  outageCrash: ChaosResult | null;
  /** The command that replays this seed alone. */
  replay: string;
}

export interface SeedSummary {
  seed: number;
  events: number;
  /** Events never delivered where no loss is allowed (the kills and the outage phases). */
  missing: number;
  /** Damaged or invented messages, pieces of lines lost with their files excused. */
  corrupt: number;
  /** Crashes of the kills phase, then the SIGKILL during the outage. */
  crashes: CrashReport[];
  /** Crashes within their bound: one sync interval of traffic, the wire, and what was read again from behind a pending line. */
  withinBound: number;
  /** The SIGKILL during an outage: events lost with the deleted files and the bytes the collector counted. */
  outageCrashLoss: { events: number; bytesCounted: number } | null;
  wallMs: number;
  failures: string[];
  replay: string;
}

export function summarizeSeed(run: SeedRun): SeedSummary {
  const phases = [run.kills, run.outage, run.outageCrash].filter((p): p is ChaosResult => p !== null);
  const crashes = [...run.kills.crashes, ...(run.outageCrash?.crashes ?? [])];
  return {
    seed: run.seed,
    events: phases.reduce((a, p) => a + p.events, 0),
    missing: run.kills.missing + (run.outage?.missing ?? 0),
    corrupt: phases.reduce((a, p) => a + p.corrupt - p.piecesOfLostLines, 0),
    crashes,
    withinBound: crashes.filter(withinBound).length,
    outageCrashLoss: run.outageCrash ? { events: run.outageCrash.missing, bytesCounted: run.outageCrash.bytesLost } : null,
    wallMs: phases.reduce((a, p) => a + p.wallMs, 0),
    failures: phases.flatMap((p) => p.failures.map((f) => `seed ${p.seed}: ${f}`)),
    replay: run.replay,
  };
}

const HEADER =
  "| seed | events written | missing | corrupt | duplicates per crash: n / one-sync bound [+ read again from behind a pending line] (✓ within, ✗ over; last: the SIGKILL in an outage) | within the bound | SIGKILL in an outage: lost events (bytes counted lost) | wall | result |\n" +
  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |";

/** The summary table of many seeds, with a total row. */
export function seedTable(rows: SeedSummary[]): string {
  const out = [HEADER];
  for (const r of rows) {
    const perCrash = r.crashes.map((c) => `${c.duplicates}/${c.syncBound}${c.behindPending.duplicates ? `+${c.behindPending.duplicates}` : ""} ${withinBound(c) ? "✓" : "✗"}`).join(", ");
    const loss = r.outageCrashLoss ? `${r.outageCrashLoss.events} (${r.outageCrashLoss.bytesCounted} B)` : "skipped";
    out.push(`| ${r.seed} | ${r.events} | ${r.missing} | ${r.corrupt} | ${perCrash || "–"} | ${r.withinBound} of ${r.crashes.length} | ${loss} | ${(r.wallMs / 1000).toFixed(0)} s | ${r.failures.length ? "FAIL" : "pass"} |`);
  }
  if (rows.length > 1) {
    const sum = (f: (r: SeedSummary) => number) => rows.reduce((a, r) => a + f(r), 0);
    const dups = rows.flatMap((r) => r.crashes.map((c) => c.duplicates)).sort((a, b) => a - b);
    const mid = dups.length >> 1;
    const median = dups.length === 0 ? 0 : dups.length % 2 ? dups[mid]! : Math.round((dups[mid - 1]! + dups[mid]!) / 2);
    const failed = rows.filter((r) => r.failures.length).length;
    out.push(
      `| all ${rows.length} | ${sum((r) => r.events)} | ${sum((r) => r.missing)} | ${sum((r) => r.corrupt)} | median ${median}, max ${dups[dups.length - 1] ?? 0} | ${sum((r) => r.withinBound)} of ${sum((r) => r.crashes.length)} | ${sum((r) => r.outageCrashLoss?.events ?? 0)} | ${(sum((r) => r.wallMs) / 1000).toFixed(0)} s | ${failed ? `${failed} FAILED` : "pass"} |`,
    );
  }
  return out.join("\n");
}

/**
 * Inserts `text` at the end of the section `heading` (a "## " line) of a Markdown document, before the
 * next "## " heading; a missing section is added after `after` (or at the end). Other lines stay as they are.
 */
export function insertIntoSection(doc: string, heading: string, text: string, intro: string, after?: string): string {
  const lines = doc.split("\n");
  let start = lines.indexOf(heading);
  if (start < 0) {
    let at = lines.length;
    const prev = after === undefined ? -1 : lines.indexOf(after);
    if (prev >= 0) {
      at = prev + 1;
      while (at < lines.length && !lines[at]!.startsWith("## ")) at++;
    }
    while (at > 0 && lines[at - 1] === "") at--;
    lines.splice(at, 0, "", heading, "", ...intro.replace(/\n+$/, "").split("\n"));
    start = at + 1;
  }
  let end = start + 1;
  while (end < lines.length && !lines[end]!.startsWith("## ")) end++;
  let last = end;
  while (last > start + 1 && lines[last - 1] === "") last--;
  lines.splice(last, 0, "", ...text.replace(/\n+$/, "").split("\n"));
  return lines.join("\n");
}
