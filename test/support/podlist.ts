// Builders of core/v1 Pod and PodList objects shaped as the Kubernetes API returns them, for the
// fakes and the tests. Defaults imitate an Argo step pod under Pipekit.
import { randomUUID } from "node:crypto";
import type { ObjectMeta, Pod, PodList } from "../../src/metadata/k8s-objects.ts";

export interface PodSpecInput {
  name: string;
  namespace?: string;
  uid?: string;
  nodeName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  containers?: string[];
  initContainers?: string[];
  phase?: string;
}

/** A pod as these builders make it: the product's Pod, with the identity the fakes key on always set. */
export type K8sPod = Pod & {
  metadata: ObjectMeta & { name: string; namespace: string; uid: string };
  spec: NonNullable<Pod["spec"]>;
  status: NonNullable<Pod["status"]>;
};

export function makePod(p: PodSpecInput): K8sPod {
  return {
    kind: "Pod",
    apiVersion: "v1",
    metadata: {
      name: p.name,
      namespace: p.namespace ?? "argo",
      uid: p.uid ?? randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      labels: { ...(p.labels ?? {}) },
      annotations: { ...(p.annotations ?? {}) },
    },
    spec: {
      ...(p.nodeName !== undefined ? { nodeName: p.nodeName } : {}),
      ...(p.initContainers ? { initContainers: p.initContainers.map((name) => ({ name, image: "quay.io/argoproj/argoexec:v3.7.2" })) } : {}),
      containers: (p.containers ?? ["wait", "main"]).map((name) => ({ name, image: name === "main" ? "alpine:3.20" : "quay.io/argoproj/argoexec:v3.7.2" })),
    },
    status: { phase: p.phase ?? "Running" },
  };
}

export interface ArgoPodInput {
  workflow: string;
  step: string;
  nodeName?: string;
  uid?: string;
  namespace?: string;
  orgUUID?: string;
  runUUID?: string;
  pipeUUID?: string;
  /** Leave out these label/annotation keys (to imitate late labels). */
  omit?: string[];
}

export const LABEL_WORKFLOW = "workflows.argoproj.io/workflow";
export const LABEL_ORG = "workflows.pipekit.io/org_uuid";
export const LABEL_RUN = "workflows.pipekit.io/run_uuid";
export const LABEL_PIPE = "workflows.pipekit.io/pipe_uuid";
export const ANNOTATION_NODE_ID = "workflows.argoproj.io/node-id";

/** An Argo step pod carrying the Pipekit labels and the node-id annotation. */
export function makeArgoPod(a: ArgoPodInput): K8sPod {
  const hash = String(Math.abs(hashCode(a.workflow + a.step)) % 10_000_000_000);
  const labels: Record<string, string> = {
    [LABEL_WORKFLOW]: a.workflow,
    "workflows.argoproj.io/completed": "false",
    [LABEL_ORG]: a.orgUUID ?? "0b6f3c52-8f6e-4a0f-bb0e-3e5d7b9c1a44",
    [LABEL_RUN]: a.runUUID ?? "74676beb-e289-4bb4-a616-d011a835681b",
    [LABEL_PIPE]: a.pipeUUID ?? "11111111-1111-1111-1111-111111111111",
  };
  const annotations: Record<string, string> = {
    [ANNOTATION_NODE_ID]: `${a.workflow}-${hash}`,
    "workflows.argoproj.io/node-name": `${a.workflow}[0].${a.step}`,
  };
  for (const k of a.omit ?? []) {
    delete labels[k];
    delete annotations[k];
  }
  return makePod({
    name: `${a.workflow}-${a.step}-${hash}`,
    namespace: a.namespace ?? "argo",
    uid: a.uid,
    nodeName: a.nodeName,
    labels,
    annotations,
    initContainers: ["init"],
    containers: ["wait", "main"],
  });
}

export function makePodList(items: K8sPod[], resourceVersion = "1"): PodList & { items: K8sPod[] } {
  return { kind: "PodList", apiVersion: "v1", metadata: { resourceVersion }, items };
}

function hashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}
