// Durable pod metadata: the snapshot written before each checkpoint save, seeded at start, with
// seeded pods kept until their files are drained — for all three providers.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigSchema } from "../../src/config/schema.ts";
import { MIRROR_ANNOTATION, PodCache } from "../../src/metadata/cache.ts";
import { POD_SNAPSHOT_FILE, PodSnapshot } from "../../src/metadata/pod-snapshot.ts";
import { decidePod, selectionRulesFromConfig } from "../../src/metadata/selection.ts";
import type { MetadataProvider, PodMeta } from "../../src/metadata/types.ts";
import { FakeKubelet } from "../support/fake-kubelet.ts";
import { type K8sPod, LABEL_RUN, makeArgoPod, makePod, makePodList } from "../support/podlist.ts";
import { memoryLogger, until } from "./helpers.ts";
import { Harness, NODE } from "./k8s-harness.ts";

const h = new Harness();
beforeAll(() => h.init());
afterEach(() => h.cleanup());
afterAll(() => h.dispose());

const config = (dataDir: string) => ConfigSchema.parse({ dataDir });
const rules = selectionRulesFromConfig(ConfigSchema.parse({}));

function meta(p: K8sPod): PodMeta {
  return { uid: p.metadata.uid, namespace: p.metadata.namespace, name: p.metadata.name, labels: p.metadata.labels ?? {}, annotations: p.metadata.annotations ?? {} };
}

function onDisk(dataDir: string): Array<{ uid: string; labels: Record<string, string>; annotations: Record<string, string>; deleted: boolean }> {
  return JSON.parse(readFileSync(join(dataDir, POD_SNAPSHOT_FILE), "utf8")).pods;
}

/** A run's snapshot: the cache knows these pods, the source holds a file of each; `deleted` ones are tombstones. */
function previousRun(dataDir: string, pods: K8sPod[], deleted: K8sPod[] = []): void {
  const cache = new PodCache({ deletionGraceSeconds: 60 });
  for (const p of pods) cache.upsert(meta(p));
  for (const p of deleted) cache.markDeleted(p.metadata.uid, Date.now());
  PodSnapshot.open(config(dataDir), cache, memoryLogger()).save(pods.map((p) => p.metadata.uid), true);
}

