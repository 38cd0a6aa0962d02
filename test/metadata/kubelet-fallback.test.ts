// The apiserver provider asks the kubelet (opt-in) about pods the API server never showed it.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { ConfigSchema } from "../../src/config/schema.ts";
import { PodCache } from "../../src/metadata/cache.ts";
import { decidePod, selectionRulesFromConfig } from "../../src/metadata/selection.ts";
import type { FakeApiServer } from "../support/fake-apiserver.ts";
import { FakeKubelet } from "../support/fake-kubelet.ts";
import { LABEL_RUN, makeArgoPod } from "../support/podlist.ts";
import { until } from "./helpers.ts";
import { Harness, NODE } from "./k8s-harness.ts";

const h = new Harness();
beforeAll(() => h.init());
afterEach(() => h.cleanup());
afterAll(() => h.dispose());
const rules = selectionRulesFromConfig(ConfigSchema.parse({}));

async function setUp(kubeletFallback: boolean, cache = new PodCache({ deletionGraceSeconds: 0 })) {
  const api = await h.apiServer(["sa-token-1"]);
  // A kubelet whose serving certificate the cluster CA signed (serverTLSBootstrap): the
  // service account's CA verifies both.
  const kubelet = await FakeKubelet.start({ cert: h.pki.server.cert, key: h.pki.server.key, tokens: ["sa-token-1"] });
  h.closers.push(() => kubelet.close());
  const sa = h.serviceAccount("sa-token-1");
  const { provider } = h.provider(
    { metadata: { provider: "apiserver", kubeletFallback, kubeletUrl: kubelet.url }, node: { name: NODE } },
    {
      env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(api.port) },
      serviceAccountDir: sa.dir,
      apiserver: { backoffInitialMs: 50, backoffMaxMs: 300, reconnectWindowMs: 100 },
      kubeletFallbackDelayMs: 50,
    },
    cache,
  );
  return { api, kubelet, provider, cache };
}

async function watching(api: FakeApiServer): Promise<void> {
  await until(() => api.activeWatches === 1, 3000, "watch open");
}

describe("kubelet fallback of the apiserver provider", () => {
  test("a pod deleted from the API server before we saw it: one kubelet GET finds it, kept as a tombstone for its file", async () => {
    const { api, kubelet, provider, cache } = await setUp(true);
    const live = api.createPod(makeArgoPod({ workflow: "wf", step: "live", nodeName: NODE }));
    const gone = makeArgoPod({ workflow: "wf", step: "gone", nodeName: NODE, runUUID: "run-gone" });
    kubelet.setPod(live);
    kubelet.setPod(gone); // still terminating on the node; the API server no longer has it
    await provider.start();
    await watching(api);
    const uid = gone.metadata.uid;
    cache.retain(uid); // its file is open
    expect(decidePod(cache.get(uid), rules).kind).toBe("unknown");
    for (let i = 0; i < 50; i++) provider.notifyUnknownPod(uid); // the router asks on every turn
    await until(() => cache.get(uid) !== undefined, 3000, "kubelet answer");
    expect(kubelet.polls).toBe(1);
    expect(decidePod(cache.get(uid), rules).kind).toBe("select");
    expect(cache.get(uid)?.labels[LABEL_RUN]).toBe("run-gone");
    // The API server is in sync and lacks it: a tombstone, pinned by its file, swept once released.
    expect(cache.isDeleted(uid)).toBe(true);
    expect(provider.status().counters).toMatchObject({ kubeletAsks: 1, kubeletFound: 1 });
    expect(cache.sweep(Date.now() + 3_600_000)).toBe(0);
    cache.release(uid, Date.now());
    expect(cache.sweep(Date.now() + 1)).toBe(1);
    // The API server saw nothing of it.
    expect(api.requests.every((r) => r.query.fieldSelector === `spec.nodeName=${NODE}`)).toBe(true);
  });

  test("a UID the kubelet does not know either: asked once, however often the router reports it", async () => {
    const { api, kubelet, provider, cache } = await setUp(true);
    await provider.start();
    await watching(api);
    for (let i = 0; i < 20; i++) provider.notifyUnknownPod("stray-uid");
    await until(() => kubelet.polls === 1, 3000, "one ask");
    for (let i = 0; i < 20; i++) provider.notifyUnknownPod("stray-uid");
    await Bun.sleep(300);
    expect(kubelet.polls).toBe(1);
    expect(cache.get("stray-uid")).toBeUndefined();
    // A pod the watch delivers is never asked about.
    const p = api.createPod(makeArgoPod({ workflow: "wf", step: "new", nodeName: NODE }));
    await until(() => cache.get(p.metadata.uid) !== undefined);
    provider.notifyUnknownPod(p.metadata.uid);
    await Bun.sleep(300);
    expect(kubelet.polls).toBe(1);
  });

  test("off by default: the kubelet is never asked", async () => {
    const { api, kubelet, provider } = await setUp(false);
    await provider.start();
    await watching(api);
    for (let i = 0; i < 5; i++) provider.notifyUnknownPod("some-uid");
    await Bun.sleep(300);
    expect(kubelet.polls).toBe(0);
    expect(provider.status().counters.kubeletAsks).toBeUndefined();
  });

  test("the API server down at start: the kubelet's answer is kept live (the API server's list decides later)", async () => {
    const { api, kubelet, provider, cache } = await setUp(true);
    const pod = api.createPod(makeArgoPod({ workflow: "wf", step: "early", nodeName: NODE }));
    kubelet.setPod(pod);
    await api.down();
    await provider.start();
    expect(provider.status().synced).toBe(false);
    provider.notifyUnknownPod(pod.metadata.uid);
    await until(() => cache.get(pod.metadata.uid) !== undefined, 3000, "kubelet answer");
    expect(cache.isDeleted(pod.metadata.uid)).toBe(false);
    await api.up();
    await until(() => provider.status().synced, 5000, "synced");
    expect(cache.isDeleted(pod.metadata.uid)).toBe(false); // the API server has it
  });
});
