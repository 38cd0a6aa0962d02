// Samples the stages for the health monitor (src/api/health.ts): on a timer, so that "full for
// N s" and "stuck" episodes are timed between requests, and on every request that asks. Each
// change of the reasons is logged once, whoever observed it; durations inside a reason ("failing
// for 12.5 s") are not a change.
import type { RingStats } from "../buffer/types.ts";
import type { Config } from "../config/schema.ts";
import { HealthMonitor, type HealthThresholds, type HealthVerdict } from "../api/health.ts";
import type { Logger } from "../log.ts";
import type { MetadataProviderStatus } from "../metadata/types.ts";
import type { Router } from "../pipeline/router.ts";
import type { SenderStats } from "../sink/sender.ts";

/** A loop making no progress while not blocked by backpressure this long fails liveness. */
export const DEFAULT_STUCK_AFTER_MS = 60_000;
/**
 * Thresholds are tens of seconds, and an idle collector must wake at most about once a second in
 * total (every request samples as well).
 */
export const DEFAULT_SAMPLE_INTERVAL_MS = 2000;

/** What the monitor samples; each read at the sample. */
export interface HealthInputs {
  stopping(): boolean;
  ring(): Pick<RingStats, "full" | "nextSeq" | "durableSeq">;
  /** Epoch ms the source's pending hand-over to the router started; null when none is pending. */
  emitSince(): number | null;
  /** The consumer side of the ring: the sender loop's heartbeat. */
  tap: { readonly highestHandedOut: number; readonly replayPending: boolean; readonly lastReadAt: number };
  /** The live sender's own stats. */
  sender(): Pick<SenderStats, "atOutstandingLimit" | "failingSince" | "healthReasons">;
  metadata(): Pick<MetadataProviderStatus, "provider" | "failing" | "synced" | "lastError">;
  checkpoints(): { failingSince: number | null; lastError: string | null };
  prefixTable(): { failingSince: number | null; lastError: string | null };
}

export function healthThresholds(config: Config, stuckAfterMs = DEFAULT_STUCK_AFTER_MS): HealthThresholds {
  return {
    sinkFailingSeconds: config.health.sinkFailingSeconds,
    bufferFullSeconds: config.health.bufferFullSeconds,
    stuckAfterMs,
    syncIntervalMs: config.buffer.syncIntervalMs,
    flushIntervalMs: config.messenger.flushIntervalMs,
  };
}

export class HealthWatch {
  private readonly monitor: HealthMonitor;
  private lastReasons = "";
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly inputs: HealthInputs,
    thresholds: HealthThresholds,
    private readonly log: Logger,
  ) {
    this.monitor = new HealthMonitor(thresholds);
  }

  /** A SIGHUP changed the thresholds. */
  setThresholds(thresholds: HealthThresholds): void {
    this.monitor.thresholds = thresholds;
  }

  verdict(): HealthVerdict {
    const i = this.inputs;
    const r = i.ring();
    const s = i.sender();
    const m = i.metadata();
    const v = this.monitor.evaluate({
      now: Date.now(),
      stopping: i.stopping(),
      ring: { full: r.full, lastSeq: r.nextSeq - 1, durableSeq: r.durableSeq },
      sourceEmitSince: i.emitSince(),
      sender: {
        unread: r.nextSeq - 1 > i.tap.highestHandedOut || i.tap.replayPending,
        atCapacity: s.atOutstandingLimit,
        lastReadAt: i.tap.lastReadAt,
        failingSince: s.failingSince,
        reasons: s.healthReasons,
      },
      metadata: { provider: m.provider, failing: m.failing, synced: m.synced, lastError: m.lastError },
      checkpoints: i.checkpoints(),
      prefixTable: i.prefixTable(),
    });
    this.logChange(v.reasons);
    return v;
  }

  /** Samples every `intervalMs` until stop(); the timer does not keep the process alive. */
  start(intervalMs = DEFAULT_SAMPLE_INTERVAL_MS): void {
    this.timer = setInterval(() => this.verdict(), intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private logChange(reasons: string[]): void {
    const key = reasons.map((r) => r.replace(/\d+(\.\d+)? s\b/g, "N s")).join("\n");
    if (key === this.lastReasons) return;
    if (reasons.length) this.log.warn(this.lastReasons === "" ? "pipeline unhealthy" : "pipeline unhealthy: reasons changed", { reasons });
    else this.log.info("pipeline healthy again");
    this.lastReasons = key;
  }
}

/**
 * The source's hand-over to the router, timed: the source pump's heartbeat. Wraps the router as
 * the source's output; `since` is when the pending emit started (null when none is pending).
 */
export class EmitHeartbeat {
  since: number | null = null;

  around(router: Pick<Router, "opened" | "decide" | "emit" | "closed">): Pick<Router, "opened" | "decide" | "emit" | "closed"> {
    return {
      opened: (file) => router.opened(file),
      decide: (file, now) => router.decide(file, now),
      emit: async (file, lines) => {
        this.since = Date.now();
        try {
          return await router.emit(file, lines);
        } finally {
          this.since = null;
        }
      },
      closed: (file) => router.closed(file),
    };
  }
}
