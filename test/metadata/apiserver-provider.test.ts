import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PodCache } from "../../src/metadata/cache.ts";
import { decidePod, selectionRulesFromConfig } from "../../src/metadata/selection.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { LABEL_RUN, makeArgoPod, makePod } from "../support/podlist.ts";
import { until } from "./helpers.ts";
import { Harness, NODE } from "./k8s-harness.ts";

const h = new Harness();
beforeAll(() => h.init());
afterEach(() => h.cleanup());
afterAll(() => h.dispose());

const rules = selectionRulesFromConfig(ConfigSchema.parse({}));
const argo = (step: string, extra: Parameters<typeof makeArgoPod>[0] = { workflow: "wf", step }) => makeArgoPod({ ...extra, workflow: extra.workflow, step, nodeName: extra.nodeName ?? NODE });

describe("apiserver provider (in-cluster, HTTPS with a private CA, rotating token)", () => {
  test("lists then watches only this node's pods, with the token and fieldSelector", async () => {
    const api = await h.apiServer();
    const mine = api.createPod(argo("a"));
    const other = api.createPod(argo("b", { workflow: "wf", step: "b", nodeName: "worker-9" }));
    const coredns = api.createPod(makePod({ name: "coredns-x", namespace: "kube-system", nodeName: NODE, labels: { "k8s-app": "kube-dns" } }));
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
    await provider.start();
    expect(provider.status()).toMatchObject({ provider: "apiserver", synced: true, failing: false, podsKnown: 2 });
    expect(cache.get(mine.metadata.uid)?.labels[LABEL_RUN]).toBe("74676beb-e289-4bb4-a616-d011a835681b");
    expect(cache.get(other.metadata.uid)).toBeUndefined();
    // A non-Argo pod of this node is known as such: its files are never read.
    expect(decidePod(cache.get(coredns.metadata.uid), rules)).toEqual({ kind: "not-selected" });
    await until(() => api.activeWatches === 1, 3000, "watch open");
    for (const r of api.requests) {
      expect(r.query.fieldSelector).toBe(`spec.nodeName=${NODE}`);
      expect(r.auth).toBe("token");
    }
    // One request lists and watches: a watch-list from the watch cache (any resourceVersion), no list.
    expect(api.requests.map((r) => r.kind)).toEqual(["watch-list"]);
    expect(api.requests[0]!.query).toMatchObject({ watch: "true", sendInitialEvents: "true", resourceVersionMatch: "NotOlderThan", allowWatchBookmarks: "true", resourceVersion: "0" });
    // A server-side timeout of one to two hours: under one watch per node per hour.
    expect(Number(api.requests[0]!.query.timeoutSeconds)).toBeGreaterThanOrEqual(3600);
    expect(api.requests.some((r) => r.etcd)).toBe(false);
  });

  test("a server without watch-list (422): list from the watch cache, then a watch from its resourceVersion", async () => {
    const api = await h.apiServer(["sa-token-1"], { watchList: false });
    const mine = api.createPod(argo("a"));
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
    await provider.start();
    expect(cache.get(mine.metadata.uid)).toBeDefined();
    await until(() => api.activeWatches === 1, 3000, "watch open");
    expect(api.requests.map((r) => `${r.kind} ${r.status}`)).toEqual(["watch-list 422", "list 200", "watch 200"]);
    expect(api.requests[1]!.query.resourceVersion).toBe("0");
    expect(api.requests[2]!.query).toMatchObject({ allowWatchBookmarks: "true", resourceVersion: api.resourceVersion });
    expect(provider.status().counters).toMatchObject({ watchListFallbacks: 1, lists: 1, watchLists: 0 });
    expect(provider.status().failing).toBe(false);
    // It does not ask again: the next resync lists too.
    api.expireWatches();
    await until(() => provider.status().counters.relists === 1, 5000, "relist");
    expect(api.requests.filter((r) => r.kind === "watch-list").length).toBe(1);
  });

  test("a watch-list whose initial events never end: abandoned after requestTimeoutMs, a list instead", async () => {
    const api = await h.apiServer(["sa-token-1"], { withholdInitialEventsEnd: true });
    const mine = api.createPod(argo("a"));
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"), { requestTimeoutMs: 300 });
    await provider.start();
    expect(cache.get(mine.metadata.uid)).toBeDefined();
    expect(provider.status().counters).toMatchObject({ watchListFallbacks: 1, lists: 1, watchLists: 0 });
    expect(api.requests.slice(0, 2).map((r) => r.kind)).toEqual(["watch-list", "list"]);
    expect(h.log.lines.some((l) => l.level === "warn" && String(l.msg).includes("watch-list did not complete"))).toBe(true);
  });

  test("a pod's file appears before the pod is known: held (unknown), then enriched", async () => {
    const api = await h.apiServer();
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
    await provider.start();
    await until(() => api.activeWatches === 1);
    const pod = argo("late");
    const uid = pod.metadata.uid;
    cache.retain(uid); // the source opened the file
    expect(decidePod(cache.get(uid), rules)).toEqual({ kind: "unknown" });
    provider.notifyUnknownPod(uid);
    const arrived = new Promise<void>((r) => cache.onChange((u) => u === uid && r()));
    api.createPod(pod);
    await arrived;
    expect(decidePod(cache.get(uid), rules)).toEqual({ kind: "select" });
    expect(cache.get(uid)?.annotations["workflows.argoproj.io/node-id"]).toBe(pod.metadata.annotations!["workflows.argoproj.io/node-id"]!);
  });

  test("a pod deleted while its file has unread lines: every line is enriched; swept only after release + grace", async () => {
    const api = await h.apiServer();
    const cache = new PodCache({ deletionGraceSeconds: 1 });
    const { provider } = h.inCluster(api, h.serviceAccount("sa-token-1"), {}, cache);
    const pod = api.createPod(argo("short"));
    const uid = pod.metadata.uid;
    await provider.start();
    cache.retain(uid); // file open, 1,000 lines unread
    await until(() => api.activeWatches === 1);
    api.deletePod(uid);
    await until(() => cache.isDeleted(uid), 3000, "DELETED applied");
    expect(provider.status().tombstones).toBe(1);
    // The source drains the file long after the grace period: every line still finds the pod.
    let enriched = 0;
    for (let line = 0; line < 1000; line++) {
      cache.sweep(Date.now() + 3_600_000);
      if (decidePod(cache.get(uid), rules).kind === "select") enriched++;
    }
    expect(enriched).toBe(1000);
    const releasedAt = Date.now();
    cache.release(uid, releasedAt);
    expect(cache.sweep(releasedAt + 999)).toBe(0);
    expect(cache.sweep(releasedAt + 1000)).toBe(1);
    expect(cache.get(uid)).toBeUndefined();
  });

  test("a name reused by a new UID never inherits the old pod's labels", async () => {
    const api = await h.apiServer();
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
    const first = api.createPod(makeArgoPod({ workflow: "wf", step: "retry", nodeName: NODE, runUUID: "run-1" }));
    await provider.start();
    await until(() => api.activeWatches === 1);
    api.deletePod(first.metadata.uid);
    const second = api.createPod(makeArgoPod({ workflow: "wf", step: "retry", nodeName: NODE, runUUID: "run-2", omit: ["workflows.pipekit.io/pipe_uuid"] }));
    expect(second.metadata.name).toBe(first.metadata.name);
    await until(() => cache.get(second.metadata.uid) !== undefined);
    expect(cache.get(first.metadata.uid)?.labels[LABEL_RUN]).toBe("run-1");
    expect(cache.get(second.metadata.uid)?.labels[LABEL_RUN]).toBe("run-2");
    expect(decidePod(cache.get(second.metadata.uid), rules)).toEqual({ kind: "incomplete", missing: ["label:workflows.pipekit.io/pipe_uuid"] });
  });

  test("the watch stream cut mid-line: reconnects from the last resourceVersion, misses nothing, no relist", async () => {
    const api = await h.apiServer();
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
    await provider.start();
    await until(() => api.activeWatches === 1);
    const a = api.createPod(argo("a"));
    await until(() => cache.get(a.metadata.uid) !== undefined);
    const rvBefore = api.resourceVersion;
    api.cutWatches({ midLine: true });
    // Changes while no watch is open are replayed from history on resume.
    const b = api.createPod(argo("b"));
    api.updatePod(a.metadata.uid, (p) => (p.metadata.labels!.extra = "yes"));
    await until(() => cache.get(b.metadata.uid) !== undefined && cache.get(a.metadata.uid)?.labels.extra === "yes", 5000, "resume");
    const s = provider.status();
    expect(s.counters.watchLists).toBe(1);
    expect(s.counters.lists).toBe(0);
    expect(s.counters.relists).toBe(0);
    expect(s.counters.watchRestarts).toBeGreaterThanOrEqual(1);
    expect(s.counters.watchStreamErrors).toBeGreaterThanOrEqual(1);
    expect(s.failing).toBe(false);
    const resumed = api.requests.filter((r) => r.watch).at(-1)!;
    expect(resumed.query.resourceVersion).toBe(rvBefore);
    expect(cache.size).toBe(2);
  });

  for (const watchList of [true, false]) {
    test(`410 Gone (${watchList ? "watch-list" : "list + watch"} server): resyncs from the watch cache, never a consistent list; no duplicates; pods deleted meanwhile become tombstones`, async () => {
      const api = await h.apiServer(["sa-token-1"], { watchList });
      const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
      const pods = ["a", "b", "c", "d"].map((s) => api.createPod(argo(s)));
      await provider.start();
      await until(() => api.activeWatches === 1);
      const seen = api.resourceVersion;
      await api.down();
      api.deletePod(pods[0]!.metadata.uid);
      const e = api.createPod(argo("e"));
      api.compact();
      await api.up();
      await until(() => provider.status().counters.relists === 1, 5000, "relist");
      const s = provider.status();
      expect(s.counters.gone).toBe(1);
      expect(cache.size).toBe(5);
      expect(s.podsKnown).toBe(4);
      expect(s.tombstones).toBe(1);
      expect(cache.isDeleted(pods[0]!.metadata.uid)).toBe(true);
      expect(cache.get(e.metadata.uid)).toBeDefined();
      // The resync after the 410: not older than what was seen, from the cache.
      const sync = api.requests.filter((r) => r.kind !== "watch" && r.status === 200).at(-1)!;
      expect(sync.kind).toBe(watchList ? "watch-list" : "list");
      expect(sync.query).toMatchObject({ resourceVersion: seen, resourceVersionMatch: "NotOlderThan" });
      expect(sync.query.limit).toBeUndefined();
      // An ERROR 410 sent into an open watch is handled the same way.
      await until(() => api.activeWatches === 1);
      api.expireWatches();
      await until(() => provider.status().counters.relists === 2, 5000, "second relist");
      expect(cache.size).toBe(5);
      expect(api.requests.filter((r) => r.etcd)).toEqual([]);
    });
  }

  test("an API server restart: the cut watch comes back after its spread delay; the 410 on resume resyncs at once, from the cache", async () => {
    const api = await h.apiServer();
    const pod = api.createPod(argo("a"));
    // random() = 0.9: the reconnect waits 0.9 × reconnectWindowMs.
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"), { reconnectWindowMs: 1000, random: () => 0.9 });
    await provider.start();
    await until(() => api.activeWatches === 1);
    const before = api.requests.length;
    const cutAt = Date.now();
    await api.restart(100);
    await until(() => provider.status().counters.relists === 1, 5000, "resync");
    const after = api.requests.slice(before);
    expect(after.map((r) => `${r.kind} ${r.status}`)).toEqual(["watch 200", "watch-list 200"]);
    expect(after[0]!.at - cutAt).toBeGreaterThanOrEqual(850);
    expect(after[1]!.at - after[0]!.at).toBeLessThan(500); // no second delay: the resume itself was spread
    expect(after[1]!.query).toMatchObject({ resourceVersionMatch: "NotOlderThan", sendInitialEvents: "true" });
    expect(provider.status().counters).toMatchObject({ watchStreamErrors: 1, gone: 1, errors: 0 });
    expect(cache.get(pod.metadata.uid)).toBeDefined();
    expect(api.requests.some((r) => r.etcd)).toBe(false);
  });

  test("API server down at start and up later: start() does not fail, nothing is lost", async () => {
    const api = await h.apiServer();
    await api.down();
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
    const pod = argo("early");
    cache.retain(pod.metadata.uid); // a file already waits for this pod
    await provider.start();
    expect(provider.status()).toMatchObject({ synced: false, failing: true });
    expect(provider.status().lastError).toContain("ECONNREFUSED");
    api.createPod(pod);
    await api.up();
    await until(() => cache.get(pod.metadata.uid) !== undefined, 5000, "listed after the server came up");
    expect(provider.status()).toMatchObject({ synced: true, failing: false });
    expect(provider.status().counters.errors).toBeGreaterThanOrEqual(1);
    expect(decidePod(cache.get(pod.metadata.uid), rules).kind).toBe("select");
  });

  test(
    "a label added 10 s after the pod started: incomplete until then (held, not filtered), selected after",
    async () => {
      const api = await h.apiServer();
      const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
      const pod = api.createPod(makeArgoPod({ workflow: "wf", step: "slow", nodeName: NODE, omit: [LABEL_RUN] }));
      const uid = pod.metadata.uid;
      await provider.start();
      const startedAt = Date.now();
      expect(decidePod(cache.get(uid), rules)).toEqual({ kind: "incomplete", missing: [`label:${LABEL_RUN}`] });
      const decisions: string[] = [];
      cache.onChange((u) => u === uid && decisions.push(decidePod(cache.get(uid), rules).kind));
      await Bun.sleep(10_000);
      api.updatePod(uid, (p) => (p.metadata.labels![LABEL_RUN] = "late-run"));
      await until(() => decisions.length > 0, 3000, "MODIFIED");
      const waitForMetadataSeconds = ConfigSchema.parse({}).metadata.waitForMetadataSeconds;
      expect((Date.now() - startedAt) / 1000).toBeLessThan(waitForMetadataSeconds); // still inside the hold
      expect(decisions).toEqual(["select"]);
      expect(cache.get(uid)?.labels[LABEL_RUN]).toBe("late-run");
    },
    { timeout: 20_000 },
  );

  test("the token file rotated: the next request carries the new token", async () => {
    const api = await h.apiServer(["token-A"]);
    const sa = h.serviceAccount("token-A");
    const { provider, cache } = h.inCluster(api, sa);
    await provider.start();
    await until(() => api.activeWatches === 1);
    // kubelet rotates the projected token: the old one is revoked, a new file swapped in.
    api.tokens.clear();
    api.tokens.add("token-B");
    writeFileSync(join(sa.dir, "token.new"), "token-B\n");
    renameSync(join(sa.dir, "token.new"), sa.tokenFile);
    api.cutWatches();
    const pod = api.createPod(argo("after-rotation"));
    await until(() => cache.get(pod.metadata.uid) !== undefined, 5000, "watch with new token");
    expect(api.requests.filter((r) => r.status === 401)).toEqual([]);
    // A revoked token (file not yet updated) is a provider error, not a crash; fixing the file recovers.
    api.tokens.clear();
    api.tokens.add("token-C");
    api.cutWatches();
    await until(() => provider.status().failing, 5000, "401 noticed");
    expect(provider.status().lastError).toContain("HTTP 401 Unauthorized");
    writeFileSync(sa.tokenFile, "token-C");
    const pod2 = api.createPod(argo("after-fix"));
    await until(() => cache.get(pod2.metadata.uid) !== undefined, 5000, "recovered");
    expect(provider.status().failing).toBe(false);
  });

  test("1,000 pods on the node (and 200 elsewhere): all known, none from other nodes", async () => {
    const api = await h.apiServer();
    const uids: string[] = [];
    for (let i = 0; i < 1000; i++) uids.push(api.createPod(argo(`s${i}`, { workflow: `wf-${i % 37}`, step: `s${i}` })).metadata.uid);
    for (let i = 0; i < 200; i++) api.createPod(argo(`x${i}`, { workflow: "wf-other", step: `x${i}`, nodeName: "worker-1" }));
    const { provider, cache } = h.inCluster(api, h.serviceAccount("sa-token-1"));
    await provider.start();
    expect(provider.status().podsKnown).toBe(1000);
    expect(uids.every((u) => decidePod(cache.get(u), rules).kind === "select")).toBe(true);
    await until(() => api.activeWatches === 1);
    for (let i = 0; i < 100; i++) api.deletePod(uids[i]!);
    await until(() => provider.status().tombstones === 100, 5000, "100 deletions");
    expect(cache.size).toBe(1000);
  });

  test("BOOKMARKs advance the resourceVersion used to resume", async () => {
    const api = await h.apiServer();
    const { provider } = h.inCluster(api, h.serviceAccount("sa-token-1"));
    await provider.start();
    await until(() => api.activeWatches === 1);
    // Changes on another node move the RV without any event for us; a bookmark tells us.
    for (let i = 0; i < 5; i++) api.createPod(argo(`o${i}`, { workflow: "wf", step: `o${i}`, nodeName: "worker-1" }));
    api.sendBookmarks();
    await until(() => provider.status().counters.bookmarks === 1);
    api.cutWatches();
    await until(() => api.requests.filter((r) => r.watch && r.status === 200).length === 2);
    expect(api.requests.filter((r) => r.watch).at(-1)!.query.resourceVersion).toBe(api.resourceVersion);
  });

  test("periodic resync relists even when the watch is healthy", async () => {
    const api = await h.apiServer();
    const { provider } = h.inCluster(api, h.serviceAccount("sa-token-1"), { resyncIntervalMs: 1000 });
    await provider.start();
    await until(() => (provider.status().counters.relists ?? 0) >= 1, 5000, "resync");
    expect(api.requests.filter((r) => r.kind === "watch-list" && r.status === 200).length).toBeGreaterThanOrEqual(2);
    expect(api.requests.at(-1)!.query.resourceVersionMatch).toBe("NotOlderThan");
    // No pod at all on the node (not even the collector's own): NODE_NAME is probably wrong.
    expect(h.log.lines.some((l) => l.level === "warn" && String(l.msg).includes("is NODE_NAME the node's name"))).toBe(true);
  });
});
