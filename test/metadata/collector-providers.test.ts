// The real collector (source → router → ring → sender) with the apiserver and kubelet providers against the
// HTTPS fake: real files, real inotify, the mock messenger over HTTP. Proves the holding and
// tombstone behaviour end to end: every line arrives with its own pod's identifiers.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Collector, startCollector } from "../../src/collector.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { FakeKubelet } from "../support/fake-kubelet.ts";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { LABEL_RUN, makeArgoPod, makePod } from "../support/podlist.ts";
import { criLines, podLogFile, until } from "./helpers.ts";
import { Harness, NODE } from "./k8s-harness.ts";

const h = new Harness();
let messenger: MockMessenger;
beforeAll(async () => {
  h.init();
  messenger = await startMockMessenger({ apiKey: "k" });
});
afterAll(async () => {
  await h.cleanup();
  await messenger.stop();
  h.dispose();
});


test(
  "held until known, late labels, deletion mid-file, name reuse, non-Argo pod: every line with its own pod's identifiers",
  async () => {
    const api = await h.apiServer(["collector-token"]);
    const dir = h.tmp();
    const root = join(dir, "pods");
    mkdirSync(root);
    writeFileSync(join(dir, "token"), "collector-token");

    const early = makeArgoPod({ workflow: "wf", step: "early", nodeName: NODE, runUUID: "run-early" });
    const short = api.createPod(makeArgoPod({ workflow: "wf", step: "short", nodeName: NODE, runUUID: "run-short" }));
    const late = api.createPod(makeArgoPod({ workflow: "wf", step: "late", nodeName: NODE, omit: [LABEL_RUN] }));
    const retry1 = api.createPod(makeArgoPod({ workflow: "wf", step: "retry", nodeName: NODE, runUUID: "run-1" }));
    const dns = api.createPod(makePod({ name: "coredns-1", namespace: "kube-system", nodeName: NODE, labels: { "k8s-app": "kube-dns" }, containers: ["coredns"] }));

    // Files before the collector starts: early's pod is not known yet.
    writeFileSync(podLogFile(root, early, "main"), criLines("early", 0, 40));
    writeFileSync(podLogFile(root, short, "main"), criLines("short", 0, 50));
    writeFileSync(podLogFile(root, late, "main"), criLines("late", 0, 30));
    writeFileSync(podLogFile(root, retry1, "main"), criLines("retry1", 0, 20));
    writeFileSync(podLogFile(root, dns, "coredns"), criLines("dns", 0, 25));

    const config = ConfigSchema.parse({
      dataDir: join(dir, "data"),
      source: { root, partialFlushMs: 500 },
      metadata: { provider: "apiserver", apiserverUrl: api.url, caFile: h.pki.ca.certFile, tokenFile: join(dir, "token"), waitForMetadataSeconds: 20, deletionGraceSeconds: 0 },
      buffer: { maxBytes: "4MiB", syncIntervalMs: 50 },
      messenger: { baseUri: messenger.url, apiKey: "k", flushIntervalMs: 50, retryInitialBackoffMs: 50, retryMaxBackoffMs: 200 },
      api: { address: "127.0.0.1:0" },
      node: { name: NODE },
      shutdownTimeoutMs: 2000,
    });
    const collector: Collector = await startCollector(config, h.log);
    h.closers.push(async () => void (await collector.stop()));

    const got = () => messenger.received();
    const count = (tag: string) => got().filter((r) => r.message.startsWith(tag + " ")).length;
    await until(() => count("short") === 50 && count("retry1") === 20, 10_000, "known pods delivered");
    expect(count("early")).toBe(0); // held, not read, not filtered
    expect(count("late")).toBe(0); // held: run_uuid missing

    // The pod of the early file appears; the late label arrives.
    api.createPod(early);
    api.updatePod(late.metadata.uid, (p) => (p.metadata.labels![LABEL_RUN] = "run-late"));
    // short is deleted, then its file gets more lines (the runtime flushes after the API deletion).
    api.deletePod(short.metadata.uid);
    await until(() => collector.provider.status().tombstones >= 1, 5000, "tombstone");
    // deletionGraceSeconds is 0 and the provider sweeps every second: only the open file pins it.
    await Bun.sleep(1200);
    expect(collector.provider.status().tombstones).toBe(1);
    appendFileSync(podLogFile(root, short, "main"), criLines("short", 50, 50));
    // The name is reused by a new UID.
    api.deletePod(retry1.metadata.uid);
    const retry2 = api.createPod(makeArgoPod({ workflow: "wf", step: "retry", nodeName: NODE, runUUID: "run-2" }));
    expect(retry2.metadata.name).toBe(retry1.metadata.name);
    writeFileSync(podLogFile(root, retry2, "main"), criLines("retry2", 0, 20));

    await until(() => count("early") === 40 && count("late") === 30 && count("short") === 100 && count("retry2") === 20, 15_000, "all lines");
    const byTag = (tag: string) => got().filter((r) => r.message.startsWith(tag + " "));
    expect(new Set(byTag("early").map((r) => r.runUUID))).toEqual(new Set(["run-early"]));
    expect(new Set(byTag("late").map((r) => r.runUUID))).toEqual(new Set(["run-late"]));
    expect(new Set(byTag("short").map((r) => r.runUUID))).toEqual(new Set(["run-short"]));
    expect(new Set(byTag("short").map((r) => r.podName))).toEqual(new Set([short.metadata.name]));
    expect(new Set(byTag("retry1").map((r) => r.runUUID))).toEqual(new Set(["run-1"]));
    expect(new Set(byTag("retry2").map((r) => r.runUUID))).toEqual(new Set(["run-2"]));
    expect(count("dns")).toBe(0);
    const filtered = Object.values(collector.router.counters.eventsFiltered).reduce((a, b) => a + b, 0);
    expect(filtered).toBe(0);
    expect(collector.source.counters.filesSkipped).toBeGreaterThanOrEqual(1); // coredns
    // The API server saw one list and watches, all scoped to the node.
    expect(api.requests.every((r) => r.query.fieldSelector === `spec.nodeName=${NODE}` && r.auth === "token")).toBe(true);
  },
  { timeout: 40_000 },
);

