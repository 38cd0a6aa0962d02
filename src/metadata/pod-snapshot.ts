// Pod metadata that survives a restart (docs/metadata.md, "Durable pod metadata"). Short-lived Argo
// pods are often deleted while the collector is down (a rollout, a crash loop) and their log files
// stay on disk until the kubelet removes them: without this, their unread lines would be held as
// unknown after the restart and filtered as no-metadata.
//
// A small JSON file in the data dir, written atomically before every checkpoint save, holds the
// pods of the files the source has open (live pods and tombstones) and every selected pod of the
// node, with only the fields the chain needs. So a checkpoint never names a position in a file whose
// pod the snapshot lacks, and a selected pod whose files were not opened yet (no inotify, a scan
// still to come) that is deleted while the collector is down keeps its identifiers. At start the
// snapshot seeds the cache; each seeded pod is pinned (as an open file pins a pod) until the source,
// once it has scanned, holds no file of it — a relist that lacks the pod then only makes it a
// tombstone, swept after its files are drained plus deletionGraceSeconds. A damaged snapshot is a
// warning: the collector starts without it.
import { z } from "zod";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import { systemClock } from "../platform/clock.ts";
import type { Clock, DurableFiles } from "../platform/types.ts";
import { dataDirFiles } from "../platform/atomic-file.ts";
import { CONFIG_HASH_ANNOTATION, MIRROR_ANNOTATION, type PodCache } from "./cache.ts";
import { type SelectionRules, decidePod, selectionRulesFromConfig } from "./selection.ts";
import type { PodMeta } from "./types.ts";

export const POD_SNAPSHOT_FILE = "pod-metadata.json";

const SnapshotSchema = z.object({
  version: z.literal(1),
  pods: z.array(
    z.object({
      uid: z.string().min(1),
      namespace: z.string().min(1),
      name: z.string().min(1),
      labels: z.record(z.string(), z.string()),
      annotations: z.record(z.string(), z.string()),
      deleted: z.boolean(),
    }),
  ),
});

type SnapshotPod = z.infer<typeof SnapshotSchema>["pods"][number];

/** Only the keys the chain reads (and the static-pod alias): the snapshot stays small and holds nothing else. */
function keep(source: Readonly<Record<string, string>>, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (Object.hasOwn(source, k)) out[k] = source[k]!;
  return out;
}

export class PodSnapshot {
  readonly path: string;
  private readonly labelKeys: string[];
  private readonly annotationKeys: string[];
  private readonly rules: SelectionRules;
  /** Seeded pods still pinned: until the source holds no file of theirs. */
  private readonly pinned = new Set<string>();
  private lastText: string | null = null;

  private constructor(
    private readonly files: DurableFiles,
    rules: SelectionRules,
    private readonly cache: PodCache,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.path = files.pathOf(POD_SNAPSHOT_FILE);
    this.rules = rules;
    this.labelKeys = [rules.selectorLabel, ...rules.requiredLabels];
    this.annotationKeys = [...rules.requiredAnnotations, MIRROR_ANNOTATION, CONFIG_HASH_ANNOTATION];
  }

  /** Loads the snapshot of the last run into the cache (before any provider starts). */
  static open(
    config: Pick<Config, "dataDir" | "metadata" | "pipeline">,
    cache: PodCache,
    log: Logger,
    clock: Clock = systemClock,
    files: DurableFiles = dataDirFiles(config.dataDir),
  ): PodSnapshot {
    const s = new PodSnapshot(files, selectionRulesFromConfig(config), cache, log, clock);
    s.seed();
    return s;
  }

  /** Pods seeded from the last run and still pinned. */
  get seeded(): number {
    return this.pinned.size;
  }

  private seed(): void {
    let pods: SnapshotPod[];
    try {
      const text = this.files.read(POD_SNAPSHOT_FILE);
      if (text === null) return;
      pods = SnapshotSchema.parse(JSON.parse(text)).pods;
    } catch (err) {
      this.log.warn("pod metadata snapshot is unreadable; starting without it (pods deleted while the collector was down may be unknown)", {
        path: this.path,
        error: err instanceof z.ZodError ? "not a pod metadata snapshot" : (err as Error).message,
      });
      return;
    }
    const now = this.clock.now();
    for (const p of pods) {
      if (this.cache.get(p.uid) !== undefined) continue;
      this.cache.upsert({ uid: p.uid, namespace: p.namespace, name: p.name, labels: p.labels, annotations: p.annotations });
      if (p.deleted) this.cache.markDeleted(p.uid, now);
      this.cache.retain(p.uid);
      this.pinned.add(p.uid);
    }
    this.log.info("pod metadata snapshot loaded", { path: this.path, pods: this.pinned.size });
  }

  /**
   * Writes the pods of the files the source holds (their ids: pod UIDs, or a static pod's config
   * hash, as in the log paths), plus every selected pod, tombstones and pods still pinned. Until the source has
   * scanned, no seeded pod is let go. Throws when the file cannot be written, so that the
   * checkpoints are not saved past it.
   */
  save(openPodIds: Iterable<string>, scanned: boolean): void {
    const open = new Set(openPodIds);
    if (scanned) this.unpinClosed(open);
    const pods = new Map<string, SnapshotPod>();
    const add = (pod: PodMeta | undefined, deleted: boolean) => {
      if (pod && !pods.has(pod.uid)) pods.set(pod.uid, this.entry(pod, deleted));
    };
    for (const id of open) add(this.cache.get(id), this.cache.isDeleted(id));
    for (const id of this.pinned) add(this.cache.get(id), this.cache.isDeleted(id));
    for (const { pod, deleted } of this.cache.pods()) if (deleted || decidePod(pod, this.rules).kind === "select") add(pod, deleted);
    const sorted = [...pods.values()].sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
    const text = JSON.stringify({ version: 1, pods: sorted });
    if (text === this.lastText) return; // the file already says this
    this.files.write(POD_SNAPSHOT_FILE, text);
    this.lastText = text;
  }

  private unpinClosed(open: Set<string>): void {
    const now = this.clock.now();
    for (const uid of this.pinned) {
      const pod = this.cache.get(uid);
      const alias = pod?.annotations[MIRROR_ANNOTATION] ?? pod?.annotations[CONFIG_HASH_ANNOTATION];
      if (open.has(uid) || (alias !== undefined && open.has(alias))) continue;
      this.pinned.delete(uid);
      this.cache.release(uid, now);
    }
  }

  private entry(pod: PodMeta, deleted: boolean): SnapshotPod {
    return {
      uid: pod.uid,
      namespace: pod.namespace,
      name: pod.name,
      labels: keep(pod.labels, this.labelKeys),
      annotations: keep(pod.annotations, this.annotationKeys),
      deleted,
    };
  }
}
