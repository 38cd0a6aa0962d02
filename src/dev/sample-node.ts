// A sample Kubernetes node on local disk, for the demo and the tests: a /var/log/pods tree of
// CRI log files written the way containerd writes them, plus the PodList that describes the pods
// (as `kubectl get pods -o json` prints it, shaped like test/fixtures/argo-node-podlist.json).
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PodList } from "../metadata/k8s-objects.ts";

export interface SamplePod {
  namespace: string;
  name: string;
  uid: string;
  containers: string[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Whether its lines are expected at the messenger. */
  expected: "delivered" | "skipped" | "filtered";
}

export interface SampleNode {
  root: string;
  podsFile: string;
  pods: SamplePod[];
  /** Every message expected at the messenger (unique strings), by pod/container. */
  expectedMessages: Set<string>;
  /** Events read from pods whose lines are filtered (the Argo pod missing a Pipekit label). */
  expectedFiltered: number;
  /** Appends more lines to every container of every pod; returns how many expected messages it added. */
  appendLines(count: number): number;
}

/** A small deterministic PRNG (mulberry32), so the same seed writes the same node. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(rand: () => number): string {
  const h = () =>
    Math.floor(rand() * 0x10000)
      .toString(16)
      .padStart(4, "0");
  return `${h()}${h()}-${h()}-4${h().slice(1)}-a${h().slice(1)}-${h()}${h()}${h()}`;
}

export function argoPod(rand: () => number, workflow: string, step: string, containers: string[]): SamplePod {
  const name = `${workflow}-${step}-${Math.floor(rand() * 1e10)}`;
  return {
    namespace: "argo",
    name,
    uid: uuid(rand),
    containers,
    labels: {
      "workflows.argoproj.io/workflow": workflow,
      "workflows.argoproj.io/completed": "false",
      "workflows.pipekit.io/org_uuid": uuid(rand),
      "workflows.pipekit.io/run_uuid": uuid(rand),
      "workflows.pipekit.io/pipe_uuid": uuid(rand),
    },
    annotations: {
      "workflows.argoproj.io/node-id": name,
      "workflows.argoproj.io/node-name": `${workflow}[0].${step}`,
    },
    expected: "delivered",
  };
}

export function podListJson(pods: SamplePod[], nodeName = "demo-node"): string {
  const list: PodList = {
    kind: "PodList",
    apiVersion: "v1",
    metadata: { resourceVersion: "1000" },
    items: pods.map((p, i) => ({
      metadata: {
        name: p.name,
        namespace: p.namespace,
        uid: p.uid,
        resourceVersion: String(900 + i),
        labels: p.labels,
        annotations: p.annotations,
      },
      spec: { nodeName, containers: p.containers.map((c) => ({ name: c, image: "example/image:1" })) },
      status: { phase: "Running" },
    })),
  };
  return JSON.stringify(list, null, 2);
}

/** CRI timestamps that advance by a microsecond per line, from a fixed start. */
function clock(startMs: number): () => string {
  let n = 0;
  return () => {
    const ms = startMs + Math.floor(n / 1000);
    const sub = String((n++ % 1000) * 1000 + 1).padStart(6, "0");
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${String(ms % 1000).padStart(3, "0")}${sub}Z`);
  };
}

/** The node's pods: five Argo workflow pods, one Argo pod missing a Pipekit label, one system pod. */
function samplePods(rand: () => number): SamplePod[] {
  const pods: SamplePod[] = [
    argoPod(rand, "ci-build-7xk2p", "checkout", ["init", "wait", "main"]),
    argoPod(rand, "ci-build-7xk2p", "compile", ["wait", "main"]),
    argoPod(rand, "ci-build-7xk2p", "test", ["wait", "main"]),
    argoPod(rand, "nightly-etl-q8d4n", "extract", ["main"]),
    argoPod(rand, "nightly-etl-q8d4n", "load", ["init", "main"]),
  ];
  const unlabelled = argoPod(rand, "adhoc-zz9", "run", ["main"]);
  delete (unlabelled.labels as Record<string, string>)["workflows.pipekit.io/run_uuid"];
  unlabelled.expected = "filtered";
  pods.push(unlabelled);
  pods.push({
    namespace: "kube-system",
    name: "coredns-6f6b679f8f-q9wz4",
    uid: uuid(rand),
    containers: ["coredns"],
    labels: { "k8s-app": "kube-dns" },
    annotations: {},
    expected: "skipped",
  });
  return pods;
}

/**
 * `count` CRI lines of one container (`source` is "pod/container"), numbered from `from`: mostly
 * plain stdout, some stderr, and every 50th line split by the runtime into partial fragments (with a
 * stderr line interleaved). Returns the file text and the messages a collector makes of it.
 */
function containerLines(source: string, from: number, count: number, now: () => string): { text: string; messages: string[] } {
  let text = "";
  const messages: string[] = [];
  for (let seq = from; seq < from + count; seq++) {
    const base = `${source} line ${seq}`;
    if (seq % 50 === 49) {
      // A long structured line the runtime split, with stderr written in between.
      const message = `{"level":"info","msg":"${base}","payload":"${"x".repeat(40)}"}`;
      const cut = Math.floor(message.length / 3);
      text += `${now()} stdout P ${message.slice(0, cut)}\n`;
      text += `${now()} stderr F ${base} (stderr between partials)\n`;
      text += `${now()} stdout P ${message.slice(cut, 2 * cut)}\n`;
      text += `${now()} stdout F ${message.slice(2 * cut)}\n`;
      messages.push(message, `${base} (stderr between partials)`);
    } else if (seq % 7 === 3) {
      text += `${now()} stderr F ${base} warning: ünïcödé ✓\n`;
      messages.push(`${base} warning: ünïcödé ✓`);
    } else {
      text += `${now()} stdout F ${base}\n`;
      messages.push(base);
    }
  }
  return { text, messages };
}

/** Writes the node: `linesPerContainer` lines (default 200) in every container's 0.log, and the pod list. */
export function writeSampleNode(dir: string, opts: { seed?: number; linesPerContainer?: number } = {}): SampleNode {
  const root = join(dir, "pods");
  const pods = samplePods(prng(opts.seed ?? 42));
  const expectedMessages = new Set<string>();
  let expectedFiltered = 0;
  const now = clock(Date.UTC(2026, 10, 24, 19, 2, 13));
  // Lines written so far per container, so that appended lines carry on its numbering.
  const written = new Map<string, number>();

  const write = (count: number, append: boolean): number => {
    let added = 0;
    for (const pod of pods) {
      for (const container of pod.containers) {
        const d = join(root, `${pod.namespace}_${pod.name}_${pod.uid}`, container);
        mkdirSync(d, { recursive: true });
        const key = `${pod.uid}/${container}`;
        const from = written.get(key) ?? 0;
        const { text, messages } = containerLines(`${pod.name}/${container}`, from, count, now);
        written.set(key, from + count);
        if (append) appendFileSync(join(d, "0.log"), text);
        else writeFileSync(join(d, "0.log"), text);
        if (pod.expected === "delivered") {
          for (const m of messages) expectedMessages.add(m);
          added += messages.length;
        } else if (pod.expected === "filtered") expectedFiltered += messages.length;
      }
    }
    return added;
  };

  mkdirSync(root, { recursive: true });
  write(opts.linesPerContainer ?? 200, false);
  const podsFile = join(dir, "podlist.json");
  writeFileSync(podsFile, podListJson(pods));
  return {
    root,
    podsFile,
    pods,
    expectedMessages,
    get expectedFiltered() {
      return expectedFiltered;
    },
    appendLines: (count) => write(count, true),
  };
}
