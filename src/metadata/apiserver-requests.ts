// The requests of the apiserver provider and what their failures mean (docs/metadata.md,
// "Load on the API server"). Every request is scoped to one node with a field selector and is
// one the API server answers from its watch cache — never a consistent list:
//   list       resourceVersion=0 (any age) or resourceVersion=<rv>&resourceVersionMatch=NotOlderThan
//   watch      resourceVersion=<rv>&allowWatchBookmarks=true
//   watch-list watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan (KEP-3157): the
//              current pods as ADDED events, a BOOKMARK annotated k8s.io/initial-events-end, then
//              the watch goes on — the list and the watch in one request.
import { K8sHttpError } from "./k8s-client.ts";
import { isStatus, type Status } from "./k8s-objects.ts";

/** The BOOKMARK that ends a watch-list's initial events carries this annotation set to "true". */
export const INITIAL_EVENTS_END = "k8s.io/initial-events-end";

/** Where a (re)sync starts: "0" = any state the cache has; otherwise not older than that resourceVersion. */
export type SyncFrom = "0" | { notOlderThan: string };

export function nodeSelector(nodeName: string): string {
  return `fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeName}`)}`;
}

function rvQuery(from: SyncFrom): string {
  return from === "0" ? "&resourceVersion=0" : `&resourceVersion=${encodeURIComponent(from.notOlderThan)}&resourceVersionMatch=NotOlderThan`;
}

export function listPath(nodeName: string, from: SyncFrom): string {
  return `/api/v1/pods?${nodeSelector(nodeName)}${rvQuery(from)}`;
}

export function watchPath(nodeName: string, resourceVersion: string, timeoutSeconds: number): string {
  return (
    `/api/v1/pods?${nodeSelector(nodeName)}&watch=true&allowWatchBookmarks=true&timeoutSeconds=${timeoutSeconds}` +
    `&resourceVersion=${encodeURIComponent(resourceVersion)}`
  );
}

export function watchListPath(nodeName: string, from: SyncFrom, timeoutSeconds: number): string {
  // resourceVersionMatch=NotOlderThan with resourceVersion=0 accepts any state the cache has.
  const rv = from === "0" ? "0" : from.notOlderThan;
  return (
    `/api/v1/pods?${nodeSelector(nodeName)}&watch=true&sendInitialEvents=true&allowWatchBookmarks=true` +
    `&resourceVersionMatch=NotOlderThan&timeoutSeconds=${timeoutSeconds}&resourceVersion=${encodeURIComponent(rv)}`
  );
}

/** The resourceVersion we asked for is no longer in the history (410 Gone / Expired). */
export class Gone extends Error {
  override readonly name = "Gone";
}

/** The cache has not caught up with the resourceVersion we asked for (after an API server restart). */
export class TooLargeResourceVersion extends Error {
  override readonly name = "TooLargeResourceVersion";
}

/** The server refuses watch-list (feature gate off, or too old): use list + watch. */
export class WatchListRefused extends Error {
  override readonly name = "WatchListRefused";
}

/** A watch ERROR event other than 410. */
export class WatchErrorEvent extends Error {
  override readonly name = "WatchErrorEvent";
}

function isTooLarge(status: number, reason: string, message: string): boolean {
  return (status === 504 || status === 500 || reason === "Timeout") && /too large resource version/i.test(message);
}

/** Maps an HTTP failure of a list/watch request to the errors above; others pass through. */
export function classifyHttpError(err: unknown, watchList: boolean): unknown {
  if (!(err instanceof K8sHttpError)) return err;
  if (err.status === 410) return new Gone(err.message);
  if (isTooLarge(err.status, err.reason, err.message)) return new TooLargeResourceVersion(err.message);
  // 422 Invalid ("sendInitialEvents is forbidden ...") or 400 from servers without watch-list.
  if (watchList && (err.status === 422 || err.status === 400)) return new WatchListRefused(err.message);
  return err;
}

/** Maps a watch ERROR event's Status to an error to throw. */
export function errorFromStatus(object: unknown): Error {
  if (!isStatus(object)) return new WatchErrorEvent("watch ERROR event: no Status");
  const s: Status = object;
  if (s.code === 410) return new Gone(s.message);
  if (isTooLarge(s.code, s.reason, s.message)) return new TooLargeResourceVersion(s.message);
  return new WatchErrorEvent(`watch ERROR event: ${s.code} ${s.reason}: ${s.message}`);
}

export function isInitialEventsEnd(object: unknown): boolean {
  if (typeof object !== "object" || object === null) return false;
  const md = (object as { metadata?: { annotations?: Record<string, unknown> } }).metadata;
  return md?.annotations?.[INITIAL_EVENTS_END] === "true";
}

/** An explanation for the log: RBAC and token hints for 403/401. */
export function describeError(err: unknown): string {
  if (err instanceof K8sHttpError && err.status === 403) {
    return `${err.message} (RBAC: the collector's service account needs get/list/watch on pods)`;
  }
  if (err instanceof K8sHttpError && err.status === 401) return `${err.message} (token rejected or expired)`;
  return err instanceof Error ? err.message : String(err);
}
