import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { ConfigSchema } from "../../src/config/schema.ts";
import { decidePod, selectionRulesFromConfig } from "../../src/metadata/selection.ts";
import { FakeKubelet } from "../support/fake-kubelet.ts";
import { makeArgoPod, makePod } from "../support/podlist.ts";
import { until } from "./helpers.ts";
import { Harness, NODE } from "./k8s-harness.ts";

const h = new Harness();
beforeAll(() => h.init());
afterEach(() => h.cleanup());
afterAll(() => h.dispose());
const rules = selectionRulesFromConfig(ConfigSchema.parse({}));

async function kubelet(tokens = ["sa-token-1"]): Promise<FakeKubelet> {
  // Kubelets serve a self-signed certificate unless serverTLSBootstrap is on.
  const k = await FakeKubelet.start({ cert: h.pki.selfSigned.cert, key: h.pki.selfSigned.key, tokens });
  h.closers.push(() => k.close());
  return k;
}

describe("kubelet provider (GET /pods over HTTPS, self-signed kubelet certificate)", () => {
  test("end to end: poll, early (rate-limited) poll for an unknown UID, deletion → tombstone", async () => {
    const k = await kubelet();
    const a = makeArgoPod({ workflow: "wf", step: "a", nodeName: NODE });
    const dns = makePod({ name: "coredns", namespace: "kube-system", nodeName: NODE });
    k.setPod(a);
    k.setPod(dns);
    const sa = h.serviceAccount("sa-token-1");
    const { provider, cache } = h.provider(
      { metadata: { provider: "kubelet", kubeletUrl: k.url, caFile: h.pki.selfSigned.certFile, pollIntervalMs: 60_000 }, node: { name: NODE } },
      { serviceAccountDir: sa.dir, kubeletMinGapMs: 100 },
    );
    await provider.start();
    expect(provider.status()).toMatchObject({ provider: "kubelet", synced: true, failing: false, podsKnown: 2 });
    expect(decidePod(cache.get(a.metadata.uid), rules).kind).toBe("select");
    expect(decidePod(cache.get(dns.metadata.uid), rules).kind).toBe("not-selected");

    // A file of a new pod appears long before the next 60 s poll: an early poll finds it.
    const b = makeArgoPod({ workflow: "wf", step: "b", nodeName: NODE });
    k.setPod(b);
    cache.retain(b.metadata.uid);
    for (let i = 0; i < 50; i++) provider.notifyUnknownPod(b.metadata.uid); // a burst: rate-limited
    await until(() => cache.get(b.metadata.uid) !== undefined, 3000, "early poll");
    expect(k.polls).toBeLessThanOrEqual(3);
    // Known UIDs never trigger polls.
    const before = k.polls;
    provider.notifyUnknownPod(a.metadata.uid);
    await Bun.sleep(300);
    expect(k.polls).toBe(before);

    k.deletePod(b.metadata.uid);
    provider.notifyUnknownPod("some-other-new-uid");
    await until(() => cache.isDeleted(b.metadata.uid), 3000, "tombstone");
    expect(cache.get(b.metadata.uid)?.name).toBe(b.metadata.name);
    expect(provider.status().counters.earlyPolls).toBeGreaterThanOrEqual(2);
  });

  test("a UID the kubelet does not know either brings one early poll forward, not one per notice", async () => {
    const k = await kubelet();
    const { provider } = h.provider(
      { metadata: { provider: "kubelet", kubeletUrl: k.url, caFile: h.pki.selfSigned.certFile, pollIntervalMs: 60_000 } },
      { serviceAccountDir: h.serviceAccount("sa-token-1").dir, kubeletMinGapMs: 50 },
    );
    await provider.start();
    expect(k.polls).toBe(1);
    for (let i = 0; i < 10; i++) {
      provider.notifyUnknownPod("stray-uid"); // the router asks again on every turn while holding
      await Bun.sleep(60);
    }
    expect(k.polls).toBe(2);
    expect(provider.status().counters.unknownPodNotices).toBe(10);
  });

  test("polls every pollIntervalMs; a failing kubelet keeps the cache and reports failing", async () => {
    const k = await kubelet();
    const a = makeArgoPod({ workflow: "wf", step: "a", nodeName: NODE });
    k.setPod(a);
    const sa = h.serviceAccount("sa-token-1");
    const { provider, cache } = h.provider(
      { metadata: { provider: "kubelet", kubeletUrl: k.url, insecureSkipTlsVerify: true, pollIntervalMs: 100 } },
      { serviceAccountDir: sa.dir },
    );
    await provider.start();
    await until(() => k.polls >= 3, 3000, "periodic polls");
    k.failNext = { count: 1_000_000, status: 500 };
    await until(() => provider.status().failing, 3000, "failing");
    expect(provider.status().lastError).toContain("HTTP 500");
    expect(cache.isDeleted(a.metadata.uid)).toBe(false);
    k.failNext = null;
    await until(() => !provider.status().failing, 3000, "recovered");
    expect(provider.status().counters.errors).toBeGreaterThanOrEqual(1);
  });

  test("a self-signed kubelet certificate without caFile or insecureSkipTlsVerify fails verification with a hint", async () => {
    const k = await kubelet();
    const sa = h.serviceAccount("sa-token-1"); // its ca.crt is the cluster CA, which did not sign the kubelet's cert
    const { provider } = h.provider({ metadata: { provider: "kubelet", kubeletUrl: k.url } }, { serviceAccountDir: sa.dir });
    await provider.start();
    expect(provider.status()).toMatchObject({ synced: false, failing: true });
    expect(provider.status().lastError).toMatch(/self.signed|certificate/i);
    expect(provider.status().lastError).toContain("metadata.caFile or metadata.insecureSkipTlsVerify");
    expect(k.polls).toBe(0);
  });

  test("a wrong token is a provider error naming 401", async () => {
    const k = await kubelet(["right"]);
    const sa = h.serviceAccount("wrong");
    const { provider } = h.provider({ metadata: { provider: "kubelet", kubeletUrl: k.url, caFile: h.pki.selfSigned.certFile } }, { serviceAccountDir: sa.dir });
    await provider.start();
    expect(provider.status().lastError).toContain("HTTP 401");
  });

  test("default URL from NODE_IP", async () => {
    const k = await kubelet();
    const { provider } = h.provider(
      { metadata: { provider: "kubelet", caFile: h.pki.selfSigned.certFile }, node: { ip: "127.0.0.1" } },
      { serviceAccountDir: h.serviceAccount("sa-token-1").dir },
    );
    await provider.start();
    // Port 10250 is not our fake: the error names the default URL.
    expect(provider.status().lastError).toContain("https://127.0.0.1:10250/pods");
    expect(k.polls).toBe(0);
  });
});
