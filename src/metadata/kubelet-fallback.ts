// The kubelet as a fallback of the apiserver provider (opt-in, metadata.kubeletFallback): a file
// whose pod the API server never showed us — created and deleted while the collector was down,
// or the API server unreachable — is asked about once, with one `GET /pods` to this node's
// kubelet for every UID that stayed unknown meanwhile. The kubelet answers from its own state,
// so the API server feels nothing. Each UID is asked about once: the router reports a held file
// on every turn, and a UID the kubelet does not know either waits out waitForMetadataSeconds.
import type { Logger } from "../log.ts";
import type { Clock, Timer } from "../platform/types.ts";
import type { PodCache } from "./cache.ts";
import type { K8sClient } from "./k8s-client.ts";
import { parsePodList } from "./k8s-objects.ts";
import { explainKubeletError } from "./kubelet-provider.ts";
import { deadline } from "./timing.ts";

export interface KubeletFallbackOptions {
  /** Give the watch this long to deliver the pod before asking the kubelet (default 2 s). */
  delayMs?: number;
  /** At most one request per this gap (default 1 s). */
  minGapMs?: number;
  timeoutMs?: number;
}

/** UIDs remembered as asked about (a bound on memory; the oldest are forgotten first). */
const MAX_ASKED = 10_000;

export class KubeletFallback {
  readonly counters = { kubeletAsks: 0, kubeletFound: 0, kubeletErrors: 0 };
  private readonly asked = new Set<string>();
  private readonly pending = new Set<string>();
  private readonly delayMs: number;
  private readonly minGapMs: number;
  private readonly timeoutMs: number;
  private timer: Timer | null = null;
  private inFlight = false;
  private lastAt = Number.NEGATIVE_INFINITY;
  private readonly abort = new AbortController();
  private apiComplete: () => boolean = () => false;

  constructor(
    private readonly client: K8sClient,
    private readonly cache: PodCache,
    private readonly clock: Clock,
    private readonly log: Logger,
    options: KubeletFallbackOptions = {},
  ) {
    this.delayMs = options.delayMs ?? 2000;
    this.minGapMs = options.minGapMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * A file of this UID waits for its pod. apiComplete says whether the API server's view is whole
   * (synced, not failing): then a pod only the kubelet knows is gone from the API server, and is
   * kept as a tombstone (for its files' sake) rather than as a live pod no event will ever delete.
   */
  ask(uid: string, apiComplete: () => boolean): void {
    if (this.asked.has(uid)) return;
    if (this.asked.size >= MAX_ASKED) this.asked.delete(this.asked.values().next().value as string);
    this.asked.add(uid);
    this.pending.add(uid);
    this.apiComplete = apiComplete;
    this.schedule();
  }

  stop(): void {
    this.abort.abort();
    this.timer?.cancel();
    this.timer = null;
    this.pending.clear();
  }

  private schedule(): void {
    if (this.timer || this.inFlight || this.pending.size === 0 || this.abort.signal.aborted) return;
    const at = Math.max(this.clock.now() + this.delayMs, this.lastAt + this.minGapMs);
    this.timer = this.clock.after(at - this.clock.now(), () => {
      this.timer = null;
      void this.poll();
    });
  }

  private async poll(): Promise<void> {
    const wanted = [...this.pending].filter((uid) => this.cache.get(uid) === undefined);
    this.pending.clear();
    if (wanted.length === 0) return;
    this.inFlight = true;
    this.lastAt = this.clock.now();
    this.counters.kubeletAsks++;
    const limit = deadline(this.clock, this.timeoutMs, this.abort.signal);
    try {
      const parsed = parsePodList(await this.client.getJson("/pods", limit.signal));
      const byUid = new Map(parsed.pods.map((p) => [p.uid, p]));
      const gone = this.apiComplete();
      for (const uid of wanted) {
        const pod = byUid.get(uid);
        if (!pod || this.cache.get(uid) !== undefined) continue;
        this.cache.upsert(pod);
        if (gone) this.cache.markDeleted(uid, this.clock.now());
        this.counters.kubeletFound++;
      }
      this.log.info("metadata: asked the kubelet about pods the API server did not show", { asked: wanted.length, found: this.counters.kubeletFound });
    } catch (err) {
      if (this.abort.signal.aborted && !limit.expired()) return;
      this.counters.kubeletErrors++;
      const msg = limit.expired() ? `GET /pods: no answer within ${this.timeoutMs} ms` : err instanceof Error ? err.message : String(err);
      this.log.warn("metadata: kubelet fallback failed", { error: explainKubeletError(msg) });
    } finally {
      limit.done();
      this.inFlight = false;
      this.schedule();
    }
  }
}
