// `apiserver` provider (docs/metadata.md): the pods of this node only (fieldSelector=spec.nodeName),
// kept in sync with one long watch, so that thousands of nodes stay quiet (docs/metadata.md,
// "Load on the API server"):
//   - sync with a watch-list (KEP-3157: list and watch in one request) when the server has it,
//     else a list; both from the API server's watch cache (resourceVersion=0 at start,
//     NotOlderThan the last resourceVersion seen after 410 Gone) — never a consistent list;
//   - the watch resumes from the last resourceVersion (events and BOOKMARKs); its server-side
//     timeout is one to two hours; a watch that ends is reopened from there, no relist;
//   - a broken stream, and a 410 in a stream that was open, wait a random delay within
//     reconnectWindowMs first, so that a restarted or compacted API server sees the fleet arrive
//     spread out instead of in the same second; a request that fails backs off exponentially;
//   - the cache's replaceAll turns pods that vanished meanwhile into tombstones.
import type { Logger } from "../log.ts";
import type { Clock } from "../platform/types.ts";
import {
  classifyHttpError,
  describeError,
  errorFromStatus,
  Gone,
  isInitialEventsEnd,
  listPath,
  type SyncFrom,
  TooLargeResourceVersion,
  WatchErrorEvent,
  watchListPath,
  WatchListRefused,
  watchPath,
} from "./apiserver-requests.ts";
import type { PodCache } from "./cache.ts";
import type { K8sClient } from "./k8s-client.ts";
import { parsePodList, podMetaFromObject, resourceVersionOf, type WatchEvent } from "./k8s-objects.ts";
import type { KubeletFallback } from "./kubelet-fallback.ts";
import { ProviderBase } from "./provider-base.ts";
import { Backoff, deadline, sleepOn } from "./timing.ts";
import type { MetadataProvider, PodMeta } from "./types.ts";

export interface ApiserverProviderOptions {
  nodeName: string;
  /** Sync with a watch-list when the server supports it (default true; falls back by itself). */
  watchList?: boolean;
  /** Relist this often even when the watch is healthy; 0 = never (default: the watch is enough). */
  resyncIntervalMs?: number;
  /** Server-side watch timeout, randomised in [t, 2t) (default 3600 s: under one watch an hour). */
  watchTimeoutSeconds?: number;
  /** A watch silent this long, once the server proved it sends periodic BOOKMARKs, is dead (default 180 s). */
  watchIdleSeconds?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Reconnects after a broken stream, and resyncs after a 410 in an open stream, wait U[0, this) (default 15 s). */
  reconnectWindowMs?: number;
  /** A list (or a watch-list's initial events) not done by then is abandoned (default 30 s). */
  requestTimeoutMs?: number;
  /** Asks the kubelet about pods the API server never showed us (opt-in). */
  kubeletFallback?: KubeletFallback | null;
  /** Randomness for jitter (the fleet simulation seeds it). */
  random?: () => number;
}

/** The stream opened, then broke: resume after a spread delay. */
class StreamBroken extends Error {}
/** A watch-list whose initial events did not end (in time, or before the stream ended): list instead. */
class WatchListIncomplete extends Error {}

interface LoopState {
  /** null: in sync, watch from the last resourceVersion; otherwise where the next sync starts. */
  from: SyncFrom | null;
  /** The next sync is a list (a watch-list did not complete). */
  listOnce: boolean;
  /** Wait this long before the next request. */
  delayMs: number;
  resyncAt: number;
}

/** A 410 answered this soon after the request opened is the answer to a request already spread out. */
const ANSWER_AT_ONCE_MS = 1000;

type Options = Required<Omit<ApiserverProviderOptions, "kubeletFallback">>;

export class ApiserverProvider extends ProviderBase implements MetadataProvider {
  readonly name = "apiserver" as const;
  private readonly o: Options;
  private readonly backoff: Backoff;
  private readonly fallback: KubeletFallback | null;
  private abort = new AbortController();
  private loop: Promise<void> | null = null;
  private resourceVersion: string | null = null;
  private useWatchList: boolean;
  /** The server sends BOOKMARKs within a stream (every minute): a long silence means a dead peer. */
  private periodicBookmarks = false;
  private bookmarksOnStream = 0;
  private eventsOnStream = 0;
  private syncedOnce = false;

