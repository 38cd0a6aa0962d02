// The collector's lifecycle as a process: /ready while starting, SIGTERM in the middle of
// delivery (probes fail during the drain, exit 0), restarts that lose nothing and send nothing
// twice, the per-process accounting identity read back from /metrics, and a port in use.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  Api,
  type Env,
  distinctMessages,
  eventuallyAboveZero,
  expectAboveZero,
  freePort,
  type PromText,
  setUp,
  spawnCollector,
  startCollector,
  testConfig,
  waitFor,
  writeJson,
} from "./harness.ts";

let env: Env;
beforeAll(async () => {
  env = await setUp("lifecycle", 150);
});
afterAll(async () => {
  await env.cleanup();
});

/** SPEC §1, per process lifetime, from the metrics alone. */
function accounting(m: PromText) {
  const p = (n: string) => m.sum(`pipekit_collector_${n}`);
  const read = p("events_read_total");
  const rhs = p("events_filtered_total") + p("events_skipped_total") + p("events_in_ring") + p("events_sent_total") + p("events_dead_lettered_total") - p("events_replayed_total");
  return { read, rhs };
}

test("/ready is 503 while starting (metadata not synced yet) and /health 200; then ready", async () => {
  // A kubelet that takes 1.5 s to answer its first /pods: the collector waits for it before the first scan.
  const pods = readFileSync(env.node.podsFile, "utf8");
  const kubelet = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async () => {
      await Bun.sleep(1500);
      return new Response(pods, { headers: { "content-type": "application/json" } });
    },
  });
  const port = await freePort();
  const config = writeJson(
    join(env.dir, "slow-start.json"),
    testConfig(env, port, { dataDir: join(env.dir, "data-slow"), metadata: { provider: "kubelet", kubeletUrl: `http://127.0.0.1:${kubelet.port}`, podsFile: null } }),
  );
  const proc = spawnCollector(["run", "--config", config], { PIPEKIT_API_KEY: "k" });
  const api = new Api(port);
  try {
    expect(await waitFor(async () => (await api.code("/health")) === 200, 10_000)).toBe(true);
    const ready = await api.get("/ready");
    expect(ready.status).toBe(503);
    // The body says what start-up still waits for; the ring is open by now, the kubelet is slow.
    expect(ready.body).toEqual({ ready: false, waiting: ["first metadata sync (metadata.provider kubelet)", "first scan"] });
    expect(await api.get("/health")).toMatchObject({ status: 200, body: { ok: true } });
    const starting = await api.status();
    expect(starting.phase).toBe("starting");
    expect(starting.waiting).toEqual(ready.body.waiting);
    // Metrics answer while starting (the process's at least, and what is running).
    const early = await api.metrics();
    expect(early.sum("pipekit_collector_process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(early.samples.filter((s) => s.name === "pipekit_collector_build_info").map((s) => s.value)).toEqual([1]);
    expect(await waitFor(async () => (await api.code("/ready")) === 200, 10_000)).toBe(true);
    expect((await api.status()).metadata.provider).toBe("kubelet");
  } finally {
    proc.proc.kill("SIGINT"); // as SIGTERM
    expect(await proc.exited).toBe(0);
    expect(proc.stderr()).toContain('"signal":"SIGINT"');
  }
  // A SIGTERM while starting: it finishes starting, then stops cleanly (exit 0, not killed).
  const again = spawnCollector(["run", "--config", config], { PIPEKIT_API_KEY: "k" });
  try {
    expect(await waitFor(async () => (await api.code("/ready")) === 503, 10_000, 20)).toBe(true);
    again.proc.kill("SIGTERM");
    expect(await again.exited).toBe(0);
    expect(again.stderr()).toContain("signal received while starting; stopping once started");
    expect(again.stderr()).toContain('"msg":"stopped"');
  } finally {
    await kubelet.stop(true);
  }
}, 30_000);