test(
  "kubelet provider in the collector: a file of an unknown pod brings the poll forward (pollIntervalMs is 60 s)",
  async () => {
    const kubelet = await FakeKubelet.start({ cert: h.pki.selfSigned.cert, key: h.pki.selfSigned.key, tokens: ["kt"] });
    h.closers.push(() => kubelet.close());
    const dir = h.tmp();
    const root = join(dir, "pods");
    mkdirSync(root);
    writeFileSync(join(dir, "token"), "kt");
    const known = makeArgoPod({ workflow: "wk", step: "known", nodeName: NODE, runUUID: "run-known" });
    kubelet.setPod(known);
    writeFileSync(podLogFile(root, known, "main"), criLines("known", 0, 10));
    const config = ConfigSchema.parse({
      dataDir: join(dir, "data"),
      source: { root },
      metadata: { provider: "kubelet", kubeletUrl: kubelet.url, caFile: h.pki.selfSigned.certFile, tokenFile: join(dir, "token"), pollIntervalMs: 60_000, waitForMetadataSeconds: 20 },
      buffer: { maxBytes: "4MiB", syncIntervalMs: 50 },
      messenger: { baseUri: messenger.url, apiKey: "k", flushIntervalMs: 50 },
      api: { address: "127.0.0.1:0" },
      node: { name: NODE },
      shutdownTimeoutMs: 2000,
    });
    messenger.reset();
    const collector = await startCollector(config, h.log);
    h.closers.push(async () => void (await collector.stop()));
    const count = (tag: string) => messenger.received().filter((r) => r.message.startsWith(tag + " ")).length;
    await until(() => count("known") === 10, 10_000, "known pod");
    const pollsBefore = kubelet.polls;
    // A new step pod starts: the kubelet knows it, the collector's cache does not yet.
    const fresh = makeArgoPod({ workflow: "wk", step: "fresh", nodeName: NODE, runUUID: "run-fresh" });
    kubelet.setPod(fresh);
    writeFileSync(podLogFile(root, fresh, "main"), criLines("fresh", 0, 15));
    await until(() => count("fresh") === 15, 10_000, "fresh pod via an early poll");
    expect(new Set(messenger.received().filter((r) => r.message.startsWith("fresh ")).map((r) => r.runUUID))).toEqual(new Set(["run-fresh"]));
    expect(kubelet.polls - pollsBefore).toBeLessThanOrEqual(2);
    expect(collector.provider.status().counters.earlyPolls).toBeGreaterThanOrEqual(1);
  },
  { timeout: 30_000 },
);
