// Issue 17, deliver 5: duplicates per crash bounded by one sync interval. The real collector,
// SIGKILLed while a request hangs (and 20 % of requests get a 503), so that acknowledged batches
// pile up behind an older unacknowledged one. The ring's headers list the acknowledged ranges
// beyond the read position (docs/ring-format.md), so a restart re-sends only:
//   - the records appended since the last completed sync: the source's checkpoints follow that
//     sync, so it reads their lines again, while the ring (the page cache survives a SIGKILL)
//     still holds them;
//   - the records acknowledged since the last header write;
//   - the requests on the wire whose answers the kill lost: at most concurrency × batchMaxEvents.
// Asserted per crash, as the chaos run does (bench/lib/chaos-report.ts; the rates measured from
// /status over the 2.5 s before the kill):
//   duplicates ≤ (max(written/s, appended/s) + acknowledged/s) × syncIntervalMs / 1000 + concurrency × batchMaxEvents
// — one interval of each of the first two terms. Without the ranges, a hanging request held
// back everything acknowledged after it for up to the request timeout (3 s here) and all of it was
// sent again: several times the bound.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crashBounds } from "../../bench/lib/chaos-report.ts";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { type CollectorProcess, freePort, spawnCollector, waitFor, writeJson } from "../support/collector-process.ts";
import { DeliveryTracker } from "../support/delivery-tracker.ts";
import { RotatingWriter } from "../support/rotating-writer.ts";

const KEY = "dup-key";
const SYNC_MS = 250;
const CONCURRENCY = 4;
const BATCH = 100;
const RATE = 2500; // events a second
const KILLS = 4;

const dir = mkdtempSync(join(tmpdir(), "pipekit-crashdup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Sample {
  t: number;
  appended: number;
  sent: number;
  datasyncMs: number;
  /** ring.unsyncedMs: how old the oldest change not yet durable may be. */
  unsyncedMs: number;
}

test(`SIGKILL ×${KILLS} while a request hangs: duplicates per crash within one sync interval of traffic plus what was on the wire`, async () => {
  const writer = new RotatingWriter({ root: join(dir, "pods"), podsFile: join(dir, "pods.json"), seed: 1717, pods: 2, rotateBytes: 8 << 20, partialEvery: 0 });
  const tracker = new DeliveryTracker(writer);
  const messenger: MockMessenger = await startMockMessenger({ apiKey: KEY, faults: { failRate: 0.2, failStatus: 503, hangRate: 0.04 } });
  let taken = 0;
  let epoch = 0;
  const drain = () => {
    const recs = messenger.received();
    tracker.add(recs.slice(taken), epoch);
    taken = recs.length;
  };
  const port = await freePort();
  const config = writeJson(join(dir, "config.json"), {
    dataDir: join(dir, "data"),
    source: { root: join(dir, "pods"), partialFlushMs: 2000, scanIntervalMs: 1000 },
    metadata: { provider: "static", podsFile: join(dir, "pods.json"), waitForMetadataSeconds: 5 },
    buffer: { maxBytes: "32MiB", syncIntervalMs: SYNC_MS },
    messenger: { baseUri: messenger.url, concurrency: CONCURRENCY, batchMaxEvents: BATCH, flushIntervalMs: 50, retryInitialBackoffMs: 50, retryMaxBackoffMs: 500, timeoutMs: 3000 },
    api: { address: `127.0.0.1:${port}` },
    shutdownTimeoutMs: 10_000,
  });
  const start = () => spawnCollector(["run", "--config", config], { PIPEKIT_API_KEY: KEY });
  const status = async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(2000) });
      return r.ok ? ((await r.json()) as Record<string, any>) : null;
    } catch {
      return null;
    }
  };
  const ready = () => waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null))?.ok === true, 30_000);

  let proc: CollectorProcess = start();
  expect(await ready()).toBe(true);
  void writer.run(RATE, RATE * 600); // written on until the kills are done (stop() below)
  const crashes: Array<{ duplicates: number; bound: number; appendRate: number; sendRate: number; hungMs: number }> = [];
  for (let k = 1; k <= KILLS; k++) {
    // Let it run, sampling the rates; then wait for a request that has hung for a while, so that
    // acknowledged batches pile up behind it.
    let samples: Sample[] = [];
    const sample = async () => {
      const st = await status();
      if (st?.events) samples.push({ t: performance.now(), appended: st.events.appended, sent: st.events.sent, datasyncMs: st.ring?.lastSyncMs ?? 0, unsyncedMs: st.ring?.unsyncedMs ?? 0 });
      samples = samples.filter((s) => performance.now() - s.t <= 2500);
    };
    const until = performance.now() + 2500 + Math.random() * 1500;
    while (performance.now() < until) {
      await sample();
      await Bun.sleep(100);
    }
    let hungSince: number | null = null;
    const giveUp = performance.now() + 8000;
    while (performance.now() < giveUp) {
      await sample();
      if (messenger.stats().hanging > 0) hungSince ??= performance.now();
      else hungSince = null;
      if (hungSince !== null && performance.now() - hungSince >= 1500) break;
      await Bun.sleep(50);
    }
    const hungMs = hungSince === null ? 0 : Math.round(performance.now() - hungSince);
    const rate = (f: "appended" | "sent") => {
      const a = samples[0]!;
      const b = samples[samples.length - 1]!;
      return b.t > a.t ? ((b[f] - a[f]) * 1000) / (b.t - a.t) : 0;
    };
    const appendRate = rate("appended");
    const sendRate = rate("sent");
    const last = samples[samples.length - 1]!;
    const observedWindowMs = last.unsyncedMs + (performance.now() - last.t); // a sync timer late on a loaded machine
    proc.proc.kill("SIGKILL");
    await proc.exited;
    drain();
    epoch++;
    const bound = crashBounds({ writeRate: RATE, appendRate, sendRate, syncIntervalMs: SYNC_MS, maxDatasyncMs: Math.max(0, ...samples.map((s) => s.datasyncMs)), observedWindowMs, concurrency: CONCURRENCY, batchMaxEvents: BATCH }).syncBound;
    crashes.push({ duplicates: 0, bound, appendRate: Math.round(appendRate), sendRate: Math.round(sendRate), hungMs });
    proc = start();
    expect(await ready()).toBe(true);
  }
  writer.stop();
  const events = writer.stats.events;
  expect(
    await waitFor(() => {
      drain();
      return tracker.distinct() >= events;
    }, 60_000, 250),
  ).toBe(true);
  await Bun.sleep(2 * SYNC_MS + 500); // a late duplicate would arrive now
  proc.proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
  drain();
  await messenger.stop();
  writer.close();

  crashes.forEach((c, i) => (c.duplicates = tracker.duplicatesByEpoch[i + 1] ?? 0));
  console.log(
    `crash duplicates (sync ${SYNC_MS} ms, ${CONCURRENCY} × ${BATCH} on the wire):\n` +
      crashes.map((c, i) => `  #${i + 1}: ${c.duplicates} duplicates, bound ${c.bound} (${c.appendRate} appended/s, ${c.sendRate} sent/s, a request hung ${c.hungMs} ms at the kill)`).join("\n"),
  );
  expect(tracker.missing().count).toBe(0);
  expect(tracker.corrupt).toBe(0);
  expect(tracker.duplicatesByEpoch[0] ?? 0).toBe(0); // none before the first crash
  expect(crashes.filter((c) => c.hungMs >= 1500).length).toBeGreaterThanOrEqual(KILLS - 1); // the kills did land behind a hanging request
  for (const c of crashes) expect(c.duplicates).toBeLessThanOrEqual(c.bound);
}, 150_000);
