// inotify through Bun's recursive fs.watch on the log root. Events only say "look here soon";
// the reconciliation scan stays the source of truth, and takes over alone if the watcher fails.
import { type FSWatcher, watch } from "node:fs";

export interface DirWatcherHandlers {
  /** `rename`: created, renamed or removed; `change`: written. `name` is relative to the root. */
  onEvent(kind: "rename" | "change", name: string): void;
  /** The watcher stopped (first: whether this is the first failure, to say so once). */
  onError(err: Error, first: boolean): void;
}

export class DirWatcher {
  private watcher: FSWatcher | null = null;
  failed = false;

  constructor(
    private readonly root: string,
    private readonly handlers: DirWatcherHandlers,
  ) {}

  /** Starts watching; false when the root does not exist yet (retry later) or watching failed. */
  start(): boolean {
    try {
      const w = watch(this.root, { recursive: true }, (event, filename) => {
        const name = typeof filename === "string" ? filename : "";
        this.handlers.onEvent(event === "change" ? "change" : "rename", name);
      });
      // Running out of inotify watches (ENOSPC) arrives asynchronously as an `error` event; an
      // unhandled one would kill the process.
      w.on("error", (err) => this.fail(err as Error));
      this.watcher = w;
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      this.fail(err as Error);
      return false;
    }
  }

  /** Test hook: raises `err` as the FSWatcher's own asynchronous `error` event (what ENOSPC looks like). */
  emitError(err: Error): void {
    if (this.watcher) this.watcher.emit("error", err);
    else this.fail(err);
  }

  /** Stops for good after an error; the caller falls back to its reconciliation scan. */
  fail(err: Error): void {
    const first = !this.failed;
    this.failed = true;
    this.close();
    this.handlers.onError(err, first);
  }

  close(): void {
    try {
      this.watcher?.close();
    } catch {
      // already closed
    }
    this.watcher = null;
  }
}
