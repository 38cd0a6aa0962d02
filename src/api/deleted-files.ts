// Disk space held by deleted files this process still has open, as `lsof +L1` would show it:
// the kernel marks such descriptors "<path> (deleted)" under /proc/self/fd, and stat() through
// the descriptor link still gives the file's size. Read at scrape time (a few hundred readlinks),
// never on the hot path. Files under `excludeDir` (the data dir) are not log files. Linux only;
// elsewhere it reports 0.
import { readdirSync, readlinkSync, statSync } from "node:fs";

const FD_DIR = "/proc/self/fd";
const SUFFIX = " (deleted)";

export interface DeletedHeld {
  files: number;
  bytes: number;
}

export function deletedHeldFiles(excludeDir: string | null): DeletedHeld {
  let fds: string[];
  try {
    fds = readdirSync(FD_DIR);
  } catch {
    return { files: 0, bytes: 0 };
  }
  let files = 0;
  let bytes = 0;
  const exclude = excludeDir ? excludeDir.replace(/\/+$/, "") + "/" : null;
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`${FD_DIR}/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (!target.endsWith(SUFFIX) || !target.startsWith("/")) continue;
    if (exclude && target.startsWith(exclude)) continue;
    try {
      const st = statSync(`${FD_DIR}/${fd}`);
      if (!st.isFile()) continue;
      files++;
      bytes += st.size;
    } catch {
      // closed meanwhile
    }
  }
  return { files, bytes };
}
