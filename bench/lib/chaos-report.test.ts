// The chaos summary's judgements: the duplicate bound of a crash, the per-seed verdicts and totals, and
// where a section lands in bench/RESULTS.md.
import { describe, expect, test } from "bun:test";
import { crashBounds, duplicatesBehindPending, insertIntoSection, type SeedRun, seedTable, summarizeSeed } from "./chaos-report.ts";
import type { ChaosResult, CrashReport } from "./chaos-run.ts";

const rates = { writeRate: 20_000, appendRate: 21_000, sendRate: 18_000, syncIntervalMs: 1000, maxDatasyncMs: 0, concurrency: 4, batchMaxEvents: 1024 };

test("one sync interval of traffic plus the wire; traffic is what goes into the ring plus what comes out", () => {
  const b = crashBounds(rates);
  expect(b.wireEvents).toBe(4096);
  // In: the appends sampled (21 k/s) outpace the writer (20 k/s); out: the acknowledgements.
  expect(b.trafficRate).toBe(21_000 + 18_000);
  expect(b.syncBound).toBe(39_000 + 4096);
  // Appends sampled low (the reader paused before the kill): the writer's rate still counts as going in.
  expect(crashBounds({ ...rates, appendRate: 5_000 }).trafficRate).toBe(20_000 + 18_000);
  // Catching up after a restart: acknowledgements outpace the writer, and the bound follows them.
  const catchingUp = crashBounds({ ...rates, sendRate: 50_000, syncIntervalMs: 500 });
  expect(catchingUp.trafficRate).toBe(71_000);
  expect(catchingUp.syncBound).toBe(35_500 + 4096);
  // A slow disk: the timer is armed when a datasync completes, so the window spans two of them more.
  const slowDisk = crashBounds({ ...rates, maxDatasyncMs: 150 });
  expect(slowDisk.windowMs).toBe(1300);
  expect(slowDisk.syncBound).toBe(Math.ceil(39_000 * 1.3) + 4096);
  // A sync timer that fired late (a process starved of CPU): the window is the one /status showed.
  const late = crashBounds({ ...rates, maxDatasyncMs: 20, observedWindowMs: 1130.4 });
  expect(late.nominalWindowMs).toBe(1040);
  expect(late.windowMs).toBe(1130);
  expect(late.syncBound).toBe(Math.ceil(39_000 * 1.13) + 4096);
  // A kill soon after a sync: never below the nominal window (the rates are averages, not counts).
  expect(crashBounds({ ...rates, observedWindowMs: 200 }).windowMs).toBe(1000);
});

function crash(n: number, duplicates: number, syncBound: number, behind = 0): CrashReport {
  const behindPending = { duplicates: behind, lines: behind, widest: null, afterPendingEnds: 0 };
  return { n, atMs: 0, uptimeMs: 0, inFlight: 1, lagBytes: 0, ringRecords: 0, appendRate: 0, sendRate: 0, trafficRate: 0, wireEvents: 0, windowMs: 1000, nominalWindowMs: 1000, duplicates, duplicatesDeliveredBefore: 0, duplicateSpanSeconds: 0, syncBound, behindPending };
}

/**
 * A ledger of one container's lines from their fragments in the order of writes: each entry a line's
 * sequence number, a split line's sequence number appearing at each of its fragments.
 */
function ledgerOf(writes: number[]): { firstWrite: Uint32Array; lastWrite: Uint32Array } {
  const n = Math.max(...writes) + 1;
  const l = { firstWrite: new Uint32Array(n), lastWrite: new Uint32Array(n) };
  writes.forEach((seq, i) => {
    if (l.firstWrite[seq] === 0) l.firstWrite[seq] = i + 1;
    l.lastWrite[seq] = i + 1;
  });
  return l;
}

