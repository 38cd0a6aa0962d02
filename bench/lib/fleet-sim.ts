// The fleet simulation's parts (bench/fleet.ts): N nodes' metadata providers — the real provider
// module, built from a config by createMetadataProvider — against one fake API server, all on a
// virtual clock. The providers reach the fake through an in-process fetch (a function call and a
// stream per request, no socket): a thousand real TLS watch streams would make the simulation
// measure the sockets and the machine rather than the requests; the real-socket path is what
// test/metadata covers. Each node also gets a seeded random source, so a run replays exactly.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { ConfigSchema } from "../../src/config/schema.ts";
import { prng } from "../../src/dev/sample-node.ts";
import type { Logger } from "../../src/log.ts";
import { PodCache } from "../../src/metadata/cache.ts";
import { createMetadataProvider } from "../../src/metadata/index.ts";
import { K8sClient } from "../../src/metadata/k8s-client.ts";
import { KubeletProvider } from "../../src/metadata/kubelet-provider.ts";
import type { MetadataProvider } from "../../src/metadata/types.ts";
import { summarise } from "../../test/support/apiserver-accounting.ts";
import { FakeApiServer } from "../../test/support/fake-apiserver.ts";
import { FakeKubelet } from "../../test/support/fake-kubelet.ts";
import { type K8sPod, makeArgoPod } from "../../test/support/podlist.ts";
import { VirtualClock } from "./virtual-clock.ts";

/** Simulated time starts here (a fixed epoch: runs replay exactly). */
export const T0 = Date.UTC(2026, 0, 1);
const TOKEN = "fleet-token";

/** A logger that only counts (a thousand providers' info lines would be the run's main cost). */
export function countingLogger(counts = { warn: 0, error: 0 }): Logger & { counts: typeof counts } {
  const l: Logger & { counts: typeof counts } = {
    counts,
    debug() {},
    info() {},
    warn: () => void counts.warn++,
    error: () => void counts.error++,
    child: () => l,
  };
  return l;
}

export const nodeName = (i: number) => `node-${String(i).padStart(5, "0")}`;

function nodePod(node: string, i: number, k: number): K8sPod {
  return makeArgoPod({ workflow: `wf-${i % 97}`, step: `s${k}`, nodeName: node, uid: `${node}-pod-${k}` });
}

export interface ServerKind {
  /** Serves watch-lists (Kubernetes 1.32, ≥ 1.34). */
  watchList: boolean;
  /** Serves consistent lists from its cache (ConsistentListFromCache, ≥ 1.34; beta from 1.31). */
  consistentListFromCache: boolean;
}

/** A point of simulated time, with the bytes the API server had sent by then. */
export interface Mark {
  at: number;
  bytes: number;
}

/** Per-node figures over a window of simulated time. */
export interface Figures {
  requestsPerNode: number;
  listsPerNode: number;
  watchesPerNode: number;
  watchListsPerNode: number;
  bytesPerNode: number;
  etcdLists: number;
  peakPerSecond: number;
}

export class ApiserverFleet {
  readonly clock: VirtualClock;
  readonly api: FakeApiServer;
  readonly providers: MetadataProvider[] = [];
  readonly caches: PodCache[] = [];
  readonly log = countingLogger();
  private readonly dir = mkdtempSync(join(tmpdir(), "pk-fleet-"));
  private podSerial = 0;

