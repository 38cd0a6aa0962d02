// The real file system for the source stage: node:fs calls, and inotify through Bun's recursive
// fs.watch on the log root.
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync, watch } from "node:fs";
import type { FileStat, SourceFs, TreeWatch, TreeWatchHandlers } from "./types.ts";

function toStat(st: { dev: number; ino: number; size: number; nlink: number; mtimeMs: number; ctimeMs: number; isFile(): boolean }): FileStat {
  return { dev: st.dev, ino: st.ino, size: st.size, nlink: st.nlink, isFile: st.isFile(), mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

export const nodeSourceFs: SourceFs = {
  open: (path) => openSync(path, "r"),
  read: (fd, buf, offset, length, position) => readSync(fd, buf, offset, length, position),
  fstat: (fd) => toStat(fstatSync(fd)),
  close: (fd) => closeSync(fd),
  stat: (path) => toStat(statSync(path)),
  readdir: (path) => readdirSync(path),
  readFile: (path) => readFileSync(path),
  watch(root: string, handlers: TreeWatchHandlers): TreeWatch {
    const w = watch(root, { recursive: true }, (event, filename) => {
      handlers.onEvent(event === "change" ? "change" : "rename", typeof filename === "string" ? filename : "");
    });
    // Running out of inotify watches (ENOSPC) arrives asynchronously as an `error` event; an
    // unhandled one would kill the process.
    w.on("error", (err) => handlers.onError(err as Error));
    return {
      close() {
        try {
          w.close();
        } catch {
          // already closed
        }
      },
    };
  },
};
