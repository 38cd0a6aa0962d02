// What every provider shares: the status record, counters, and the tombstone sweeper.
import type { Logger } from "../log.ts";
import { systemClock } from "../platform/clock.ts";
import type { Clock, Timer } from "../platform/types.ts";
import type { PodCache } from "./cache.ts";
import type { MetadataProviderStatus } from "./types.ts";

/** Sweep cadence: often enough for the grace period, never more than once a second while idle. */
export function sweepIntervalMs(cache: PodCache): number {
  return Math.min(10_000, Math.max(1_000, Math.floor(cache.deletionGraceMs / 2)));
}

export abstract class ProviderBase {
  abstract readonly name: MetadataProviderStatus["provider"];
  protected synced = false;
  protected failing = false;
  protected lastSyncAt: string | null = null;
  protected lastError: string | null = null;
  protected readonly counters: Record<string, number> = { errors: 0 };
  private sweeper: Timer | null = null;

  constructor(
    protected readonly cache: PodCache,
    protected readonly log: Logger,
    protected readonly clock: Clock = systemClock,
  ) {}

  protected now(): number {
    return this.clock.now();
  }

  status(): MetadataProviderStatus {
    const c = this.cache.counts();
    return {
      provider: this.name,
      synced: this.synced,
      failing: this.failing,
      lastSyncAt: this.lastSyncAt,
      lastError: this.lastError,
      podsKnown: c.podsKnown,
      tombstones: c.tombstones,
      counters: { ...this.counters, sweptTombstones: c.swept, retainedPods: c.retainedPods },
    };
  }

  protected count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }

  protected markSynced(): void {
    this.synced = true;
    this.failing = false;
    this.lastSyncAt = new Date(this.now()).toISOString();
  }

  /** Records a provider error (message only: callers never put secrets in it). */
  protected markError(message: string, fields: Record<string, unknown> = {}): void {
    this.count("errors");
    this.failing = true;
    if (this.lastError !== message) this.log.warn("metadata provider error", { provider: this.name, error: message, ...fields });
    this.lastError = message;
  }

  protected startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = this.clock.every(sweepIntervalMs(this.cache), () => this.cache.sweep(this.now()));
  }

  protected stopSweeper(): void {
    this.sweeper?.cancel();
    this.sweeper = null;
  }
}
