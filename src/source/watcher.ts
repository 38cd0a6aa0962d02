// The inotify side of discovery: a recursive watch of the log root through the file system port.
// Events only say "look here soon"; the reconciliation scan stays the source of truth, and takes over
// alone once the watch has failed (out of inotify watches, say): a failed watch is not retried.
import type { SourceFs, TreeWatch } from "./types.ts";

export interface DirWatcherHandlers {
  /** `rename`: created, renamed or removed; `change`: written. `name` is relative to the root. */
  onEvent(kind: "rename" | "change", name: string): void;
  /** The watch failed (first: whether it is the first failure, to say so once); it is not restarted. */
  onError(err: Error, first: boolean): void;
}

export class DirWatcher {
  private watch: TreeWatch | null = null;
  private failed = false;

  constructor(
    private readonly fs: SourceFs,
    private readonly root: string,
    private readonly handlers: DirWatcherHandlers,
  ) {}

  /** Whether events flow, or the watch failed for good: either way there is nothing to start again. */
  get settled(): boolean {
    return this.watch !== null || this.failed;
  }

  /** Starts watching unless settled; a root that does not exist yet is tried again at the next call. */
  start(): void {
    if (this.settled) return;
    try {
      this.watch = this.fs.watch(this.root, {
        onEvent: (kind, name) => this.handlers.onEvent(kind, name),
        onError: (err) => this.fail(err),
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.fail(err as Error);
    }
  }

  close(): void {
    this.watch?.close();
    this.watch = null;
  }

  private fail(err: Error): void {
    const first = !this.failed;
    this.failed = true;
    this.close();
    this.handlers.onError(err, first);
  }
}
