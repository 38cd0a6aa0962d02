// `kubelet` provider (docs/metadata.md): polls the node's kubelet `GET /pods` — zero API-server load.
// Every pollIntervalMs, plus an early poll when a file of an unknown UID appears (rate-limited:
// at most one poll per minGapMs, whatever the number of unknown files). A failed poll keeps
// the cache as it was: an unreachable kubelet must not turn every pod into a tombstone.
// One early poll per unknown UID: a UID the kubelet does not know either waits for the regular
// polls (its file is held up to waitForMetadataSeconds), so a stray file cannot drive 1 poll/s.
import type { Logger } from "../log.ts";
import type { Clock, Timer } from "../platform/types.ts";
import type { PodCache } from "./cache.ts";
import type { K8sClient } from "./k8s-client.ts";
import { parsePodList } from "./k8s-objects.ts";
import { ProviderBase } from "./provider-base.ts";
import { deadline } from "./timing.ts";
import type { MetadataProvider } from "./types.ts";

export interface KubeletProviderOptions {
  pollIntervalMs: number;
  /** Minimum gap between two polls, early ones included (default min(1 s, pollIntervalMs)). */
  minGapMs?: number;
  /** Per-poll timeout (default max(pollIntervalMs, 10 s)). */
  timeoutMs?: number;
}

/** A kubelet error message with the usual cause spelled out (RBAC, self-signed certificate, authentication). */
export function explainKubeletError(msg: string): string {
  if (/HTTP 403/.test(msg)) return msg + " (RBAC: the service account needs get on nodes/pods (Kubernetes ≥ 1.36) or nodes/proxy)";
  if (/certificate|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(msg)) return msg + " (kubelet serving certificates are often self-signed: set metadata.caFile or metadata.insecureSkipTlsVerify)";
  if (/HTTP 401/.test(msg)) return msg + " (token rejected: the kubelet needs webhook authentication)";
  return msg;
}

export class KubeletProvider extends ProviderBase implements MetadataProvider {
  readonly name = "kubelet" as const;
  private readonly pollIntervalMs: number;
  private readonly minGapMs: number;
  private readonly timeoutMs: number;
  private timer: Timer | null = null;
  private nextAt = 0;
  private lastPollAt = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | null = null;
  private pollAgain = false;
  private running = false;
  private abort = new AbortController();
  /** UIDs that already brought a poll forward: the router reports a held file on every turn. */
  private readonly earlyFor = new Set<string>();

  constructor(
    private readonly client: K8sClient,
    options: KubeletProviderOptions,
    cache: PodCache,
    log: Logger,
    clock?: Clock,
  ) {
    super(cache, log, clock);
    this.pollIntervalMs = options.pollIntervalMs;
    this.minGapMs = options.minGapMs ?? Math.min(1000, options.pollIntervalMs);
    this.timeoutMs = options.timeoutMs ?? Math.max(options.pollIntervalMs, 10_000);
    for (const c of ["polls", "earlyPolls", "invalidPods", "unknownPodNotices"]) this.counters[c] = 0;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.startSweeper();
    await this.poll();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.timer?.cancel();
    this.timer = null;
    this.stopSweeper();
    await this.inFlight;
  }

  notifyUnknownPod(uid: string): void {
    this.count("unknownPodNotices");
    if (!this.running || this.cache.get(uid) !== undefined || this.earlyFor.has(uid)) return;
    if (this.earlyFor.size >= 10_000) this.earlyFor.clear();
    this.earlyFor.add(uid);
    if (this.inFlight) {
      // The answer in flight may predate the pod: poll once more after it.
      this.pollAgain = true;
      return;
    }
    const at = Math.max(this.now(), this.lastPollAt + this.minGapMs);
    if (at < this.nextAt) {
      this.count("earlyPolls");
      this.schedule(at - this.now());
    }
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer?.cancel();
    this.nextAt = this.now() + delayMs;
    this.timer = this.clock.after(Math.max(0, delayMs), () => {
      this.timer = null;
      void this.poll();
    });
  }

  private poll(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    this.inFlight = this.pollOnce().finally(() => {
      this.inFlight = null;
      const again = this.pollAgain;
      this.pollAgain = false;
      this.schedule(again ? this.minGapMs : this.pollIntervalMs);
    });
    return this.inFlight;
  }

  private async pollOnce(): Promise<void> {
    this.lastPollAt = this.now();
    this.count("polls");
    const timeout = deadline(this.clock, this.timeoutMs, this.abort.signal);
    try {
      const parsed = parsePodList(await this.client.getJson("/pods", timeout.signal));
      this.cache.replaceAll(parsed.pods, this.now());
      this.counters.invalidPods = parsed.invalidItems;
      const first = !this.synced;
      this.markSynced();
      if (first) this.log.info("metadata: kubelet pods polled", { pods: parsed.pods.length });
    } catch (err) {
      if (this.abort.signal.aborted) return;
      const msg = timeout.expired() ? `GET /pods: no answer within ${this.timeoutMs} ms` : err instanceof Error ? err.message : String(err);
      this.markError(explainKubeletError(msg));
    } finally {
      timeout.done();
    }
  }
}
