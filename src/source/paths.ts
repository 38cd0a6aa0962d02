// Kubernetes pod log paths (docs/source.md, "Discovery"):
//   <namespace>_<pod-name>_<pod-uid>/<container>/<restart>.log
// Namespaces and pod names are DNS labels/subdomains (no "_"), so splitting on "_" is exact.
// Static (mirror) pods carry a config hash where other pods carry their UID.

export interface PodLogPath {
  namespace: string;
  podName: string;
  podUid: string;
  container: string;
  restart: number;
}

const LOG_FILE = /^(\d+)\.log$/;

/** Parses a path relative to the pods root; null when it is not a live container log file. */
export function parsePodLogPath(relative: string): PodLogPath | null {
  const parts = relative.split("/");
  if (parts.length !== 3) return null;
  const [podDir, container, file] = parts as [string, string, string];
  const m = LOG_FILE.exec(file);
  if (!m || container === "") return null;
  const pod = parsePodDir(podDir);
  if (!pod) return null;
  return { ...pod, container, restart: Number(m[1]) };
}

/** Parses `<namespace>_<pod-name>_<pod-uid>`. */
export function parsePodDir(dir: string): { namespace: string; podName: string; podUid: string } | null {
  const first = dir.indexOf("_");
  const last = dir.lastIndexOf("_");
  if (first <= 0 || last === first || last === dir.length - 1) return null;
  return { namespace: dir.slice(0, first), podName: dir.slice(first + 1, last), podUid: dir.slice(last + 1) };
}

/** Rotated files (`0.log.20261124-190213`, `.gz`) and temp files are never tailed as text. */
export function isRotatedName(file: string): boolean {
  return /\.log\.\d{8}-\d{6}(\.gz)?$/.test(file);
}

/**
 * One container instance (pod UID, container, restart): the files it writes in turn, rotated one
 * after another, and the key its partial lines merge under.
 */
export function containerKey(p: PodLogPath): string {
  return `${p.podUid}/${p.container}/${p.restart}`;
}
