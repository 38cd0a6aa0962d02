// The source's claims about the process (issue 4): the real collector, spawned, against the mock
// messenger — continuous writing with kubelet rotation, SIGTERM and SIGKILL restarts, downtime
// across a rotation that gzipped unread data.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { argoPod, podListJson, prng, type SamplePod } from "../../src/dev/sample-node.ts";
import { type CollectorProcess, freePort, spawnCollector, waitFor, writeJson } from "../support/collector-process.ts";
import { cleanupDirs, rotationStamp, tempDir } from "./harness.ts";

const KEY = "source-process-key";
let messenger: MockMessenger;

beforeAll(async () => {
  messenger = await startMockMessenger({ apiKey: KEY });
});
afterAll(async () => {
  await messenger.stop();
  cleanupDirs();
});

interface Node {
  dir: string;
  root: string;
  pods: SamplePod[];
  config: string;
  port: number;
}

async function makeNode(podCount: number, over: { buffer?: Record<string, unknown>; source?: Record<string, unknown> } = {}): Promise<Node> {
  const dir = tempDir("source-proc-");
  const root = join(dir, "pods");
  const rand = prng(podCount * 31);
  const pods = Array.from({ length: podCount }, (_, i) => argoPod(rand, "wf-src", `step${i}`, ["main"]));
  for (const p of pods) mkdirSync(join(root, `${p.namespace}_${p.name}_${p.uid}`, "main"), { recursive: true });
  writeFileSync(join(dir, "podlist.json"), podListJson(pods));
  const port = await freePort();
  const config = writeJson(join(dir, "config.json"), {
    dataDir: join(dir, "data"),
    source: { root, partialFlushMs: 2000, scanIntervalMs: 2000, ...over.source },
    metadata: { provider: "static", podsFile: join(dir, "podlist.json"), waitForMetadataSeconds: 5 },
    buffer: { maxBytes: "64MiB", syncIntervalMs: 100, ...over.buffer },
    messenger: { baseUri: messenger.url, flushIntervalMs: 100, retryInitialBackoffMs: 50, retryMaxBackoffMs: 200, timeoutMs: 5000 },
    api: { address: `127.0.0.1:${port}` },
    shutdownTimeoutMs: 3000,
  });
  return { dir, root, pods, config, port };
}

function start(node: Node): CollectorProcess {
  return spawnCollector(["run", "--config", node.config], { PIPEKIT_API_KEY: KEY });
}

/** The running collector's /status; null until it answers with its stages (not while it starts). */
async function status(node: Node): Promise<Record<string, any> | null> {
  try {
    const st = (await (await fetch(`http://127.0.0.1:${node.port}/status`)).json()) as Record<string, any>;
    return st.phase === "running" ? st : null;
  } catch {
    return null;
  }
}

/**
 * A container runtime for one pod: writes CRI lines through its own descriptor; every 50th line is
 * split into P/F fragments; rotates the kubelet way every `rotateBytes` (rename, a late write to the
 * renamed file, new file, gzip of older rotated files, deletion beyond 4).
 */
class PodWriter {
  private fd: number;
  private size = 0;
  next = 0;
  readonly dir: string;
  readonly messages = new Set<string>();
  rotations = 0;
  constructor(
    root: string,
    readonly pod: SamplePod,
    readonly rotateBytes: number,
  ) {
    this.dir = join(root, `${pod.namespace}_${pod.name}_${pod.uid}`, "main");
    this.fd = openSync(join(this.dir, "0.log"), "a");
  }
  private line(): string {
    const i = this.next++;
    const msg = `${this.pod.name} line ${i} ${"z".repeat(i % 40)}`;
    this.messages.add(msg);
    const t = `2026-11-25T10:00:00.${String(i).padStart(9, "0")}Z`;
    if (i % 50 === 49) {
      const cut = msg.length >> 1;
      return `${t} stdout P ${msg.slice(0, cut)}\n${t} stdout F ${msg.slice(cut)}\n`;
    }
    return `${t} stdout F ${msg}\n`;
  }
  /** Writes `count` lines; a rotation may fall between two of them (even inside a P/F pair: never). */
  write(count: number): void {
    let text = "";
    for (let i = 0; i < count; i++) {
      text += this.line();
      if (this.size + text.length >= this.rotateBytes) {
        this.flush(text);
        text = "";
        this.rotate();
      }
    }
    this.flush(text);
  }
  private flush(text: string): void {
    if (!text) return;
    writeSync(this.fd, text);
    this.size += text.length;
  }
  rotate(opts: { gzipAll?: boolean } = {}): void {
    const live = join(this.dir, "0.log");
    renameSync(live, `${live}.${rotationStamp()}`);
    writeSync(this.fd, this.line()); // lands in the renamed file, before the runtime reopens
    closeSync(this.fd);
    this.fd = openSync(live, "a");
    this.size = 0;
    this.rotations++;
    const rotated = () => readdirSync(this.dir).filter((n) => n.startsWith("0.log.")).sort();
    const plain = rotated().filter((n) => !n.endsWith(".gz"));
    for (const n of opts.gzipAll ? plain : plain.slice(0, -1)) {
      writeFileSync(join(this.dir, `${n}.gz`), gzipSync(readFileSync(join(this.dir, n))));
      unlinkSync(join(this.dir, n));
    }
    const all = rotated();
    for (const n of all.slice(0, Math.max(0, all.length - 4))) unlinkSync(join(this.dir, n));
  }
  close(): void {
    closeSync(this.fd);
  }
}

