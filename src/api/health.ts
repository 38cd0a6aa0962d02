// Liveness and the pipeline's health reasons (README "Verifying it works"), as pure logic over
// samples of the stages' public state, taken on a timer and on every request
// (src/lifecycle/health-watch.ts).
//
// Liveness answers one question: is a loop stuck *without* being blocked by backpressure? A
// loop waiting for work, or waiting because the next stage is full (ring full, messenger
// failing, every request slot taken), is doing its job; restarting the pod would not help and
// would lose the open descriptors of deleted files. So each loop is judged by what it waits on:
//   - source pump: an emit (hand-over to the ring) pending for longer than `stuckAfterMs`
//     while the ring is not full;
//   - sender loop: records in the ring that it has not taken, request capacity free, and no
//     read for longer than `stuckAfterMs` (its flush interval included);
//   - ring sync timer: records appended but not durable for longer than the sync interval
//     plus `stuckAfterMs` (an fdatasync that never returns).
// The event loop itself: if it is blocked, /health does not answer and the probe times out.

export interface HealthSample {
  now: number;
  stopping: boolean;
  ring: { full: boolean; lastSeq: number; durableSeq: number };
  /** Epoch ms the oldest pending source emit started; null when none is pending. */
  sourceEmitSince: number | null;
  sender: {
    /** Records in the ring not yet handed to the sender. */
    unread: boolean;
    /** Every outstanding-batch slot taken: waiting on the messenger (backpressure). */
    atCapacity: boolean;
    lastReadAt: number;
    /** Epoch ms of the first failure since the last success; null while delivering. */
    failingSince: number | null;
    /** Reasons the sender reports itself (key/URL rejected, failing for long, ...). */
    reasons: string[];
  };
  metadata: { provider: string; failing: boolean; synced: boolean; lastError: string | null };
  /** Checkpoint saves failing since (epoch ms; null: fine), and why. */
  checkpoints: { failingSince: number | null; lastError: string | null };
  /** Prefix table writes failing since (epoch ms; null: fine or nothing to write), and why. */
  prefixTable: { failingSince: number | null; lastError: string | null };
}

export interface HealthThresholds {
  sinkFailingSeconds: number;
  bufferFullSeconds: number;
  /** A loop making no progress while not blocked by backpressure for this long is stuck. */
  stuckAfterMs: number;
  syncIntervalMs: number;
  flushIntervalMs: number;
}

export type LoopName = "source" | "sender" | "ringSync";
export type LoopState = "idle" | "working" | "blocked" | "stuck";

export interface LoopStatus {
  state: LoopState;
  /** Epoch ms since when the loop has been in a non-idle state (null when idle). */
  since: number | null;
  detail?: string;
}

export interface HealthVerdict {
  /** /health: the loops are alive (not shutting down, none stuck). */
  live: boolean;
  /** Why /health fails ("shutting down", "<loop> loop stuck: …"); empty while live. */
  liveReasons: string[];
  /** /status pipeline.healthy and its reasons. */
  healthy: boolean;
  reasons: string[];
  loops: Record<LoopName, LoopStatus>;
  ringFullSince: number | null;
}

export class HealthMonitor {
  private ringFullSince: number | null = null;
  private notDurableSince: number | null = null;
  private sourceBusySince: number | null = null;
  private lastDurable = 0;
  private busyEmit: number | null = null;
  private blockedEmit: number | null = null;

  constructor(public thresholds: HealthThresholds) {}

