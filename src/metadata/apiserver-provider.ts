// `apiserver` provider (docs/metadata.md): list, then watch, the pods of this node only
// (fieldSelector=spec.nodeName=$NODE_NAME), as a client-go reflector does:
//   - the first list uses resourceVersion=0 (served from the API server's watch cache, cheap on
//     large clusters); a list after 410 Gone is a consistent one (no resourceVersion);
//   - the watch resumes from the last resourceVersion seen (events and BOOKMARKs);
//   - a watch that ends (server timeout, cut stream) is reopened from there — no relist;
//   - ERROR 410 Gone (history compacted) ⇒ relist; the cache's replaceAll turns pods that
//     vanished meanwhile into tombstones and never duplicates an entry;
//   - any failure ⇒ retry with exponential backoff and full jitter; a periodic relist resyncs.
import type { Logger } from "../log.ts";
import type { PodCache } from "./cache.ts";
import { type K8sClient, K8sHttpError } from "./k8s-client.ts";
import { isStatus, parsePodList, podMetaFromObject, resourceVersionOf, type WatchEvent } from "./k8s-objects.ts";
import { ProviderBase } from "./provider-base.ts";
import type { MetadataProvider, PodMeta } from "./types.ts";

export interface ApiserverProviderOptions {
  nodeName: string;
  /** Relist this often even when the watch is healthy (default 15 min, ±10 % jitter). */
  resyncIntervalMs?: number;
  /** Server-side watch timeout, randomised in [t, 2t) as client-go does (default 300 s). */
  watchTimeoutSeconds?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Page size of consistent lists (default 500). */
  listPageSize?: number;
  /** A list request that has not answered by then is abandoned and retried (default 30 s). */
  requestTimeoutMs?: number;
}

class Gone extends Error {}
class WatchErrorEvent extends Error {}