function check(writers: PodWriter[]): { missing: number; unexpected: number; duplicated: number; received: number } {
  const expected = new Set<string>();
  for (const w of writers) for (const m of w.messages) expected.add(m);
  const counts = new Map<string, number>();
  for (const r of messenger.received()) counts.set(r.message, (counts.get(r.message) ?? 0) + 1);
  let missing = 0;
  for (const m of expected) if (!counts.has(m)) missing++;
  let unexpected = 0;
  let duplicated = 0;
  for (const [m, n] of counts) {
    if (!expected.has(m)) unexpected++;
    if (n > 1) duplicated++;
  }
  return { missing, unexpected, duplicated, received: messenger.received().length };
}

async function stopCollector(c: CollectorProcess): Promise<void> {
  c.proc.kill("SIGTERM");
  expect(await c.exited).toBe(0);
}

test("200k lines with kubelet rotation every 256 KiB under continuous writing: every line delivered exactly once", async () => {
  messenger.reset();
  messenger.setFaults({});
  const node = await makeNode(4);
  const writers = node.pods.map((p) => new PodWriter(node.root, p, 256 * 1024));
  const c = start(node);
  expect(await waitFor(async () => (await status(node))?.ready === true, 15_000)).toBe(true);
  const total = 200_000;
  // ≈ 19 MB/s across the pods: each file rotates every ~50 ms and is deleted ~200 ms later.
  for (let written = 0; written < total; written += 2000) {
    for (const w of writers) w.write(500);
    await Bun.sleep(10);
  }
  for (const w of writers) w.close();
  const want = writers.reduce((s, w) => s + w.messages.size, 0); // plus one late write per rotation
  expect(want).toBeGreaterThanOrEqual(total);
  const all = await waitFor(() => messenger.stats().distinctEvents >= want, 30_000, 200);
  await Bun.sleep(500);
  const st = await status(node);
  await stopCollector(c);
  const result = check(writers);
  if (!all || result.duplicated || result.missing) console.log(result, st?.source, c.stderr().slice(-3000));
  expect(all).toBe(true);
  expect(result).toEqual({ missing: 0, unexpected: 0, duplicated: 0, received: want });
  expect(writers.reduce((s, w) => s + w.rotations, 0)).toBeGreaterThan(40);
  expect(st!.source.filesRotated).toBeGreaterThan(40);
  const { filesRotated, filesMissedRotated, filesAdded, bytesRead } = st!.source;
  console.log(`200k rotation: ${want} lines, files rotated ${filesRotated}, added ${filesAdded}, missed-then-read ${filesMissedRotated}, ${bytesRead} bytes`);
}, 150_000);

test("SIGTERM and restart mid-stream: no duplicates, no loss", async () => {
  messenger.reset();
  messenger.setFaults({});
  messenger.setFaults({ latencyMs: 400 }); // slow answers: batches are in flight at SIGTERM
  const node = await makeNode(3);
  const writers = node.pods.map((p) => new PodWriter(node.root, p, 200 * 1024));
  let c = start(node);
  expect(await waitFor(async () => (await status(node))?.ready === true, 15_000)).toBe(true);
  for (let i = 0; i < 10; i++) {
    for (const w of writers) w.write(300);
    await Bun.sleep(20);
  }
  const written = writers.reduce((s, w) => s + w.messages.size, 0);
  expect(messenger.stats().distinctEvents).toBeLessThan(written); // mid-stream
  await stopCollector(c); // lines keep coming while it is down
  messenger.setFaults({});
  for (const w of writers) w.write(2000);
  c = start(node);
  for (let i = 0; i < 10; i++) {
    for (const w of writers) w.write(300);
    await Bun.sleep(20);
  }
  const want = writers.reduce((s, w) => s + w.messages.size, 0);
  const all = await waitFor(() => messenger.stats().distinctEvents >= want, 30_000, 100);
  await Bun.sleep(500);
  await stopCollector(c);
  for (const w of writers) w.close();
  expect(all).toBe(true);
  expect(check(writers)).toEqual({ missing: 0, unexpected: 0, duplicated: 0, received: want });
}, 90_000);

test("SIGKILL while /status shows lag > 0, downtime across a rotation that gzipped the unread data, restart: no loss", async () => {
  messenger.reset();
  // The messenger refuses everything and the ring is small: the ring fills, reading pauses, lag grows.
  messenger.setFaults({ forceStatus: 503 });
  // Lines short enough for the small ring to hold the largest record (README "Command line").
  const node = await makeNode(2, { buffer: { maxBytes: "256KiB" }, source: { maxLineBytes: "32KiB" } });
  const writers = node.pods.map((p) => new PodWriter(node.root, p, 10 << 20));
  for (const w of writers) w.write(20_000);
  const c = start(node);
  const lagging = await waitFor(async () => {
    const st = await status(node);
    return st !== null && st.ring.full === true && st.files.some((f: { lag: number }) => f.lag > 0);
  }, 20_000, 100);
  expect(lagging).toBe(true);
  c.proc.kill("SIGKILL");
  await c.exited;
  // Downtime: the kubelet rotates and compresses the file whose rest was never read.
  for (const w of writers) {
    w.write(100);
    w.rotate({ gzipAll: true });
    w.write(500);
  }
  const plainRotated = readdirSync(writers[0]!.dir).filter((n) => n.startsWith("0.log.") && !n.endsWith(".gz"));
  expect(plainRotated).toEqual([]); // the unread data exists only gzipped now
  messenger.setFaults({});
  const second = start(node);
  const want = writers.reduce((s, w) => s + w.messages.size, 0);
  const all = await waitFor(() => messenger.stats().distinctEvents >= want, 60_000, 200);
  const st = await status(node);
  await stopCollector(second);
  for (const w of writers) w.close();
  const result = check(writers);
  expect(all).toBe(true);
  expect(result.missing).toBe(0); // at least once: a SIGKILL may replay what was not yet synced
  expect(result.unexpected).toBe(0);
  expect(st!.source.filesRecovered).toBe(2);
}, 120_000);