describe("duplicates read again from behind a line pending at the kill", () => {
  // Container 0: line 1 (split, stdout) overlaps line 2 (split, stderr), which ends after line 4 (split)
  // begins; 4 was pending at the kill (written up to place 9: its last fragment came after). The
  // overlap starts at line 1; the killed process delivered 0, 1, 2, 3 and 5 (of the other stream).
  const c0 = ledgerOf([0, 1, 2, 1, 3, 4, 2, 1, 5, 4, 6]);
  // Container 1: no split line; the killed process delivered what it read.
  const c1 = ledgerOf([0, 1, 2]);
  const sent = [new Set([0, 1, 2, 3, 5]), new Set([0, 1])];
  // The kill at 10 s, a sync window of 1 s: everything delivered by 5 s had its record durable at it.
  const ledger = (writesAtKill: number, arrivalsAfter = (_s: number, _q: number) => 1) => ({
    ledger: [c0, c1],
    written: [7, 3],
    writesAtKill,
    killAtMs: 10_000,
    windowMs: 1000,
    sentByKilled: (stream: number, seq: number) => sent[stream]!.has(seq),
    sentByKilledBy: (stream: number, seq: number) => (sent[stream]!.has(seq) ? 5000 : Number.POSITIVE_INFINITY),
    deliveredBeforeKill: (stream: number, seq: number) => sent[stream]!.has(seq),
    arrivalsAfter,
  });

  test("from the start of the overlap that contains the oldest pending line to the last line delivered, counted by arrivals after the kill", () => {
    const b = duplicatesBehindPending(ledger(9));
    // Lines 1, 2, 3, 5 (not 0: before the overlap; not 4: the pending head; not 6: after the last delivered).
    expect(b.lines).toBe(4);
    expect(b.duplicates).toBe(4);
    expect(b.widest).toEqual({ stream: 0, from: 1, head: 4, last: 5, duplicates: 4 });
    expect(b.afterPendingEnds).toBe(0); // line 4 ends (place 10) after every line delivered (the last, 5, at place 9)
    // Each arrival after the kill counts: a line sent twice by the next run is two duplicates; one it did not send, none.
    expect(duplicatesBehindPending(ledger(9, (s, q) => (s === 0 && q === 2 ? 2 : s === 0 && q === 5 ? 0 : 1))).duplicates).toBe(4);
  });

  test("a split line begun after the kill pins nothing; without an overlap only what follows the head counts", () => {
    expect(duplicatesBehindPending(ledger(5)).duplicates).toBe(0); // line 4 begins at place 6
    // Lines 1 and 2 ended (places 4, 5) before line 4 began (place 7): no overlap reaches back; only 5 counts.
    const apart = ledgerOf([0, 1, 2, 1, 2, 3, 4, 5, 4, 6]);
    expect(duplicatesBehindPending({ ...ledger(9), ledger: [apart, c1] })).toEqual({ duplicates: 1, lines: 1, widest: { stream: 0, from: 4, head: 4, last: 5, duplicates: 1 }, afterPendingEnds: 0 });
  });

  test("a split line read whole and not delivered pins the lines that ended before it, not those after; one an earlier process delivered pins nothing", () => {
    // Line 0 (split, places 1..3) overlaps line 1 (place 2); line 3 (split, places 5..6) the killed
    // process read whole — it delivered line 4, written after line 3's end — and did not deliver (in
    // its ring, or a batch retried or hanging at the kill). It delivered 1, 2, 4, long before the kill.
    const c = ledgerOf([0, 1, 0, 2, 3, 3, 4]);
    const killed = new Set([1, 2, 4]);
    const run = (deliveredBefore: Set<number>) =>
      duplicatesBehindPending({ ledger: [c], written: [5], writesAtKill: 7, killAtMs: 10_000, windowMs: 1000, sentByKilled: (_s, q) => killed.has(q), sentByKilledBy: () => 0, deliveredBeforeKill: (_s, q) => deliveredBefore.has(q), arrivalsAfter: () => 1 });
    // Line 0 from an earlier process pins nothing; line 3 pins no line that ended before it (4 ended
    // after: appended after it, so read again only as the sync interval's) — shown, not bound.
    expect(run(new Set([0, 1, 2, 4]))).toEqual({ duplicates: 0, lines: 0, widest: null, afterPendingEnds: 1 });
    // Line 0 delivered by nobody: its record not known durable, the checkpoints may stand at its head,
    // and line 1, appended before it, comes again; 2 and 4 ended after it.
    expect(run(killed)).toEqual({ duplicates: 1, lines: 1, widest: { stream: 0, from: 0, head: 0, last: 4, duplicates: 1 }, afterPendingEnds: 2 });
    // Line 3's end written after line 4's (place 8 of [0, 1, 0, 2, 3, 4, 5, 3]): pending at the kill.
    const unread = ledgerOf([0, 1, 0, 2, 3, 4, 5, 3]);
    expect(
      duplicatesBehindPending({ ledger: [unread], written: [6], writesAtKill: 7, killAtMs: 10_000, windowMs: 1000, sentByKilled: (_s, q) => killed.has(q), sentByKilledBy: () => 0, deliveredBeforeKill: (_s, q) => q !== 3, arrivalsAfter: () => 1 }),
    ).toEqual({ duplicates: 1, lines: 1, widest: { stream: 0, from: 3, head: 3, last: 4, duplicates: 1 }, afterPendingEnds: 0 });
  });

  test("a split line the killed process delivered within the sync window before the kill pins the lines that ended before it; one delivered before the window does not", () => {
    // Seed 2874's shape: stderr line 0 begun in the older file (place 1), its rest written after a
    // rotation behind stdout lines 1..3 (places 2..4); it ended at place 5, line 4 after it (place 6).
    // The killed process delivered all five.
    const c = ledgerOf([0, 1, 2, 3, 0, 4]);
    const at = (deliveredAt: number) =>
      duplicatesBehindPending({
        ledger: [c],
        written: [5],
        writesAtKill: 6,
        killAtMs: 10_000,
        windowMs: 1300,
        sentByKilled: () => true,
        sentByKilledBy: (_s, q) => (q === 0 ? deliveredAt : 1000),
        deliveredBeforeKill: () => true,
        arrivalsAfter: (_s, q) => (q === 2 ? 2 : 1),
      });
    // Delivered 0.3 s before the kill: its record may not have been durable, the checkpoints stood at
    // its head, and 1..3, appended before it (long before the last sync), come again: 2 twice.
    expect(at(9700)).toEqual({ duplicates: 4, lines: 3, widest: { stream: 0, from: 0, head: 0, last: 4, duplicates: 4 }, afterPendingEnds: 1 });
    // Delivered when the window began, or before: durable at the kill, it pins nothing.
    expect(at(8700)).toEqual({ duplicates: 0, lines: 0, widest: null, afterPendingEnds: 0 });
    expect(at(2000).duplicates).toBe(0);
    // Delivered at a time unknown: not known durable.
    expect(at(Number.POSITIVE_INFINITY).duplicates).toBe(4);
  });
});

