// GET /status: one JSON document built from the stages' own status objects and counters, with
// every secret masked (README "Verifying it works"). Field names, once each:
//   events    the accounting terms (src/api/accounting.ts), filtered per reason, bytes appended;
//   source    the source's counters, plus deleted files still open as `lsof +L1` shows them;
//   sink      the sender's requests and failures (the events it delivered are under events);
//   ring, metadata, loops, pipeline: what each stage and the health monitor report;
//   prefixTable  the ring's prefix table: prefixes held, writes and failed ones, write time,
//             records at open whose prefix it did not hold, and a failing write's start and error.
import type { Config } from "../config/schema.ts";
import { maskSecrets } from "../config/load.ts";
import { getLogLevel, logCounters, recentProblems } from "../log.ts";
import type { SenderStats } from "../sink/sender.ts";
import { displayUrl, ingestUrl } from "../sink/wire.ts";
import { COMMIT, VERSION } from "../version.ts";
import { deletedHeldFiles } from "./deleted-files.ts";
import type { StagesView } from "./types.ts";

export interface StatusView extends StagesView {
  /** Epoch ms the collector started. */
  startedAt: number;
  stopping(): boolean;
  /** The source's first scan is done (and not stopping). */
  ready(): boolean;
  /** The effective config: what the running collector applies after reloads. */
  config(): Config;
  /** The outcome of the last SIGHUP, if any. */
  lastReload(): unknown;
}

export function buildStatus(view: StatusView, now = Date.now()): Record<string, unknown> {
  const health = view.health();
  const config = view.config();
  const a = view.accounting();
  const router = view.router();
  const source = view.source();
  const deletedOpen = deletedHeldFiles(config.dataDir);
  return maskSecrets({
    version: VERSION,
    commit: COMMIT,
    phase: view.stopping() ? "stopping" : "running",
    startedAt: new Date(view.startedAt).toISOString(),
    uptimeSeconds: Math.round((now - view.startedAt) / 1000),
    ready: view.ready(),
    live: health.live,
    pipeline: { healthy: health.healthy, reasons: health.reasons },
    loops: health.loops,
    events: {
      read: a.read,
      filtered: router.eventsFiltered,
      filteredTotal: a.filtered,
      skipped: { malformed: a.skipped },
      inRing: a.inRing,
      appended: router.eventsAppended,
      bytesAppended: router.bytesAppended,
      cutToFitRing: router.recordsCut,
      sent: a.sent,
      deadLettered: a.deadLettered,
      replayed: a.replayed,
      accountingImbalance: a.imbalance,
    },
    files: source.fileStatus(),
    source: { ...source.counters, filesWatched: source.filesWatched, deletedOpenFiles: deletedOpen.files, deletedOpenBytes: deletedOpen.bytes },
    ring: { ...view.ring(), fullSince: isoOrNull(health.ringFullSince) },
    prefixTable: prefixTableStatus(view),
    sink: sinkStatus(config, view.sender()),
    metadata: view.metadata(),
    recentErrors: recentProblems(),
    log: { level: getLogLevel(), suppressedRepeats: logCounters.suppressed },
    lastReload: view.lastReload(),
    config, // masked with the rest
  });
}

function sinkStatus(config: Config, s: SenderStats): Record<string, unknown> {
  return {
    url: config.messenger.baseUri ? displayUrl(ingestUrl(config.messenger.baseUri)) : null,
    inFlight: s.inFlight,
    waiting: s.waiting,
    queued: s.queued,
    outstanding: s.outstanding,
    lastSuccessAt: isoOrNull(s.lastSuccessAt),
    secondsSinceLastSuccess: Math.round(s.secondsSinceLastSuccess * 10) / 10,
    failingSince: isoOrNull(s.failingSince),
    lastError: s.lastError,
    lastErrorAt: isoOrNull(s.lastErrorAt),
    requestsByStatus: s.requestsByStatus,
    retries: s.retries,
    batchesSent: s.batchesSent,
    bisections: s.bisections,
    deadLetterBytes: s.deadLetterBytes,
    bytesSentWire: s.bytesSentWire,
    reasons: s.healthReasons,
  };
}

function prefixTableStatus(view: StatusView): Record<string, unknown> {
  const t = view.prefixTable();
  return {
    prefixes: t.prefixes,
    writes: t.writes,
    writeFailures: t.writeFailures,
    writeMs: Math.round(t.writeMs * 10) / 10,
    unknownAtOpen: t.unknownAtOpen,
    failingSince: isoOrNull(t.failingSince),
    lastError: t.lastError,
  };
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
