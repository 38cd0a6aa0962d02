// The whole product as a process: files on disk → spawned collector → mock messenger over HTTP.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OUTPUT_FIELDS, PipekitRecordSchema } from "../../src/pipeline/record.ts";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { type SampleNode, writeSampleNode } from "../../src/dev/sample-node.ts";
import { freePort, spawnCollector, waitFor, writeJson } from "../support/collector-process.ts";

const KEY = "e2e-key";
let dir: string;
let node: SampleNode;
let messenger: MockMessenger;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "pipekit-e2e-"));
  node = writeSampleNode(dir, { seed: 7, linesPerContainer: 150 });
  messenger = await startMockMessenger({ apiKey: KEY });
});
afterAll(async () => {
  await messenger.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function status(port: number): Promise<Record<string, any>> {
  return (await fetch(`http://127.0.0.1:${port}/status`)).json() as Promise<Record<string, any>>;
}

test("SIGTERM with lines unsent, restart (gzip on): every record arrives exactly once, nothing from other pods", async () => {
  const port = await freePort();
  const settings = (compression: "none" | "gzip") => ({
    dataDir: join(dir, "data"),
    source: { root: node.root, partialFlushMs: 1000 },
    metadata: { provider: "static", podsFile: node.podsFile, waitForMetadataSeconds: 1 },
    buffer: { maxBytes: "8MiB", syncIntervalMs: 100 },
    messenger: { baseUri: messenger.url, flushIntervalMs: 100, retryInitialBackoffMs: 50, retryMaxBackoffMs: 200, timeoutMs: 2000, compression },
    api: { address: `127.0.0.1:${port}` },
    shutdownTimeoutMs: 1500,
  });
  const config = writeJson(join(dir, "config.json"), settings("none"));
  const env = { PIPEKIT_API_KEY: KEY };

  // First run: the messenger refuses everything, so records pile up in the ring unsent.
  messenger.setFaults({ forceStatus: 503 });
  const first = spawnCollector(["run", "--config", config], env);
  expect(await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null))?.ok === true, 15_000)).toBe(true);
  node.appendLines(40); // written while it runs
  expect(
    await waitFor(async () => (await status(port)).events.appended >= node.expectedMessages.size, 20_000),
  ).toBe(true);
  const before = await status(port);
  expect(before.ring.records).toBeGreaterThan(0); // unsent, buffered
  expect(messenger.stats().distinctEvents).toBe(0);
  first.proc.kill("SIGTERM");
  expect(await first.exited).toBe(0);
  expect(first.stderr()).toContain("shutting down");

  // While it is down, the pods keep writing.
  node.appendLines(30);

  // Second run: the messenger is healthy; the ring replays, the files resume at their checkpoints.
  // Bodies are gzipped (on a worker thread; refused unless gzip-encoded), as the compiled executable
  // must do too when this suite runs against it.
  messenger.setFaults({ requireGzip: true });
  const gzipConfig = writeJson(join(dir, "config-gzip.json"), settings("gzip"));
  const second = spawnCollector(["run", "--config", gzipConfig], env);
  const all = await waitFor(() => messenger.stats().distinctEvents >= node.expectedMessages.size, 30_000, 100);
  await Bun.sleep(500); // anything extra (a duplicate) would arrive now
  second.proc.kill("SIGTERM");
  expect(await second.exited).toBe(0);
  expect(all).toBe(true);

  const received = messenger.received();
  const counts = new Map<string, number>();
  for (const r of received) counts.set(r.message, (counts.get(r.message) ?? 0) + 1);
  const missing = [...node.expectedMessages].filter((m) => !counts.has(m));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([m]) => m);
  const unexpected = received.filter((r) => !node.expectedMessages.has(r.message));
  expect(missing).toEqual([]);
  expect(duplicated).toEqual([]);
  expect(unexpected).toEqual([]);
  expect(received.length).toBe(node.expectedMessages.size);
  const systemPod = node.pods.find((p) => p.expected === "skipped")!;
  const unlabelled = node.pods.find((p) => p.expected === "filtered")!;
  for (const r of received) {
    expect(Object.keys(r)).toEqual([...OUTPUT_FIELDS]);
    expect(PipekitRecordSchema.safeParse(r).success).toBe(true);
    expect(r.podName).not.toBe(systemPod.name);
    expect(r.podName).not.toBe(unlabelled.name);
  }
  // Identifiers come from the pod's own labels and annotation.
  const sample = received.find((r) => r.podName === node.pods[0]!.name)!;
  expect(sample.orgUUID).toBe(node.pods[0]!.labels["workflows.pipekit.io/org_uuid"]!);
  expect(sample.nodeID).toBe(node.pods[0]!.annotations["workflows.argoproj.io/node-id"]!);
}, 90_000);