describe("pod metadata snapshot", () => {
  test("holds the pods of open files, every selected pod and the tombstones, with only the keys the chain reads; written atomically", () => {
    const dir = h.tmp();
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    const open = makeArgoPod({ workflow: "wf", step: "open", nodeName: NODE });
    open.metadata.labels!["team"] = "not-needed";
    open.metadata.annotations!["kubectl.kubernetes.io/last-applied-configuration"] = "x".repeat(5000);
    const closed = makeArgoPod({ workflow: "wf", step: "closed", nodeName: NODE }); // selected, its files not opened yet
    const idle = makePod({ name: "idle", namespace: "default", nodeName: NODE, labels: { app: "x" } }); // not selected, no file open
    const dead = makeArgoPod({ workflow: "wf", step: "dead", nodeName: NODE });
    const dns = makePod({ name: "coredns", namespace: "kube-system", nodeName: NODE, labels: { "k8s-app": "kube-dns" } });
    for (const p of [open, closed, idle, dead, dns]) cache.upsert(meta(p));
    cache.markDeleted(dead.metadata.uid, Date.now());
    const snap = PodSnapshot.open(config(dir), cache, memoryLogger());
    snap.save([open.metadata.uid, dns.metadata.uid, "uid-the-cache-does-not-know"], true);
    const pods = onDisk(dir);
    expect(pods.map((p) => p.uid).sort()).toEqual([open.metadata.uid, closed.metadata.uid, dead.metadata.uid, dns.metadata.uid].sort());
    const o = pods.find((p) => p.uid === open.metadata.uid)!;
    expect(Object.keys(o.labels).sort()).toEqual(["workflows.argoproj.io/workflow", "workflows.pipekit.io/org_uuid", "workflows.pipekit.io/pipe_uuid", LABEL_RUN].sort());
    expect(Object.keys(o.annotations)).toEqual(["workflows.argoproj.io/node-id"]);
    expect(pods.find((p) => p.uid === dead.metadata.uid)!.deleted).toBe(true);
    expect(pods.find((p) => p.uid === dns.metadata.uid)!.labels).toEqual({}); // known, not selected
    expect(statSync(join(dir, POD_SNAPSHOT_FILE)).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dir, POD_SNAPSHOT_FILE + ".tmp"))).toBe(false);
  });

  test("an unchanged snapshot is not written again (an idle collector does not fsync every second)", () => {
    const dir = h.tmp();
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    const p = makeArgoPod({ workflow: "wf", step: "a", nodeName: NODE });
    cache.upsert(meta(p));
    const snap = PodSnapshot.open(config(dir), cache, memoryLogger());
    snap.save([p.metadata.uid], true);
    const file = join(dir, POD_SNAPSHOT_FILE);
    writeFileSync(file, readFileSync(file)); // same bytes, new mtime below
    const before = statSync(file).mtimeMs;
    Bun.sleepSync(20);
    snap.save([p.metadata.uid], true);
    expect(statSync(file).mtimeMs).toBe(before);
    snap.save([], true); // its file drained and closed: a selected pod stays while it lives
    expect(onDisk(dir).map((x) => x.uid)).toEqual([p.metadata.uid]);
    const other = makePod({ name: "web", namespace: "default", nodeName: NODE, labels: { app: "web" } });
    cache.upsert(meta(other));
    snap.save([other.metadata.uid], true); // a pod that is not selected is kept only while its file is open
    expect(onDisk(dir).map((x) => x.uid).sort()).toEqual([p.metadata.uid, other.metadata.uid].sort());
    snap.save([], true);
    expect(onDisk(dir).map((x) => x.uid)).toEqual([p.metadata.uid]);
  });

  test("seeds the cache at start; a seeded pod stays (pinned) while the source holds its file, whatever a relist says", () => {
    const dir = h.tmp();
    const kept = makeArgoPod({ workflow: "wf", step: "kept", nodeName: NODE, runUUID: "run-kept" });
    const drained = makeArgoPod({ workflow: "wf", step: "drained", nodeName: NODE });
    const tomb = makeArgoPod({ workflow: "wf", step: "tomb", nodeName: NODE });
    previousRun(dir, [kept, drained, tomb], [tomb]);

    const cache = new PodCache({ deletionGraceSeconds: 0 });
    const log = memoryLogger();
    const snap = PodSnapshot.open(config(dir), cache, log);
    expect(snap.seeded).toBe(3);
    expect(decidePod(cache.get(kept.metadata.uid), rules).kind).toBe("select");
    expect(cache.get(kept.metadata.uid)?.labels[LABEL_RUN]).toBe("run-kept");
    expect(cache.isDeleted(tomb.metadata.uid)).toBe(true);
    // The provider's first list: none of them exists any more.
    cache.replaceAll([], Date.now());
    expect(cache.sweep(Date.now() + 3_600_000)).toBe(0); // pinned: the source has not scanned yet
    snap.save([kept.metadata.uid, drained.metadata.uid], false); // the first scan: files opened, not yet let go
    expect(cache.sweep(Date.now() + 3_600_000)).toBe(0);
    expect(onDisk(dir).length).toBe(3);
    // The source scanned: it holds kept's file only. The others are let go, then swept after the grace.
    snap.save([kept.metadata.uid], true);
    expect(snap.seeded).toBe(1);
    expect(cache.sweep(Date.now() + 1)).toBe(2);
    expect(decidePod(cache.get(kept.metadata.uid), rules).kind).toBe("select");
    expect(cache.isDeleted(kept.metadata.uid)).toBe(true);
    snap.save([kept.metadata.uid], true); // the next checkpoint save: the swept tombstones are gone from it
    expect(onDisk(dir).map((p) => p.uid)).toEqual([kept.metadata.uid]);
    // Its file drained and closed (the router released it): pruned from the snapshot, swept.
    snap.save([], true);
    expect(cache.sweep(Date.now() + 1)).toBe(1);
    snap.save([], true);
    expect(onDisk(dir)).toEqual([]);
  });

  test("a seeded pod the API server still has is just live again", () => {
    const dir = h.tmp();
    const p = makeArgoPod({ workflow: "wf", step: "live", nodeName: NODE });
    previousRun(dir, [p]);
    const cache = new PodCache({ deletionGraceSeconds: 0 });
    PodSnapshot.open(config(dir), cache, memoryLogger());
    cache.replaceAll([meta(p)], Date.now());
    expect(cache.isDeleted(p.metadata.uid)).toBe(false);
    expect(cache.get(p.metadata.uid)?.annotations["workflows.argoproj.io/node-id"]).toBe(p.metadata.annotations!["workflows.argoproj.io/node-id"]!);
  });

  test("a static pod's files are named by its config hash: kept through the alias", () => {
    const dir = h.tmp();
    const mirror = makePod({ name: "etcd-node", namespace: "kube-system", nodeName: NODE, annotations: { [MIRROR_ANNOTATION]: "hash123" } });
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    cache.upsert(meta(mirror));
    PodSnapshot.open(config(dir), cache, memoryLogger()).save(["hash123"], true);
    expect(onDisk(dir)[0]!.annotations).toEqual({ [MIRROR_ANNOTATION]: "hash123" });
    const next = new PodCache({ deletionGraceSeconds: 0 });
    const snap = PodSnapshot.open(config(dir), next, memoryLogger());
    expect(next.get("hash123")?.name).toBe("etcd-node");
    next.replaceAll([], Date.now());
    snap.save(["hash123"], true);
    expect(next.sweep(Date.now() + 1)).toBe(0);
    snap.save([], true);
    expect(next.sweep(Date.now() + 1)).toBe(1);
  });

  for (const [what, text] of [
    ["not JSON", "{ half a file"],
    ["another shape", JSON.stringify({ version: 2, pods: "none" })],
    ["a pod without a uid", JSON.stringify({ version: 1, pods: [{ namespace: "a", name: "b", labels: {}, annotations: {}, deleted: false }] })],
  ] as const) {
    test(`a damaged snapshot (${what}) is a warning: the collector starts without it and replaces it`, () => {
      const dir = h.tmp();
      writeFileSync(join(dir, POD_SNAPSHOT_FILE), text);
      const cache = new PodCache({ deletionGraceSeconds: 60 });
      const log = memoryLogger();
      const snap = PodSnapshot.open(config(dir), cache, log);
      expect(cache.size).toBe(0);
      expect(log.lines.filter((l) => l.level === "warn" && String(l.msg).includes("snapshot is unreadable"))).toHaveLength(1);
      const p = makeArgoPod({ workflow: "wf", step: "a", nodeName: NODE });
      cache.upsert(meta(p));
      snap.save([p.metadata.uid], true);
      expect(onDisk(dir).map((x) => x.uid)).toEqual([p.metadata.uid]);
    });
  }

  test("a snapshot that cannot be written throws (the checkpoints are not saved past it)", () => {
    const dir = h.tmp();
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    const p = makeArgoPod({ workflow: "wf", step: "a", nodeName: NODE });
    cache.upsert(meta(p));
    const snap = PodSnapshot.open(config(join(dir, "missing-dir")), cache, memoryLogger());
    expect(() => snap.save([p.metadata.uid], true)).toThrow(/ENOENT/);
  });
});

