// `static` provider (docs/metadata.md): pods from a PodList JSON file (`kubectl get pods -o json`),
// reloaded when it changes. Woken by inotify on the file's directory (which also sees the
// rename-into-place of editors and the `..data` symlink swap of a mounted ConfigMap), with a
// slow stat poll as the safety net — an idle collector stays idle.
import { type FSWatcher, watch } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "../log.ts";
import type { Clock, Timer } from "../platform/types.ts";
import type { PodCache } from "./cache.ts";
import { parsePodList } from "./k8s-objects.ts";
import { ProviderBase } from "./provider-base.ts";
import type { MetadataProvider } from "./types.ts";

export interface StaticProviderOptions {
  podsFile: string;
  /** Safety-net stat poll (default 10 s). */
  pollIntervalMs?: number;
  /** Coalesces a burst of inotify events into one reload (default 50 ms). */
  debounceMs?: number;
}

export class StaticProvider extends ProviderBase implements MetadataProvider {
  readonly name = "static" as const;
  private readonly path: string;
  private readonly pollIntervalMs: number;
  private readonly debounceMs: number;
  private watcher: FSWatcher | null = null;
  private poller: Timer | null = null;
  private debounce: Timer | null = null;
  private lastText: string | null = null;
  private lastStatKey: string | null = null;
  private loading: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(options: StaticProviderOptions, cache: PodCache, log: Logger, clock?: Clock) {
    super(cache, log, clock);
    this.path = options.podsFile;
    this.pollIntervalMs = options.pollIntervalMs ?? 10_000;
    this.debounceMs = options.debounceMs ?? 50;
    this.counters.reloads = 0;
    this.counters.invalidPods = 0;
  }

  async start(): Promise<void> {
    this.stopped = false;
    const file = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        // ConfigMap mounts swap a `..data` symlink: any change in the directory may be ours.
        if (name === null || name === file || String(name).startsWith("..")) this.schedule();
      });
      this.watcher.on("error", (err) => this.markError(`watching ${dirname(this.path)}: ${err.message}`));
    } catch (err) {
      this.markError(`cannot watch ${dirname(this.path)}: ${(err as Error).message}; polling only`);
    }
    this.poller = this.clock.every(this.pollIntervalMs, () => void this.reload(false));
    this.startSweeper();
    await this.reload(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = null;
    this.poller?.cancel();
    this.debounce?.cancel();
    this.poller = this.debounce = null;
    this.stopSweeper();
    await this.loading;
  }

  /** A static file has no sooner: the pod appears when someone writes it into the file. */
  notifyUnknownPod(_uid: string): void {}

  private schedule(): void {
    if (this.debounce || this.stopped) return;
    this.debounce = this.clock.after(this.debounceMs, () => {
      this.debounce = null;
      void this.reload(true);
    });
  }

  /** Serialised: a change during a load triggers one more load after it. */
  private reload(force: boolean): Promise<void> {
    if (this.loading) {
      if (force) this.again = true;
      return this.loading;
    }
    this.loading = this.load(force).finally(() => {
      this.loading = null;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.reload(true);
      }
    });
    return this.loading;
  }

  private async load(force: boolean): Promise<void> {
    let text: string;
    try {
      const st = await stat(this.path);
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
      if (!force && key === this.lastStatKey) return;
      this.lastStatKey = key;
      text = await readFile(this.path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.markError(`cannot read podsFile ${this.path}: ${code}`);
      this.lastStatKey = null;
      return;
    }
    if (text === this.lastText) {
      this.markSynced();
      return;
    }
    let parsed;
    try {
      parsed = parsePodList(JSON.parse(text));
    } catch (err) {
      // Keep what we had: a half-written or broken file must not forget every pod.
      this.markError(`podsFile ${this.path} is not a valid PodList: ${(err as Error).message}`);
      return;
    }
    this.lastText = text;
    this.cache.replaceAll(parsed.pods, this.now());
    this.count("reloads");
    this.counters.invalidPods = parsed.invalidItems;
    this.markSynced();
    this.log.info("metadata: pods file loaded", { path: this.path, pods: parsed.pods.length, invalid: parsed.invalidItems });
  }
}
