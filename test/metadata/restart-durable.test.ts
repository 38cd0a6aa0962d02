// Issue 18's restart scenario, with the real collector process and the fake API server: 8 Argo
// pods with 4,000 lines each; the collector stops while most lines are unread (the messenger is
// down and the ring is small, so the source is stuck behind a full ring); 4 of the pods are
// deleted from the API server; the collector starts again. Every line of every pod must arrive,
// each with its own pod's Pipekit identifiers — the deleted pods' from the pod metadata snapshot.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { POD_SNAPSHOT_FILE } from "../../src/metadata/pod-snapshot.ts";
import { type CollectorProcess, freePort, spawnCollector, waitFor, writeJson } from "../support/collector-process.ts";
import { ANNOTATION_NODE_ID, type K8sPod, makeArgoPod } from "../support/podlist.ts";
import { criLines, podLogFile } from "./helpers.ts";
import { Harness, NODE } from "./k8s-harness.ts";

const KEY = "restart-durable-key";
const PODS = 8;
const LINES = 4000;
const h = new Harness();
let messenger: MockMessenger | null = null;
beforeAll(() => h.init());
afterAll(async () => {
  await messenger?.stop();
  await h.cleanup();
  h.dispose();
});

function writeLog(root: string, pod: K8sPod, tag: string): void {
  writeFileSync(podLogFile(root, pod, "main"), criLines(tag, 0, LINES));
}

async function status(port: number): Promise<Record<string, any> | null> {
  try {
    const st = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as Record<string, any>;
    return st.phase === "running" ? st : null;
  } catch {
    return null;
  }
}

async function stop(c: CollectorProcess): Promise<void> {
  c.proc.kill("SIGTERM");
  await c.exited;
}

test(
  "stop with most lines unread, delete 4 pods, start again: every line of the deleted pods arrives with its Pipekit identifiers",
  async () => {
    const api = await h.apiServer(["collector-token"]);
    const dir = h.tmp();
    const root = join(dir, "pods");
    const dataDir = join(dir, "data");
    mkdirSync(root);
    writeFileSync(join(dir, "token"), "collector-token");
    const pods = Array.from({ length: PODS }, (_, i) =>
      api.createPod(makeArgoPod({ workflow: "wf-restart", step: `s${i}`, nodeName: NODE, runUUID: `run-${i}`, pipeUUID: `pipe-${i}` })),
    );
    pods.forEach((p, i) => writeLog(root, p, `pod${i}`));

    const messengerPort = await freePort(); // nothing listens there during the first run
    const apiPort = await freePort();
    const config = writeJson(join(dir, "config.json"), {
      dataDir,
      // A 64 KiB ring holds the record of a line of up to 47 KiB; 32 KiB here (lines here are short).
      source: { root, partialFlushMs: 500, scanIntervalMs: 1000, maxLineBytes: "32KiB" },
      metadata: {
        provider: "apiserver",
        apiserverUrl: api.url,
        caFile: h.pki.ca.certFile,
        tokenFile: join(dir, "token"),
        // Short: were the deleted pods unknown after the restart, their lines would be filtered within seconds.
        waitForMetadataSeconds: 3,
        deletionGraceSeconds: 0,
        reconnectWindowSeconds: 1,
      },
      buffer: { maxBytes: "64KiB", syncIntervalMs: 50 },
      messenger: { baseUri: `http://127.0.0.1:${messengerPort}`, flushIntervalMs: 50, retryInitialBackoffMs: 50, retryMaxBackoffMs: 200, timeoutMs: 2000 },
      api: { address: `127.0.0.1:${apiPort}` },
      node: { name: NODE },
      shutdownTimeoutMs: 1000,
    });

    // Run 1: the ring fills and the source waits behind it; the snapshot names every pod.
    const first = spawnCollector(["run", "--config", config], { PIPEKIT_API_KEY: KEY });
    h.closers.push(() => void first.proc.kill("SIGKILL"));
    const snapshotFile = join(dataDir, POD_SNAPSHOT_FILE);
    const stuck = await waitFor(async () => {
      const st = await status(apiPort);
      if (!st?.ring?.full || !existsSync(snapshotFile)) return false;
      return JSON.parse(readFileSync(snapshotFile, "utf8")).pods.length === PODS;
    }, 20_000);
    if (!stuck) throw new Error(`the first run did not fill its ring and snapshot 8 pods: ${JSON.stringify((await status(apiPort))?.ring)} ${existsSync(snapshotFile) ? readFileSync(snapshotFile, "utf8").slice(0, 300) : "no snapshot"}\n${first.stderr().slice(-3000)}`);
    const read1 = (await status(apiPort))!.events.read as number;
    await stop(first);
    expect(read1).toBeLessThan((PODS * LINES) / 4); // most lines unread

    // Meanwhile: 4 pods finish and are garbage-collected; their files stay on disk.
    const deleted = pods.slice(0, 4);
    for (const p of deleted) api.deletePod(p.metadata.uid);

    // Run 2, with the messenger up.
    messenger = await startMockMessenger({ apiKey: KEY, port: messengerPort });
    const second = spawnCollector(["run", "--config", config], { PIPEKIT_API_KEY: KEY });
    h.closers.push(() => void second.proc.kill("SIGKILL"));
    const all = await waitFor(() => messenger!.stats().distinctEvents >= PODS * LINES, 60_000, 200);
    const st = await status(apiPort);
    await stop(second);
    if (!all) throw new Error(`${messenger.stats().distinctEvents} of ${PODS * LINES} lines arrived:\n${second.stderr().slice(-3000)}`);

    const byTag = new Map<string, Set<string>>();
    const ids = new Map<string, Set<string>>();
    for (const r of messenger.received()) {
      const tag = r.message.split(" ")[0]!;
      if (!byTag.has(tag)) byTag.set(tag, new Set());
      byTag.get(tag)!.add(r.message);
      if (!ids.has(tag)) ids.set(tag, new Set());
      ids.get(tag)!.add(JSON.stringify([r.orgUUID, r.runUUID, r.pipeUUID, r.nodeID, r.podName]));
    }
    pods.forEach((p, i) => {
      const tag = `pod${i}`;
      expect(byTag.get(tag)?.size).toBe(LINES);
      const labels = p.metadata.labels!;
      const want = JSON.stringify([labels["workflows.pipekit.io/org_uuid"], `run-${i}`, `pipe-${i}`, p.metadata.annotations![ANNOTATION_NODE_ID], p.metadata.name]);
      expect([...ids.get(tag)!]).toEqual([want]);
    });
    expect(st?.events.filtered["no-metadata"]).toBe(0);
    expect(st?.metadata.tombstones).toBeGreaterThanOrEqual(0);
    expect(api.getPods().length).toBe(PODS - deleted.length);
  },
  { timeout: 120_000 },
);
