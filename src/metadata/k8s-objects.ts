// Kubernetes object shapes the providers read (core/v1 Pod, PodList, WatchEvent, Status), and
// their conversion to PodMeta. Only the fields we use are checked; everything else is ignored,
// so newer API versions with more fields still parse.

import type { PodMeta } from "./types.ts";

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string> | null;
  annotations?: Record<string, string> | null;
  deletionTimestamp?: string;
  [k: string]: unknown;
}

/** core/v1 Pod: the one shape of a pod object here (the test fakes and builders use it too). */
export interface Pod {
  kind?: string;
  apiVersion?: string;
  metadata: ObjectMeta;
  spec?: { nodeName?: string; [k: string]: unknown };
  status?: { phase?: string; [k: string]: unknown };
}

export interface PodList {
  kind: "PodList" | "List";
  apiVersion: "v1";
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: Pod[];
}

export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never> | { resourceVersion?: string };
  status: "Failure" | "Success";
  message: string;
  reason: string;
  code: number;
  details?: Record<string, unknown>;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  type: WatchEventType;
  object: Pod | Status;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function stringMap(v: unknown): Record<string, string> {
  if (!isObject(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === "string") out[k] = val;
  return out;
}

/** A pod object → PodMeta, or null when it has no uid/name (not something we can key). */
export function podMetaFromObject(obj: unknown): PodMeta | null {
  if (!isObject(obj) || !isObject(obj.metadata)) return null;
  const m = obj.metadata;
  if (typeof m.uid !== "string" || m.uid === "" || typeof m.name !== "string" || m.name === "") return null;
  return {
    uid: m.uid,
    name: m.name,
    namespace: typeof m.namespace === "string" && m.namespace !== "" ? m.namespace : "default",
    labels: stringMap(m.labels),
    annotations: stringMap(m.annotations),
  };
}

export interface ParsedPodList {
  pods: PodMeta[];
  resourceVersion: string | null;
  continueToken: string | null;
  /** Items without a usable uid/name. */
  invalidItems: number;
}

/** Parses a PodList (or a kubectl `List` of pods); throws with a clear message on another shape. */
export function parsePodList(body: unknown): ParsedPodList {
  if (!isObject(body)) throw new Error("expected a PodList object");
  if (body.kind === "Status") throw new Error(`got a Status instead of a PodList: ${String(body.message ?? body.reason)}`);
  if (body.kind !== undefined && body.kind !== "PodList" && body.kind !== "List") {
    throw new Error(`expected kind PodList, got ${JSON.stringify(body.kind)}`);
  }
  if (!Array.isArray(body.items)) throw new Error("expected a PodList with an items array");
  const pods: PodMeta[] = [];
  let invalidItems = 0;
  for (const item of body.items) {
    if (isObject(item) && item.kind !== undefined && item.kind !== "Pod") {
      invalidItems++;
      continue;
    }
    const meta = podMetaFromObject(item);
    if (meta) pods.push(meta);
    else invalidItems++;
  }
  const md = isObject(body.metadata) ? body.metadata : {};
  return {
    pods,
    resourceVersion: typeof md.resourceVersion === "string" && md.resourceVersion !== "" ? md.resourceVersion : null,
    continueToken: typeof md.continue === "string" && md.continue !== "" ? md.continue : null,
    invalidItems,
  };
}

export function isStatus(v: unknown): v is Status {
  return isObject(v) && v.kind === "Status";
}

export function resourceVersionOf(obj: unknown): string | null {
  if (!isObject(obj) || !isObject(obj.metadata)) return null;
  const rv = obj.metadata.resourceVersion;
  return typeof rv === "string" && rv !== "" ? rv : null;
}

/** Parses one line of a watch stream; throws on a line that is not a WatchEvent. */
export function parseWatchEvent(line: string): WatchEvent {
  const v: unknown = JSON.parse(line);
  if (!isObject(v) || typeof v.type !== "string" || !isObject(v.object)) throw new Error("not a WatchEvent");
  const t = v.type;
  if (t !== "ADDED" && t !== "MODIFIED" && t !== "DELETED" && t !== "BOOKMARK" && t !== "ERROR") {
    throw new Error(`unknown watch event type ${JSON.stringify(t)}`);
  }
  return { type: t, object: v.object as unknown as Pod | Status };
}