  constructor(
    private readonly client: K8sClient,
    options: ApiserverProviderOptions,
    cache: PodCache,
    log: Logger,
    clock?: Clock,
  ) {
    super(cache, log, clock);
    const { kubeletFallback, ...rest } = options;
    this.o = {
      watchList: true,
      resyncIntervalMs: 0,
      watchTimeoutSeconds: 3600,
      watchIdleSeconds: 180,
      backoffInitialMs: 500,
      backoffMaxMs: 30_000,
      reconnectWindowMs: 15_000,
      requestTimeoutMs: 30_000,
      random: Math.random,
      ...rest,
    };
    this.fallback = kubeletFallback ?? null;
    this.useWatchList = this.o.watchList;
    this.backoff = new Backoff(this.o.backoffInitialMs, this.o.backoffMaxMs, this.o.random);
    const names = ["lists", "relists", "watches", "watchLists", "watchListFallbacks", "watchRestarts", "watchEvents", "watchStreamErrors", "bookmarks", "gone", "invalidPods", "unknownPodNotices"];
    for (const c of names) this.counters[c] = 0;
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
    this.stopSweeper();
    this.fallback?.stop();
    await this.loop;
    this.loop = null;
  }

  /**
   * The watch delivers new pods by itself: no early request to the API server (the router reports
   * held files on every turn, and that must not defeat the backoff against a sick server). With
   * the kubelet fallback on, the kubelet is asked once about a UID that stays unknown.
   */
  notifyUnknownPod(uid: string): void {
    this.count("unknownPodNotices");
    if (this.fallback && this.loop && this.cache.get(uid) === undefined) this.fallback.ask(uid, () => this.synced && !this.failing);
  }

  override status() {
    const s = super.status();
    if (this.fallback) Object.assign(s.counters, this.fallback.counters);
    return s;
  }

  private spread(): number {
    return Math.floor(this.o.random() * this.o.reconnectWindowMs);
  }

  private watchTimeoutSeconds(resyncAt: number): number {
    const t = Math.floor(this.o.watchTimeoutSeconds * (1 + this.o.random()));
    return Math.max(1, Math.min(t, Math.ceil((resyncAt - this.now()) / 1000)));
  }

  private idleTimeoutMs(timeoutSeconds: number): () => number {
    return () => (this.periodicBookmarks ? this.o.watchIdleSeconds : timeoutSeconds + 30) * 1000;
  }

  private async run(firstAttempt: () => void): Promise<void> {
    const signal = this.abort.signal;
    const st: LoopState = { from: "0", listOnce: false, delayMs: 0, resyncAt: Number.POSITIVE_INFINITY };
    const onSynced = () => {
      st.from = null;
      if (this.o.resyncIntervalMs > 0) st.resyncAt = this.now() + this.o.resyncIntervalMs * (0.9 + this.o.random() * 0.2);
      firstAttempt();
    };
    while (!signal.aborted) {
      if (st.delayMs > 0) await sleepOn(this.clock, st.delayMs, signal);
      st.delayMs = 0;
      if (signal.aborted) break;
      if (st.from === null && this.now() >= st.resyncAt) st.from = this.resyncFrom();
      const openedAt = this.now();
      const syncing = st.from !== null;
      try {
        if (st.from !== null && (!this.useWatchList || st.listOnce)) {
          st.listOnce = false;
          await this.list(st.from, signal);
          onSynced();
          continue;
        }
        // A watch-list syncs, then goes on as the watch until its stream ends.
        if (st.from !== null) await this.watchList(st.from, st.resyncAt, signal, onSynced);
        else await this.watch(st.resyncAt, signal);
        if (signal.aborted) break;
        this.count("watchRestarts");
        // A watch closed at once with nothing in it (a proxy, an overloaded server): do not spin.
        if (this.now() - openedAt < ANSWER_AT_ONCE_MS && this.eventsOnStream === 0) st.delayMs = this.backoff.next();
      } catch (err) {
        if (signal.aborted) break;
        this.recover(err, st, openedAt);
        // start() waits for the first sync attempt; a refused or incomplete watch-list is followed by a list at once.
        if (syncing && !(err instanceof WatchListRefused || err instanceof WatchListIncomplete)) firstAttempt();
      }
    }
  }

