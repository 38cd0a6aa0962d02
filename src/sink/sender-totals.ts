// A SIGHUP with new messenger settings replaces the sender; counters must keep growing across
// the replacement (Prometheus counters never go down). Counts of retired senders are kept here
// and added to the live sender's stats; gauges (in flight, waiting, ...) come from the live one.
import type { HistogramSnapshot } from "./histogram.ts";
import type { SenderStats, StatusClass } from "./types.ts";

type Counted = Pick<
  SenderStats,
  "retries" | "eventsSent" | "batchesSent" | "bisections" | "deadLetteredEvents" | "bytesSentWire" | "bytesSentRaw"
>;
const COUNTED: Array<keyof Counted> = ["retries", "eventsSent", "batchesSent", "bisections", "deadLetteredEvents", "bytesSentWire", "bytesSentRaw"];

export class SenderTotals {
  private retired: SenderStats | null = null;

  /** Folds the final stats of a sender that is being replaced. */
  retire(stats: SenderStats): void {
    this.retired = this.retired ? add(this.retired, stats) : stats;
  }

  /** The live sender's stats with every retired sender's counts added. */
  of(live: SenderStats): SenderStats {
    if (!this.retired) return live;
    const out = add(this.retired, live);
    // Not counts: the live sender's view only.
    out.lastSuccessAt = live.lastSuccessAt ?? this.retired.lastSuccessAt;
    return out;
  }
}

function add(a: SenderStats, b: SenderStats): SenderStats {
  const out: SenderStats = { ...b, requests: { ...b.requests }, requestsByStatus: { ...b.requestsByStatus } };
  for (const k of COUNTED) out[k] = a[k] + b[k];
  for (const k of Object.keys(a.requests) as StatusClass[]) out.requests[k] = (a.requests[k] ?? 0) + (b.requests[k] ?? 0);
  for (const [k, n] of Object.entries(a.requestsByStatus)) out.requestsByStatus[k] = n + (b.requestsByStatus[k] ?? 0);
  out.latency = addHistograms(a.latency, b.latency);
  return out;
}

function addHistograms(a: HistogramSnapshot, b: HistogramSnapshot): HistogramSnapshot {
  return {
    boundsSeconds: b.boundsSeconds,
    cumulativeCounts: b.cumulativeCounts.map((n, i) => n + (a.cumulativeCounts[i] ?? 0)),
    count: a.count + b.count,
    sumSeconds: a.sumSeconds + b.sumSeconds,
  };
}
