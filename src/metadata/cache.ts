// The one pod-metadata cache (docs/metadata.md), keyed by pod UID — the UID is in the log path, so a
// new pod reusing a name can never pick up the old pod's labels (Vector keys by name; we do not).
//
// Deleted pods become tombstones: still returned by get() so that lines read after the deletion
// are enriched, and dropped by sweep() only once no file of the pod is retained and the grace
// period has passed since the later of the deletion and the last release.
//
// PodMeta objects are frozen and replaced, never mutated: a consumer holding one sees a stable
// snapshot, and an identity change means the metadata changed (labels apply to lines read after).
import type { PodMeta } from "./types.ts";

/** Static (mirror) pods: the log path carries the kubelet's config hash instead of the API UID. */
export const MIRROR_ANNOTATION = "kubernetes.io/config.mirror";
export const CONFIG_HASH_ANNOTATION = "kubernetes.io/config.hash";

export interface PodCacheOptions {
  deletionGraceSeconds: number;
}

export interface PodCacheCounts {
  /** Entries not deleted. */
  podsKnown: number;
  /** Deleted entries kept until drained + grace. */
  tombstones: number;
  /** UIDs with at least one retained file (known or not). */
  retainedPods: number;
  /** Tombstones dropped by sweep() since start. */
  swept: number;
}

interface Entry {
  meta: PodMeta;
  /** Wall-clock ms of the deletion; null while the pod exists. */
  deletedAt: number | null;
  /** Alias UID (config hash) this entry is also reachable by, if any. */
  alias: string | null;
}

interface Retention {
  count: number;
  /** ms of the last release to zero, for the grace period. */
  releasedAt: number | null;
}

export type PodChangeListener = (uid: string) => void;

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

function samePod(a: PodMeta, b: PodMeta): boolean {
  return (
    a.uid === b.uid &&
    a.namespace === b.namespace &&
    a.name === b.name &&
    sameRecord(a.labels, b.labels) &&
    sameRecord(a.annotations, b.annotations)
  );
}

function freeze(pod: PodMeta): PodMeta {
  if (Object.isFrozen(pod) && Object.isFrozen(pod.labels) && Object.isFrozen(pod.annotations)) return pod;
  return Object.freeze({
    uid: pod.uid,
    namespace: pod.namespace,
    name: pod.name,
    labels: Object.freeze({ ...pod.labels }),
    annotations: Object.freeze({ ...pod.annotations }),
  });
}

function aliasOf(pod: PodMeta): string | null {
  const hash = pod.annotations[MIRROR_ANNOTATION] ?? pod.annotations[CONFIG_HASH_ANNOTATION];
  return hash && hash !== pod.uid ? hash : null;
}

export class PodCache {
  readonly deletionGraceMs: number;
  private readonly entries = new Map<string, Entry>();
  private readonly aliases = new Map<string, string>();
  private readonly retention = new Map<string, Retention>();
  private readonly listeners = new Set<PodChangeListener>();
  private sweptTotal = 0;
  private tombstoneCount = 0;

  constructor(options: PodCacheOptions) {
    this.deletionGraceMs = Math.max(0, options.deletionGraceSeconds) * 1000;
  }

  /** Adds or replaces a live pod. A tombstoned UID seen alive again (a relist) is revived. */
  upsert(pod: PodMeta): void {
    if (this.put(pod)) this.emit(pod.uid);
  }

  /** The pod was deleted at nowMs; its entry stays until drained and past the grace period. */
  markDeleted(uid: string, nowMs: number): void {
    const uidKey = this.resolve(uid);
    const entry = uidKey === undefined ? undefined : this.entries.get(uidKey);
    if (!entry || entry.deletedAt !== null) return;
    entry.deletedAt = nowMs;
    this.tombstoneCount++;
    this.emit(entry.meta.uid);
  }

  /**
   * A full list (relist, poll, file reload): every pod given is upserted, every live pod absent
   * becomes a tombstone at nowMs. UIDs are keys, so a relist never duplicates an entry.
   */
  replaceAll(pods: Iterable<PodMeta>, nowMs: number): void {
    const changed: string[] = [];
    const present = new Set<string>();
    for (const pod of pods) {
      present.add(pod.uid);
      if (this.put(pod)) changed.push(pod.uid);
    }
    for (const [uid, entry] of this.entries) {
      if (entry.deletedAt === null && !present.has(uid)) {
        entry.deletedAt = nowMs;
        this.tombstoneCount++;
        changed.push(uid);
      }
    }
    for (const uid of changed) this.emit(uid);
  }

  /** The pod for a UID (or a static pod's config hash); tombstones included until swept. */
  get(uid: string): PodMeta | undefined {
    const key = this.resolve(uid);
    return key === undefined ? undefined : this.entries.get(key)?.meta;
  }