  /** What a failed request means for the next one: where to sync from, and how long to wait. */
  private recover(err: unknown, st: LoopState, openedAt: number): void {
    const inSync = st.from === null;
    if (err instanceof Gone) {
      // History compacted (or a restarted API server's fresh cache): resync from the watch cache,
      // no older than what we have seen. Spread out unless this request was itself spread out.
      this.count("gone");
      this.log.info("metadata: resourceVersion expired (410 Gone), resyncing from the watch cache", { node: this.o.nodeName });
      st.from = !inSync || this.resourceVersion === null ? "0" : { notOlderThan: this.resourceVersion };
      if (!inSync) st.delayMs = this.backoff.next();
      else if (this.now() - openedAt >= ANSWER_AT_ONCE_MS) st.delayMs = this.spread();
    } else if (err instanceof TooLargeResourceVersion) {
      // The cache has not caught up yet (a restarted API server): wait, then take what it has.
      st.from = "0";
      st.delayMs = this.backoff.next();
    } else if (err instanceof WatchListRefused) {
      this.useWatchList = false;
      this.count("watchListFallbacks");
      this.log.warn("metadata: the API server refuses watch-list requests; using list + watch", { error: err.message });
    } else if (err instanceof WatchListIncomplete) {
      st.listOnce = true;
      this.count("watchListFallbacks");
      this.log.warn("metadata: watch-list did not complete; listing instead", { error: err.message });
    } else if (err instanceof StreamBroken) {
      // Routine (reset, proxy, idle timeout, a restarting API server): resume from the last
      // resourceVersion, after a spread delay so that a fleet cut at once does not return at once.
      this.count("watchStreamErrors");
      this.count("watchRestarts");
      this.log.debug("metadata: watch stream broken, resuming", { error: err.message, resourceVersion: this.resourceVersion });
      st.delayMs = this.spread();
    } else {
      // Retries are spread over the reconnect window too: a fleet whose API server is down
      // must not come back on the heels of the smallest backoff steps.
      this.markError(describeError(err));
      st.delayMs = Math.max(this.backoff.next(), this.spread());
    }
  }

  private resyncFrom(): SyncFrom {
    return this.resourceVersion === null ? "0" : { notOlderThan: this.resourceVersion };
  }

  /** Lists the node's pods from the watch cache and replaces the cache's view. */
  private async list(from: SyncFrom, signal: AbortSignal): Promise<void> {
    const limit = deadline(this.clock, this.o.requestTimeoutMs, signal);
    let body: unknown;
    try {
      body = await this.client.getJson(listPath(this.o.nodeName, from), limit.signal);
    } catch (err) {
      if (limit.expired() && !signal.aborted) throw new Error(`listing pods: no answer within ${this.o.requestTimeoutMs} ms`);
      throw classifyHttpError(err, false);
    } finally {
      limit.done();
    }
    const parsed = parsePodList(body);
    if (parsed.resourceVersion === null) throw new Error("the pod list has no resourceVersion");
    this.synchronised(parsed.pods, parsed.invalidItems, parsed.resourceVersion, "list");
  }

  private synchronised(pods: PodMeta[], invalid: number, rv: string, how: "list" | "watch-list"): void {
    if (this.syncedOnce) this.count("relists");
    this.syncedOnce = true;
    this.cache.replaceAll(pods, this.now());
    this.resourceVersion = rv;
    this.counters.invalidPods = invalid;
    this.count(how === "list" ? "lists" : "watchLists");
    this.markSynced();
    this.backoff.reset();
    this.log.info("metadata: pods listed", { node: this.o.nodeName, pods: pods.length, resourceVersion: rv, via: how });
    if (pods.length === 0) {
      // In a DaemonSet the collector's own pod is on the node: none at all means a wrong NODE_NAME.
      this.log.warn("metadata: no pods on this node; is NODE_NAME the node's name (spec.nodeName)?", { node: this.o.nodeName });
    }
  }