  constructor(
    readonly nodes: number,
    readonly podsPerNode: number,
    readonly server: ServerKind,
    seed: number,
  ) {
    let api: FakeApiServer | null = null;
    this.clock = new VirtualClock(T0, () => (api ? api.requests.length + api.bytesSent + api.refused : 0));
    api = FakeApiServer.inProcess({
      tokens: [TOKEN],
      clock: this.clock,
      watchList: server.watchList,
      consistentListFromCache: server.consistentListFromCache,
      // The real API server sends watchers a BOOKMARK about once a minute.
      bookmarkIntervalMs: 60_000,
      historyLimit: 20_000,
    });
    this.api = api;
    for (let i = 0; i < nodes; i++) for (let k = 0; k < podsPerNode; k++) api.createPod(nodePod(nodeName(i), i, k));
    const kubeconfig = join(this.dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        "current-context": "fleet",
        contexts: [{ name: "fleet", context: { cluster: "fake", user: "collector" } }],
        clusters: [{ name: "fake", cluster: { server: api.url } }],
        users: [{ name: "collector", user: { token: TOKEN } }],
      }),
    );
    for (let i = 0; i < nodes; i++) {
      const config = ConfigSchema.parse({ metadata: { provider: "apiserver", kubeconfig }, node: { name: nodeName(i) } });
      const cache = new PodCache({ deletionGraceSeconds: config.metadata.deletionGraceSeconds });
      const overrides = { env: {}, serviceAccountDir: "/nonexistent", clock: this.clock, fetch: api.fetch, apiserver: { random: prng(seed * 100_003 + i) } };
      this.caches.push(cache);
      this.providers.push(createMetadataProvider(config, cache, this.log, overrides));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Starts every provider at the current simulated time; resolves once each has synced (or tried). */
  async start(): Promise<void> {
    const started = Promise.all(this.providers.map((p) => p.start()));
    while (!(await Promise.race([started.then(() => true), this.clock.settle().then(() => false)]))) {
      await this.clock.runUntil(this.clock.now() + 1000);
    }
  }

  async runFor(ms: number): Promise<Mark> {
    await this.clock.runUntil(this.clock.now() + ms);
    return this.mark();
  }

  mark(): Mark {
    return { at: this.clock.now(), bytes: this.api.bytesSent };
  }

  /** Requests that arrived in [from, to), and the bytes sent meanwhile, per node. */
  figures(from: Mark, to: Mark): Figures {
    const s = summarise(this.api.requests, from.at, to.at);
    const bytes = to.bytes - from.bytes;
    const n = this.nodes;
    return {
      requestsPerNode: s.requests / n,
      listsPerNode: s.lists / n,
      watchesPerNode: s.watches / n,
      watchListsPerNode: s.watchLists / n,
      bytesPerNode: bytes / n,
      etcdLists: s.etcdLists,
      peakPerSecond: s.peakPerSecond,
    };
  }

  /** For each node, when (ms after `since`) its first successful sync request arrived at or after `since`. */
  resyncDelays(since: number): number[] {
    const first = new Map<string, number>();
    for (const r of this.api.requests) {
      if (r.at < since || r.status !== 200 || r.node === null || (r.kind !== "list" && r.kind !== "watch-list")) continue;
      if (!first.has(r.node)) first.set(r.node, r.at - since);
    }
    return [...first.values()].sort((a, b) => a - b);
  }

  /** On every node, one pod deleted and one created (while watches are down: the resync must see both). */
  replaceOnePodPerNode(): void {
    for (let i = 0; i < this.nodes; i++) {
      const node = nodeName(i);
      const victim = this.api.podUidsOf(node)[0];
      if (victim !== undefined) this.api.deletePod(victim);
      this.api.createPod(nodePod(node, i, this.podsPerNode + this.podSerial++));
    }
  }

  /** Nodes whose cache holds, as live pods, exactly the API server's pods of that node. */
  nodesInSync(): number {
    let ok = 0;
    this.caches.forEach((cache, i) => {
      const want = new Set(this.api.podUidsOf(nodeName(i)));
      const live = [...cache.pods()].filter((e) => !e.deleted).map((e) => e.pod.uid);
      if (live.length === want.size && live.every((u) => want.has(u))) ok++;
    });
    return ok;
  }

  /**
   * Pods churning on every node: each second, perMinute/60 pods per node are created (bound to the
   * node), marked Running 5 s later and Succeeded 35 s later, and deleted after 60 s — 4 events per
   * pod, as an Argo step pod's life looks to a node's watch.
   */
  churn(perMinute: number): { stop(): void; events: () => number } {
    let events = 0;
    // One queue per step of a pod's life: each is in time order, as pods are created in time order.
    const steps: Array<{ after: number; act: (uid: string) => void; queue: Array<{ at: number; uid: string }> }> = [
      { after: 5000, act: (uid) => this.api.updatePod(uid, (p) => (p.status.phase = "Running")), queue: [] },
      { after: 35_000, act: (uid) => this.api.updatePod(uid, (p) => (p.status.phase = "Succeeded")), queue: [] },
      { after: 60_000, act: (uid) => this.api.deletePod(uid), queue: [] },
    ];
    const perSecond = perMinute / 60;
    let owed = 0;
    const timer = this.clock.every(1000, () => {
      const now = this.clock.now();
      for (const step of steps) {
        let k = 0;
        while (k < step.queue.length && step.queue[k]!.at <= now) {
          step.act(step.queue[k++]!.uid);
          events++;
        }
        step.queue.splice(0, k);
      }
      owed += perSecond;
      const count = Math.floor(owed);
      owed -= count;
      for (let i = 0; i < this.nodes; i++) {
        for (let c = 0; c < count; c++) {
          const uid = this.api.createPod(nodePod(nodeName(i), i, this.podsPerNode + this.podSerial++)).metadata.uid;
          events++;
          for (const step of steps) step.queue.push({ at: now + step.after, uid });
        }
      }
    });
    return { stop: () => timer.cancel(), events: () => events };
  }

  async stop(): Promise<void> {
    const stopped = Promise.all(this.providers.map((p) => p.stop()));
    await this.clock.settle();
    await stopped;
    await this.api.close();
  }
}

/** The kubelet provider on N nodes, each against its own node's (fake) kubelet: the API server sees nothing. */
export class KubeletFleet {
  readonly clock = new VirtualClock(T0, () => this.kubelets.reduce((n, k) => n + k.polls, 0));
  readonly kubelets: FakeKubelet[] = [];
  readonly providers: KubeletProvider[] = [];
  readonly log = countingLogger();

  constructor(
    readonly nodes: number,
    podsPerNode: number,
    pollIntervalMs: number,
  ) {
    for (let i = 0; i < nodes; i++) {
      const kubelet = FakeKubelet.inProcess({ tokens: [TOKEN] });
      for (let k = 0; k < podsPerNode; k++) kubelet.setPod(nodePod(nodeName(i), i, k));
      const client = new K8sClient({ server: kubelet.url, token: TOKEN, insecureSkipTlsVerify: false, description: "fleet kubelet" }, { fetch: kubelet.fetch, clock: this.clock });
      const cache = new PodCache({ deletionGraceSeconds: 60 });
      this.kubelets.push(kubelet);
      this.providers.push(new KubeletProvider(client, { pollIntervalMs }, cache, this.log, this.clock));
    }
  }

  async run(ms: number): Promise<{ pollsPerNode: number; bytesPerNode: number }> {
    const started = Promise.all(this.providers.map((p) => p.start()));
    await this.clock.settle();
    await started;
    await this.clock.runUntil(this.clock.now() + ms);
    const stopped = Promise.all(this.providers.map((p) => p.stop()));
    await this.clock.settle();
    await stopped;
    const polls = this.kubelets.reduce((n, k) => n + k.polls, 0);
    const bytes = this.kubelets.reduce((n, k) => n + k.bytes, 0);
    return { pollsPerNode: polls / this.nodes, bytesPerNode: bytes / this.nodes };
  }
}
