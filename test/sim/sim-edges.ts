// The simulation's smaller edges: the data dir's small files (replaced whole, durable once written,
// refused when the disk is full) and the Kubernetes API as the metadata provider sees it.
import { ProviderBase } from "../../src/metadata/provider-base.ts";
import type { PodCache } from "../../src/metadata/cache.ts";
import type { MetadataProvider, PodMeta } from "../../src/metadata/types.ts";
import type { Logger } from "../../src/log.ts";
import type { Clock, DurableFiles } from "../../src/platform/types.ts";
import { POD_SNAPSHOT_FILE } from "../../src/metadata/pod-snapshot.ts";
import { CHECKPOINTS_FILE } from "../../src/source/checkpoints.ts";

/** A checkpoint save writes these, the pod snapshot first: when it is refused the checkpoints are not written. */
const CHECKPOINT_SAVE_FILES = new Set([POD_SNAPSHOT_FILE, CHECKPOINTS_FILE]);

export class SimDataFiles implements DurableFiles {
  private readonly files = new Map<string, string>();
  writes = 0;
  refused = 0;
  /**
   * Whether the last checkpoint save was refused — its last write, of the pod snapshot or of the
   * checkpoints: a process that stops with it so did not save its checkpoints at the end. Writes
   * of other files (the prefix table, written on its own schedule) say nothing about it.
   */
  checkpointSaveRefused = false;
  onWrite: (name: string, text: string) => void = () => {};

  constructor(private readonly full: () => boolean) {}

  pathOf(name: string): string {
    return `/var/lib/pipekit-log-collector/${name}`;
  }

  read(name: string): string | null {
    return this.files.get(name) ?? null;
  }

  write(name: string, text: string): void {
    if (this.full()) {
      this.refused++;
      if (CHECKPOINT_SAVE_FILES.has(name)) this.checkpointSaveRefused = true;
      throw Object.assign(new Error(`ENOSPC: no space left on device, write '${this.pathOf(name)}.tmp'`), { code: "ENOSPC" });
    }
    this.files.set(name, text);
    if (CHECKPOINT_SAVE_FILES.has(name)) this.checkpointSaveRefused = false;
    this.writes++;
    this.onWrite(name, text);
  }
}

/** The pods the API server has now, and who listens. */
export class SimApiServer {
  readonly pods = new Map<string, PodMeta>();
  private readonly watchers = new Set<(uid: string, pod: PodMeta | null) => void>();

  set(uid: string, pod: PodMeta | null): void {
    if (pod) this.pods.set(uid, pod);
    else this.pods.delete(uid);
    for (const w of this.watchers) w(uid, pod);
  }

  watch(fn: (uid: string, pod: PodMeta | null) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }
}

/** A provider over the simulated API server: a list at start, then every change as it happens (a watch). */
export class SimMetadataProvider extends ProviderBase implements MetadataProvider {
  readonly name = "apiserver" as const;
  private unwatch: (() => void) | null = null;

  constructor(
    cache: PodCache,
    log: Logger,
    clock: Clock,
    private readonly api: SimApiServer,
  ) {
    super(cache, log, clock);
  }

  async start(): Promise<void> {
    this.cache.replaceAll(this.api.pods.values(), this.now());
    this.markSynced();
    // Events arrive a moment later, on this process's clock (none after it crashed).
    this.unwatch = this.api.watch((uid, pod) =>
      this.clock.soon(() => {
        if (pod) this.cache.upsert(pod);
        else this.cache.markDeleted(uid, this.now());
      }),
    );
    this.startSweeper();
  }

  async stop(): Promise<void> {
    this.unwatch?.();
    this.unwatch = null;
    this.stopSweeper();
  }

  notifyUnknownPod(): void {}
}