/** Exponential backoff with full jitter. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}
  next(): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt++, 30));
    return Math.max(1, Math.floor(this.random() * cap));
  }
  reset(): void {
    this.attempt = 0;
  }
}

export class ApiserverProvider extends ProviderBase implements MetadataProvider {
  readonly name = "apiserver" as const;
  private readonly o: Required<ApiserverProviderOptions>;
  private readonly backoff: Backoff;
  private abort = new AbortController();
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private resourceVersion: string | null = null;

  constructor(
    private readonly client: K8sClient,
    options: ApiserverProviderOptions,
    cache: PodCache,
    log: Logger,
    now?: () => number,
  ) {
    super(cache, log, now);
    this.o = {
      resyncIntervalMs: 15 * 60_000,
      watchTimeoutSeconds: 300,
      backoffInitialMs: 500,
      backoffMaxMs: 30_000,
      listPageSize: 500,
      requestTimeoutMs: 30_000,
      ...options,
    };
    this.backoff = new Backoff(this.o.backoffInitialMs, this.o.backoffMaxMs);
    for (const c of ["lists", "relists", "watches", "watchRestarts", "watchEvents", "watchStreamErrors", "bookmarks", "gone", "invalidPods", "unknownPodNotices"]) this.counters[c] = 0;
  }

  async start(): Promise<void> {
    if (this.loop) return;
    this.abort = new AbortController();
    this.startSweeper();
    let firstAttempt!: () => void;
    const attempted = new Promise<void>((r) => (firstAttempt = r));
    this.loop = this.run(firstAttempt);
    await attempted;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    this.stopSweeper();
    await this.loop;
    this.loop = null;
  }

  /**
   * The watch delivers new pods by itself. Deliberately no early retry while failing: the router
   * reports held files on every turn, and that must not defeat the backoff against a sick server.
   */
  notifyUnknownPod(_uid: string): void {
    this.count("unknownPodNotices");
  }

  private get selector(): string {
    return `fieldSelector=${encodeURIComponent(`spec.nodeName=${this.o.nodeName}`)}`;
  }

  private async run(firstAttempt: () => void): Promise<void> {
    const signal = this.abort.signal;
    let needList = true;
    let consistent = false;
    let nextResync = 0;
    let listedOnce = false;
    while (!signal.aborted) {
      try {
        if (needList || this.now() >= nextResync) {
          try {
            await this.list(consistent, signal);
          } finally {
            firstAttempt();
          }
          if (listedOnce) this.count("relists");
          listedOnce = true;
          needList = false;
          consistent = false;
          nextResync = this.now() + this.o.resyncIntervalMs * (0.9 + Math.random() * 0.2);
        }
        const started = this.now();
        const delivered = await this.watchOnce(signal, nextResync);
        if (signal.aborted) break;
        this.count("watchRestarts");
        if (delivered) this.backoff.reset();
        // A watch closed at once with nothing in it (a proxy, an overloaded server): do not spin.
        else if (this.now() - started < 1000) await this.sleep(this.backoff.next());
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof Gone || (err instanceof K8sHttpError && err.status === 410)) {
          // History compacted: our resourceVersion is too old. Relist, consistently.
          this.count("gone");
          // A 410 from the relist itself (an expired continue token): back off before the next.
          const fromList = needList;
          needList = true;
          consistent = true;
          this.log.info("metadata: resourceVersion expired (410 Gone), relisting", { node: this.o.nodeName });
          if (fromList) await this.sleep(this.backoff.next());
          continue;
        }
        this.markError(describe(err));
        await this.sleep(this.backoff.next());
      }
    }
  }

  /** Lists the node's pods (paged when consistent) and replaces the cache's view. */
  private async list(consistent: boolean, signal: AbortSignal): Promise<void> {
    const pods: PodMeta[] = [];
    let invalid = 0;
    let cont: string | null = null;
    let rv: string | null = null;
    do {
      const q = consistent || cont ? `&limit=${this.o.listPageSize}` + (cont ? `&continue=${encodeURIComponent(cont)}` : "") : "&resourceVersion=0";
      const timeout = AbortSignal.timeout(this.o.requestTimeoutMs);
      let body: unknown;
      try {
        body = await this.client.getJson(`/api/v1/pods?${this.selector}${q}`, AbortSignal.any([signal, timeout]));
      } catch (err) {
        if (timeout.aborted && !signal.aborted) throw new Error(`listing pods: no answer within ${this.o.requestTimeoutMs} ms`);
        throw err;
      }
      const parsed = parsePodList(body);
      pods.push(...parsed.pods);
      invalid += parsed.invalidItems;
      rv = parsed.resourceVersion;
      cont = parsed.continueToken;
    } while (cont);
    if (rv === null) throw new Error("the pod list has no resourceVersion");
    this.cache.replaceAll(pods, this.now());
    this.resourceVersion = rv;
    this.counters.invalidPods = invalid;
    this.count("lists");
    this.markSynced();
    this.backoff.reset();
    this.log.info("metadata: pods listed", { node: this.o.nodeName, pods: pods.length, resourceVersion: rv });
    if (pods.length === 0) {
      // In a DaemonSet the collector's own pod is on the node: none at all means a wrong NODE_NAME.
      this.log.warn("metadata: no pods on this node; is NODE_NAME the node's name (spec.nodeName)?", { node: this.o.nodeName });
    }
  }

  /** One watch request; returns whether it delivered anything. Throws Gone on a 410 ERROR. */
  private async watchOnce(signal: AbortSignal, resyncAt: number): Promise<boolean> {
    const t = this.o.watchTimeoutSeconds;
    const timeout = Math.max(1, Math.min(Math.floor(t * (1 + Math.random())), Math.ceil((resyncAt - this.now()) / 1000)));
    const path =
      `/api/v1/pods?${this.selector}&watch=true&allowWatchBookmarks=true&timeoutSeconds=${timeout}` +
      `&resourceVersion=${encodeURIComponent(this.resourceVersion ?? "0")}`;
    this.count("watches");
    let delivered = false;
    let opened = false;
    const onOpen = () => {
      opened = true;
      if (this.failing) this.markSynced();
    };
    try {
      for await (const ev of this.client.watch(path, { signal, idleTimeoutMs: (timeout + 30) * 1000, onOpen })) {
        delivered = true;
        this.apply(ev);
      }
    } catch (err) {
      // A stream broken after it opened (reset, proxy, idle timeout) is routine: resume from the
      // last resourceVersion at once. A request that fails to open is a provider error.
      if (!opened || err instanceof Gone || err instanceof WatchErrorEvent || signal.aborted) throw err;
      this.count("watchStreamErrors");
      this.log.debug("metadata: watch stream broken, resuming", { error: describe(err), resourceVersion: this.resourceVersion });
    }
    return delivered;
  }

  private apply(ev: WatchEvent): void {
    this.count("watchEvents");
    if (ev.type === "ERROR") {
      const s = ev.object;
      if (isStatus(s) && s.code === 410) throw new Gone(s.message);
      throw new WatchErrorEvent(`watch ERROR event: ${isStatus(s) ? `${s.code} ${s.reason}: ${s.message}` : "no Status"}`);
    }
    const rv = resourceVersionOf(ev.object);
    if (ev.type === "BOOKMARK") {
      this.count("bookmarks");
    } else {
      const meta = podMetaFromObject(ev.object);
      if (meta === null) this.count("invalidPods");
      else if (ev.type === "DELETED") this.cache.markDeleted(meta.uid, this.now());
      else this.cache.upsert(meta);
    }
    if (rv !== null) this.resourceVersion = rv;
  }

  /** Sleeps, cut short by stop(). */
  private sleep(ms: number): Promise<void> {
    const signal = this.abort.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.wake = done;
    });
  }

}

function describe(err: unknown): string {
  if (err instanceof K8sHttpError && err.status === 403) {
    return `${err.message} (RBAC: the collector's service account needs get/list/watch on pods)`;
  }
  if (err instanceof K8sHttpError && err.status === 401) return `${err.message} (token rejected or expired)`;
  return err instanceof Error ? err.message : String(err);
}