describe("seeded pods survive a first sync that lacks them, with every provider", () => {
  async function check(start: (cache: PodCache) => Promise<MetadataProvider>): Promise<void> {
    const dir = h.tmp();
    const gone = makeArgoPod({ workflow: "wf", step: "gone", nodeName: NODE, runUUID: "run-gone" });
    previousRun(dir, [gone]);
    const cache = new PodCache({ deletionGraceSeconds: 0 });
    const snap = PodSnapshot.open(config(dir), cache, memoryLogger());
    const provider = await start(cache);
    await until(() => provider.status().synced, 5000, "synced");
    expect(cache.isDeleted(gone.metadata.uid)).toBe(true); // the provider's source lacks it
    snap.save([gone.metadata.uid], true); // its file is still unread
    await Bun.sleep(1100); // the sweeper runs every second with a grace of 0
    expect(decidePod(cache.get(gone.metadata.uid), rules).kind).toBe("select");
    expect(cache.get(gone.metadata.uid)?.labels[LABEL_RUN]).toBe("run-gone");
  }

  test("apiserver", async () => {
    const api = await h.apiServer();
    api.createPod(makeArgoPod({ workflow: "wf", step: "other", nodeName: NODE }));
    await check(async (cache) => {
      const { provider } = h.inCluster(api, h.serviceAccount("sa-token-1"), {}, cache);
      await provider.start();
      return provider;
    });
  });

  test("kubelet", async () => {
    const k = await FakeKubelet.start({ cert: h.pki.selfSigned.cert, key: h.pki.selfSigned.key, tokens: ["t"] });
    h.closers.push(() => k.close());
    const sa = h.serviceAccount("t");
    await check(async (cache) => {
      const { provider } = h.provider(
        { metadata: { provider: "kubelet", kubeletUrl: k.url, caFile: h.pki.selfSigned.certFile }, node: { name: NODE } },
        { serviceAccountDir: sa.dir },
        cache,
      );
      await provider.start();
      return provider;
    });
  });

  test("static", async () => {
    const file = join(h.tmp(), "pods.json");
    writeFileSync(file, JSON.stringify(makePodList([makeArgoPod({ workflow: "wf", step: "other", nodeName: NODE })])));
    await check(async (cache) => {
      const { provider } = h.provider({ metadata: { provider: "static", podsFile: file } }, {}, cache);
      await provider.start();
      return provider;
    });
  });
});