  /** A watch-list: initial ADDED events up to the initial-events-end BOOKMARK, then the watch goes on. */
  private async watchList(from: SyncFrom, resyncAt: number, signal: AbortSignal, onSynced: () => void): Promise<void> {
    // Its stream goes on as the watch: it ends by the next resync, if there is one.
    const timeout = this.watchTimeoutSeconds(this.o.resyncIntervalMs > 0 ? this.now() + this.o.resyncIntervalMs : resyncAt);
    const initial: PodMeta[] = [];
    let invalid = 0;
    let synced = false;
    // The initial events must end within the request timeout (a server that ignores sendInitialEvents never ends them).
    const limit = deadline(this.clock, this.o.requestTimeoutMs, signal);
    const onEvent = (ev: WatchEvent) => {
      if (synced) return this.apply(ev);
      if (ev.type === "ERROR") throw errorFromStatus(ev.object);
      if (ev.type === "BOOKMARK" && isInitialEventsEnd(ev.object)) {
        limit.disarm();
        synced = true;
        const rv = resourceVersionOf(ev.object);
        if (rv === null) throw new WatchListIncomplete("the initial-events-end BOOKMARK has no resourceVersion");
        this.synchronised(initial, invalid, rv, "watch-list");
        onSynced();
        return;
      }
      if (ev.type !== "ADDED") return;
      const meta = podMetaFromObject(ev.object);
      if (meta === null) invalid++;
      else initial.push(meta);
    };
    try {
      await this.consume(watchListPath(this.o.nodeName, from, timeout), timeout, limit.signal, onEvent, true);
    } catch (err) {
      if (limit.expired() && !synced) throw new WatchListIncomplete(`no initial-events-end BOOKMARK within ${this.o.requestTimeoutMs} ms`);
      throw err;
    } finally {
      limit.done();
    }
    if (!synced && !signal.aborted) throw new WatchListIncomplete("the stream ended before the initial-events-end BOOKMARK");
  }

  /** One watch from the last resourceVersion, until its stream ends. */
  private async watch(resyncAt: number, signal: AbortSignal): Promise<void> {
    const timeout = this.watchTimeoutSeconds(resyncAt);
    await this.consume(watchPath(this.o.nodeName, this.resourceVersion ?? "0", timeout), timeout, signal, (ev) => this.apply(ev), false);
  }

  /** Runs one watch request; maps its failures: before it opened (HTTP), or after (StreamBroken). */
  private async consume(path: string, timeout: number, signal: AbortSignal, onEvent: (ev: WatchEvent) => void, watchList: boolean): Promise<void> {
    this.count("watches");
    this.bookmarksOnStream = 0;
    this.eventsOnStream = 0;
    let opened = false;
    const onOpen = () => {
      opened = true;
      if (this.failing && this.synced) this.markSynced();
    };
    try {
      for await (const ev of this.client.watch(path, { signal, idleTimeoutMs: this.idleTimeoutMs(timeout), onOpen })) {
        this.eventsOnStream++;
        onEvent(ev);
      }
    } catch (err) {
      const ours = err instanceof Gone || err instanceof TooLargeResourceVersion || err instanceof WatchListIncomplete || err instanceof WatchErrorEvent;
      if (signal.aborted || ours) throw err;
      if (!opened) throw classifyHttpError(err, watchList);
      throw new StreamBroken(describeError(err));
    }
  }

  private apply(ev: WatchEvent): void {
    this.count("watchEvents");
    if (ev.type === "ERROR") throw errorFromStatus(ev.object);
    const rv = resourceVersionOf(ev.object);
    if (ev.type === "BOOKMARK") {
      this.count("bookmarks");
      if (++this.bookmarksOnStream >= 2) this.periodicBookmarks = true;
    } else {
      const meta = podMetaFromObject(ev.object);
      if (meta === null) this.count("invalidPods");
      else if (ev.type === "DELETED") this.cache.markDeleted(meta.uid, this.now());
      else this.cache.upsert(meta);
    }
    if (rv !== null) this.resourceVersion = rv;
  }
}
