// What the fake API server records of each request, and which requests a real API server would
// answer by reading etcd instead of its watch cache (docs/metadata.md, "Load on the API server"):
//   - a list without resourceVersion (a consistent list), or with resourceVersionMatch=Exact, or
//     paged (limit with a resourceVersion other than 0, or a continue token) — unless the server
//     serves consistent reads from its cache (ConsistentListFromCache, KEP-2340: beta 1.31, GA 1.34);
//   - a watch without resourceVersion ("most recent": a consistent read to start from), same exception.
// resourceVersion=0 and resourceVersionMatch=NotOlderThan lists, watches from a resourceVersion and
// watch-lists are served from the cache.

export type RequestKind = "list" | "watch" | "watch-list" | "other";

export interface RecordedRequest {
  path: string;
  query: Record<string, string>;
  auth: "token" | "client-cert" | null;
  status: number;
  watch: boolean;
  kind: RequestKind;
  /** The node of a `spec.nodeName=<node>` field selector, else null. */
  node: string | null;
  /** Clock time the request arrived (ms). */
  at: number;
  /** Body bytes answered so far (a watch keeps adding). */
  bytes: number;
  /** Would read etcd on a real API server with these options. */
  etcd: boolean;
}

export function requestKind(query: Record<string, string>): RequestKind {
  const watch = query.watch === "true" || query.watch === "1";
  if (!watch) return "list";
  return query.sendInitialEvents === "true" ? "watch-list" : "watch";
}

export function reachesEtcd(kind: RequestKind, query: Record<string, string>, consistentListFromCache: boolean): boolean {
  if (consistentListFromCache || kind === "other") return false;
  const rv = query.resourceVersion ?? "";
  if (kind === "list") {
    if (rv === "" || query.resourceVersionMatch === "Exact" || query.continue) return true;
    return Number(query.limit ?? 0) > 0 && rv !== "0";
  }
  return rv === "";
}

export interface RequestSummary {
  requests: number;
  lists: number;
  watches: number;
  watchLists: number;
  etcdLists: number;
  bytes: number;
  /** Most requests that arrived within one second (a sliding window over arrival times). */
  peakPerSecond: number;
  /** First and last arrival (ms), for the spread of a burst. */
  firstAt: number | null;
  lastAt: number | null;
}

/** Sums the requests that arrived within [from, to) of clock time. */
export function summarise(requests: Iterable<RecordedRequest>, from = Number.NEGATIVE_INFINITY, to = Number.POSITIVE_INFINITY): RequestSummary {
  const s: RequestSummary = { requests: 0, lists: 0, watches: 0, watchLists: 0, etcdLists: 0, bytes: 0, peakPerSecond: 0, firstAt: null, lastAt: null };
  const times: number[] = [];
  for (const r of requests) {
    if (r.at < from || r.at >= to) continue;
    s.requests++;
    if (r.kind === "list") s.lists++;
    else if (r.kind === "watch") s.watches++;
    else if (r.kind === "watch-list") s.watchLists++;
    if (r.etcd && r.kind === "list") s.etcdLists++;
    s.bytes += r.bytes;
    times.push(r.at);
  }
  times.sort((a, b) => a - b);
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    s.peakPerSecond = Math.max(s.peakPerSecond, i - j + 1);
  }
  s.firstAt = times[0] ?? null;
  s.lastAt = times.at(-1) ?? null;
  return s;
}