  evaluate(s: HealthSample): HealthVerdict {
    const t = this.thresholds;
    const now = s.now;
    // Ring full episode.
    if (s.ring.full) this.ringFullSince ??= now;
    else this.ringFullSince = null;

    // Source pump: an emit waiting while the ring is full is backpressure; the clock restarts
    // once the ring has room.
    let source: LoopStatus;
    const emit = s.sourceEmitSince;
    if (emit === null) {
      this.sourceBusySince = null;
      source = { state: "idle", since: null };
    } else if (s.ring.full) {
      this.sourceBusySince = null;
      this.blockedEmit = emit;
      source = { state: "blocked", since: this.ringFullSince, detail: "ring full (backpressure)" };
    } else {
      if (this.sourceBusySince === null || this.busyEmit !== emit) {
        // An emit that waited on a full ring is judged from when the ring had room again.
        this.sourceBusySince = this.blockedEmit === emit ? now : emit;
        this.busyEmit = emit;
      }
      const busy = now - this.sourceBusySince;
      source = busy > t.stuckAfterMs
        ? { state: "stuck", since: this.sourceBusySince, detail: `handing lines to the ring for ${secs(busy)} s with room in the ring` }
        : { state: "working", since: this.sourceBusySince };
    }

    // Sender loop.
    let sender: LoopStatus;
    const sinceRead = now - s.sender.lastReadAt;
    if (!s.sender.unread) sender = { state: "idle", since: null };
    else if (s.sender.atCapacity) sender = { state: "blocked", since: null, detail: "every batch slot waiting on the messenger (backpressure)" };
    else if (sinceRead > t.stuckAfterMs + t.flushIntervalMs) {
      sender = { state: "stuck", since: s.sender.lastReadAt, detail: `records waiting in the ring, none taken for ${secs(sinceRead)} s` };
    } else sender = { state: "working", since: s.sender.lastReadAt };

    // Ring sync timer.
    let ringSync: LoopStatus;
    const progressed = s.ring.durableSeq > this.lastDurable;
    this.lastDurable = s.ring.durableSeq;
    if (s.ring.durableSeq >= s.ring.lastSeq) {
      this.notDurableSince = null;
      ringSync = { state: "idle", since: null };
    } else {
      // Progress (a newer durable seq) restarts the clock: under steady load the ring is always
      // a little behind, and that is fine as long as syncs complete.
      if (progressed || this.notDurableSince === null) this.notDurableSince = now;
      const pending = now - this.notDurableSince;
      ringSync = pending > t.syncIntervalMs + t.stuckAfterMs
        ? { state: "stuck", since: this.notDurableSince, detail: `appended records not durable for ${secs(pending)} s (fdatasync not returning?)` }
        : { state: "working", since: this.notDurableSince };
    }
    const loops = { source, sender, ringSync };

    const stuck = Object.entries(loops).flatMap(([name, l]) => (l.state === "stuck" ? [`${name} loop stuck: ${l.detail}`] : []));
    const reasons = [...stuck];
    if (s.sender.failingSince !== null && now - s.sender.failingSince > t.sinkFailingSeconds * 1000) {
      reasons.push(`messenger failing for ${secs(now - s.sender.failingSince)} s`);
    }
    reasons.push(...s.sender.reasons);
    if (this.ringFullSince !== null && now - this.ringFullSince > t.bufferFullSeconds * 1000) {
      reasons.push(`ring full for ${secs(now - this.ringFullSince)} s (reading paused)`);
    }
    if (s.checkpoints.failingSince !== null) {
      reasons.push(`checkpoints not written for ${secs(now - s.checkpoints.failingSince)} s (${whyNotWritten(s.checkpoints.lastError)}): positions are kept, lines are read again after a restart`);
    }
    if (s.prefixTable.failingSince !== null) {
      reasons.push(`prefix table not written for ${secs(now - s.prefixTable.failingSince)} s (${whyNotWritten(s.prefixTable.lastError)}): new containers' records are stored whole, nothing is lost`);
    }
    if (s.metadata.failing) {
      reasons.push(`metadata unavailable: ${s.metadata.provider} provider failing${s.metadata.lastError ? ` (${s.metadata.lastError})` : ""}`);
    }
    const liveReasons = s.stopping ? ["shutting down", ...stuck] : stuck;
    return { live: liveReasons.length === 0, liveReasons, healthy: reasons.length === 0, reasons, loops, ringFullSince: this.ringFullSince };
  }
}

function whyNotWritten(lastError: string | null): string {
  return lastError === "ENOSPC" ? "the data dir's disk is full" : (lastError ?? "");
}

function secs(ms: number): number {
  return Math.round(ms / 100) / 10;
}