  /** True when the pod is known and deleted (a tombstone). */
  isDeleted(uid: string): boolean {
    const key = this.resolve(uid);
    const entry = key === undefined ? undefined : this.entries.get(key);
    return entry !== undefined && entry.deletedAt !== null;
  }

  /** A file of this pod is open: pins its tombstone. May be called before the pod is known. */
  retain(uid: string): void {
    const r = this.retention.get(uid);
    if (r) r.count++;
    else this.retention.set(uid, { count: 1, releasedAt: null });
  }

  /** The file was drained and closed. The grace period restarts from the last release at nowMs. */
  release(uid: string, nowMs: number = Date.now()): void {
    const r = this.retention.get(uid);
    if (!r || r.count === 0) return;
    r.count--;
    if (r.count === 0) r.releasedAt = nowMs;
  }

  /** Drops tombstones past the grace period with no retained file. Returns how many were dropped. */
  sweep(nowMs: number): number {
    const dropped: Array<[string, string | null]> = [];
    for (const [uid, entry] of this.entries) {
      if (entry.deletedAt === null) continue;
      const r = this.pinFor(uid, entry);
      if (r && r.count > 0) continue;
      const since = Math.max(entry.deletedAt, r?.releasedAt ?? 0);
      if (nowMs - since < this.deletionGraceMs) continue;
      this.entries.delete(uid);
      if (entry.alias !== null && this.aliases.get(entry.alias) === uid) this.aliases.delete(entry.alias);
      this.tombstoneCount--;
      dropped.push([uid, entry.alias]);
    }
    // Forget released retention records of UIDs that are not cached (no pod ever arrived).
    for (const [uid, r] of this.retention) {
      if (r.count === 0 && this.resolve(uid) === undefined && nowMs - (r.releasedAt ?? 0) >= this.deletionGraceMs) {
        this.retention.delete(uid);
      }
    }
    this.sweptTotal += dropped.length;
    for (const [uid, alias] of dropped) this.emit(uid, alias);
    return dropped.length;
  }

  /** Called with the UID of every pod whose metadata appeared, changed, was deleted or swept. */
  onChange(listener: PodChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  counts(): PodCacheCounts {
    let retainedPods = 0;
    for (const r of this.retention.values()) if (r.count > 0) retainedPods++;
    return {
      podsKnown: this.entries.size - this.tombstoneCount,
      tombstones: this.tombstoneCount,
      retainedPods,
      swept: this.sweptTotal,
    };
  }

  /** Number of entries, tombstones included. */
  get size(): number {
    return this.entries.size;
  }

  /** Live and tombstoned pods (for /status and tests). */
  *pods(): IterableIterator<{ pod: PodMeta; deleted: boolean }> {
    for (const entry of this.entries.values()) yield { pod: entry.meta, deleted: entry.deletedAt !== null };
  }

  private resolve(uid: string): string | undefined {
    if (this.entries.has(uid)) return uid;
    return this.aliases.get(uid);
  }

  /** Retention of the entry under either its UID or its alias (files are keyed by the path's id). */
  private pinFor(uid: string, entry: Entry): Retention | undefined {
    const a = this.retention.get(uid);
    const b = entry.alias !== null ? this.retention.get(entry.alias) : undefined;
    if (!a) return b;
    if (!b) return a;
    return { count: a.count + b.count, releasedAt: Math.max(a.releasedAt ?? 0, b.releasedAt ?? 0) };
  }

  /** Returns true when something visible changed. */
  private put(pod: PodMeta): boolean {
    const existing = this.entries.get(pod.uid);
    if (existing) {
      const revived = existing.deletedAt !== null;
      if (revived) {
        existing.deletedAt = null;
        this.tombstoneCount--;
      }
      if (samePod(existing.meta, pod)) return revived;
      this.setAlias(existing, pod);
      existing.meta = freeze(pod);
      return true;
    }
    const entry: Entry = { meta: freeze(pod), deletedAt: null, alias: null };
    this.setAlias(entry, pod);
    this.entries.set(pod.uid, entry);
    return true;
  }

  private setAlias(entry: Entry, pod: PodMeta): void {
    const alias = aliasOf(pod);
    if (entry.alias === alias) return;
    if (entry.alias !== null && this.aliases.get(entry.alias) === pod.uid) this.aliases.delete(entry.alias);
    entry.alias = alias;
    if (alias !== null) this.aliases.set(alias, pod.uid);
  }

  /** Notifies under the UID and, for a static pod, under its config hash too (files use either). */
  private emit(uid: string, alias: string | null = this.entries.get(uid)?.alias ?? null): void {
    for (const l of this.listeners) {
      try {
        l(uid);
        if (alias !== null) l(alias);
      } catch {
        // A listener's failure must not stop the others or the provider feeding the cache.
      }
    }
  }
}