test("SIGTERM mid-delivery, a run that cannot deliver, a restart: nothing missing, no duplicates, accounting balanced", async () => {
  env.messenger.reset();
  // ---- run 1: slow messenger; SIGTERM while batches are in flight ----
  env.messenger.setFaults({ latencyMs: 150 });
  const first = await startCollector(env, { messenger: { concurrency: 2, batchMaxEvents: 50 } });
  expect(await waitFor(() => env.messenger.stats().distinctEvents > 0, 10_000, 10)).toBe(true);
  // In flight right now (the messenger holds each request 150 ms).
  expect(await eventuallyAboveZero(first.api, "pipekit_collector_sink_in_flight_requests")).toBe(true);
  expect(env.messenger.stats().distinctEvents).toBeLessThan(env.node.expectedMessages.size);
  first.proc.kill("SIGTERM");
  // While it drains, both probes say so.
  const during = { health: [] as Array<number | null>, ready: [] as Array<number | null>, bodies: new Set<string>() };
  while (!(await Promise.race([first.exited.then(() => true), Bun.sleep(20).then(() => false)]))) {
    for (const path of ["/health", "/ready"] as const) {
      const r = await first.api.get(path).catch(() => null);
      (path === "/health" ? during.health : during.ready).push(r?.status ?? null);
      if (r?.status === 503) during.bodies.add(r.text);
    }
  }
  expect(await first.exited).toBe(0);
  expect(during.health).toContain(503);
  expect(during.ready).toContain(503);
  // Each 503 names its cause.
  expect([...during.bodies].sort()).toEqual(['{"ok":false,"reasons":["shutting down"]}', '{"ready":false,"waiting":["shutting down"]}']);
  // Once failing, never back to 200 (the first probes may precede the signal's handling).
  const firstFail = during.health.indexOf(503);
  expect(during.health.slice(firstFail).every((c) => c === 503 || c === null)).toBe(true);
  expect(first.stderr()).toContain('"msg":"stopped"');

  // ---- run 2: the messenger refuses everything; records wait in the ring; SIGTERM at the deadline ----
  env.node.appendLines(20);
  env.messenger.setFaults({ forceStatus: 503 });
  const second = await startCollector(env, { shutdownTimeoutMs: 500 });
  expect(await waitFor(async () => (await second.api.status()).events.inRing > 0, 10_000)).toBe(true);
  expect(await waitFor(async () => (await second.api.status()).files.every((f: any) => f.readOffset === f.size), 10_000)).toBe(true);
  const m2 = await second.api.metrics();
  const a2 = accounting(m2);
  expect(a2.read).toBeGreaterThan(0);
  expect(a2.read).toBe(a2.rhs);
  second.proc.kill("SIGTERM");
  expect(await second.exited).toBe(0);
  expect(second.stderr()).toContain("drain deadline reached");

  // ---- run 3: healthy; the ring replays, the files resume at their checkpoints ----
  env.node.appendLines(20);
  env.messenger.setFaults({});
  const third = await startCollector(env);
  expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 30_000, 100)).toBe(true);
  expect(await waitFor(async () => (await third.api.status()).events.inRing === 0, 10_000)).toBe(true);
  await Bun.sleep(300); // a duplicate would arrive now
  const m3 = await third.api.metrics();
  expectAboveZero(m3, ["pipekit_collector_events_replayed_total", "pipekit_collector_end_to_end_latency_seconds", "pipekit_collector_sink_request_duration_seconds"]);
  const a3 = accounting(m3);
  expect(a3.read).toBe(a3.rhs);
  third.proc.kill("SIGTERM");
  expect(await third.exited).toBe(0);

  const counts = distinctMessages(env.messenger);
  expect([...env.node.expectedMessages].filter((m) => !counts.has(m))).toEqual([]);
  expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
  expect(env.messenger.received().length).toBe(env.node.expectedMessages.size);
}, 90_000);

test("a port in use: exit 2 with a clear message, before the data dir is created or anything read", async () => {
  const squatter = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("not the collector") });
  const dataDir = join(env.dir, "data-port");
  const config = writeJson(join(env.dir, "port.json"), testConfig(env, squatter.port as number, { dataDir }));
  const proc = spawnCollector(["run", "--config", config], { PIPEKIT_API_KEY: "k" });
  try {
    expect(await proc.exited).toBe(2);
    const err = proc.stderr();
    expect(err).toContain(`cannot listen on api.address 127.0.0.1:${squatter.port}`);
    expect(err).toContain("in use");
    expect(existsSync(join(dataDir, "ring.dat"))).toBe(false);
    expect(existsSync(join(dataDir, "checkpoints.json"))).toBe(false);
    expect(existsSync(dataDir)).toBe(false); // not even a lock file
  } finally {
    await squatter.stop(true);
  }
}, 20_000);