function result(over: Partial<ChaosResult>): ChaosResult {
  return { seed: 1, command: "bun src/main.ts", events: 1000, distinct: 1000, missing: 0, missingExamples: [], corrupt: 0, corruptSamples: [], piecesOfLostLines: 0, misattributed: 0, duplicates: 0, duplicatesWithoutCrash: 0, crashes: [], writer: { events: 1000, lines: 1000, bytes: 1, rotations: 0, lateWrites: 0, gzipped: 0, deleted: 0, splitAcrossRotation: 0, interleaved: 0 }, wallMs: 10_000, rate: 1000, syncIntervalMs: 1000, partialFlushMs: 300, requests: 0, byStatus: {}, outage: null, finalExit: 0, bytesLost: 0, accountingImbalance: 0, logFile: "", failures: [], ...over };
}

test("a seed's summary: loss where none is allowed, corrupt less the pieces of lost lines, each crash against its bound", () => {
  const run: SeedRun = {
    seed: 7,
    kills: result({ seed: 7, crashes: [crash(1, 100, 200), crash(2, 300, 200)] }),
    outage: result({ seed: 8, events: 500, missing: 2, failures: ["2 events missing"] }),
    outageCrash: result({ seed: 9, events: 300, missing: 40, corrupt: 3, piecesOfLostLines: 3, bytesLost: 8000, crashes: [crash(1, 5, 50)] }),
    replay: "bun bench/chaos.ts --seed 7 --busy",
  };
  const s = summarizeSeed(run);
  expect(s.events).toBe(1800);
  expect(s.missing).toBe(2); // phase 3's loss is inherent: reported apart
  expect(s.corrupt).toBe(0);
  expect(s.crashes.map((c) => c.duplicates)).toEqual([100, 300, 5]);
  expect(s.withinBound).toBe(2);
  expect(s.outageCrashLoss).toEqual({ events: 40, bytesCounted: 8000 });
  expect(s.wallMs).toBe(30_000);
  expect(s.failures).toEqual(["seed 8: 2 events missing"]);
  const table = seedTable([s, summarizeSeed({ ...run, seed: 10, outage: null })]).split("\n");
  expect(table).toHaveLength(5);
  expect(table[2]).toBe("| 7 | 1800 | 2 | 0 | 100/200 ✓, 300/200 ✗, 5/50 ✓ | 2 of 3 | 40 (8000 B) | 30 s | FAIL |");
  expect(table[3]).toEndWith("| pass |");
  expect(table[4]).toBe("| all 2 | 3100 | 2 | 0 | median 100, max 300 | 4 of 6 | 80 | 50 s | 1 FAILED |");
});

test("a section is added after the one it follows, and later entries go to its end, other lines untouched", () => {
  const doc = "# Results\n\n## Chaos\n\n| a |\n| 1 |\n\n## Scenarios\n\ntext\n";
  const once = insertIntoSection(doc, "## Seeds", "### run 1\n\n| x |", "Intro.", "## Chaos");
  expect(once).toBe("# Results\n\n## Chaos\n\n| a |\n| 1 |\n\n## Seeds\n\nIntro.\n\n### run 1\n\n| x |\n\n## Scenarios\n\ntext\n");
  const twice = insertIntoSection(once, "## Seeds", "### run 2", "Intro.", "## Chaos");
  expect(twice).toBe("# Results\n\n## Chaos\n\n| a |\n| 1 |\n\n## Seeds\n\nIntro.\n\n### run 1\n\n| x |\n\n### run 2\n\n## Scenarios\n\ntext\n");
  // Without the section it follows, at the end.
  expect(insertIntoSection("# R\n", "## Seeds", "### run", "Intro.")).toBe("# R\n\n## Seeds\n\nIntro.\n\n### run\n");
});
