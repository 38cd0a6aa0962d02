// /health, /ready, /status and /metrics of the real collector, through every transition of the
// pipeline's reasons, driven by the mock messenger's fault injection and the pods file.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { type Env, KEY, distinctMessages, eventuallyAboveZero, expectAboveZero, setUp, startCollector, stopCollector, waitFor } from "./harness.ts";

let env: Env;
beforeAll(async () => {
  env = await setUp("status", 60);
});
afterAll(async () => {
  await env.cleanup();
});

test("endpoints' content and every /status reason transition; liveness stays 200 through the messenger outage", async () => {
  const c = await startCollector(env);
  const api = c.api;
  const liveness: Array<number | null> = [];
  const probe = setInterval(async () => liveness.push(await api.code("/health")), 100);
  try {
    // ---- healthy: everything delivered ----
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 20_000)).toBe(true);
    expect(await waitFor(async () => (await api.status()).events.inRing === 0, 5000)).toBe(true);
    const health = await api.get("/health");
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ ok: true });
    expect(health.headers.get("cache-control")).toBe("no-store");
    const ready = await api.get("/ready");
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true });
    const notFound = await api.get("/nope");
    expect(notFound.status).toBe(404);
    expect(notFound.body.endpoints).toContain("/status");

    const st = await api.get("/status");
    expect(st.status).toBe(200);
    const s = st.body;
    expect(s.pipeline).toEqual({ healthy: true, reasons: [] });
    expect(s.live).toBe(true);
    expect(s.ready).toBe(true);
    expect(s.phase).toBe("running");
    expect(Object.keys(s.loops).sort()).toEqual(["ringSync", "sender", "source"]);
    // Every watched file, with what an operator needs to see it progress.
    const containers = env.node.pods.filter((p) => p.expected !== "skipped").reduce((n, p) => n + p.containers.length, 0);
    expect(s.files.length).toBe(containers);
    for (const f of s.files) {
      for (const k of ["path", "pod", "container", "offset", "size", "lag", "state"]) expect(f).toHaveProperty(k);
      expect(f.path.startsWith(env.node.root)).toBe(true);
      expect(f.size).toBeGreaterThan(0);
    }
    expect(await waitFor(async () => (await api.status()).files.every((f: any) => f.lag === 0 && f.offset === f.size), 5000)).toBe(true);
    expect(s.ring).toMatchObject({ capacityBytes: expect.any(Number), records: 0, full: false, fullSince: null });
    expect(s.sink.url).toBe(`${env.messenger.url}/api/messenger/v1/logs/ingest/batch`);
    expect(s.sink).toMatchObject({ inFlight: 0, waiting: 0, lastError: null, failingSince: null });
    expect(Date.parse(s.sink.lastSuccessAt)).toBeGreaterThan(0);
    expect(s.events.sent).toBe(env.node.expectedMessages.size);
    expect(s.metadata).toMatchObject({ provider: "static", synced: true, failing: false });
    expect(s.metadata.podsKnown).toBe(env.node.pods.length);
    expect(s.events.accountingImbalance).toBe(0);
    // Each figure under one name: the accounting terms under events, the sender's own under sink.
    expect(Object.keys(s.events).sort()).toEqual(
      ["accountingImbalance", "appended", "bytesAppended", "cutToFitRing", "deadLettered", "filtered", "filteredTotal", "inRing", "read", "replayed", "sent", "skipped"],
    );
    expect(s.events.appended).toBe(s.events.read - s.events.filteredTotal - s.events.skipped.malformed);
    expect(s.sink).not.toHaveProperty("eventsSent");
    expect(s.sink).not.toHaveProperty("deadLetteredEvents");
    expect(s.source).not.toHaveProperty("filesHeldForMetadata");
    expect(s.source.deletedHeldBytes).toBe(0);
    expect(s.source).toMatchObject({ deletedOpenFiles: 0, deletedOpenBytes: 0 });
    expect(Array.isArray(s.recentErrors)).toBe(true);
    expect(st.text).not.toContain(KEY);
    expect(s.config.messenger.apiKey).toBe("***"); // the running config, secrets masked
    expect(s.config.health).toEqual({ sinkFailingSeconds: 1, bufferFullSeconds: 1 });

    const m = await api.metrics();
    expect((await api.get("/metrics")).headers.get("content-type")).toContain("text/plain");
    expectAboveZero(m, [
      "pipekit_collector_pipeline_healthy",
      "pipekit_collector_live",
      "pipekit_collector_metadata_available",
      "pipekit_collector_metadata_pods",
      "pipekit_collector_sink_last_success_timestamp_seconds",
      "pipekit_collector_files_skipped_total",
    ]);

    // ---- messenger failing (503) longer than sinkFailingSeconds ----
    env.messenger.setFaults({ forceStatus: 503 });
    env.node.appendLines(3);
    expect(await waitFor(async () => (await api.status()).pipeline.reasons.some((r: string) => r.startsWith("messenger failing for")), 10_000)).toBe(true);
    let failing = await api.status();
    expect(failing.pipeline.healthy).toBe(false);
    expect(failing.sink.lastError).toContain("HTTP 503");
    expect(failing.sink.failingSince).not.toBeNull();
    expect(failing.events.inRing).toBeGreaterThan(0);
    const during = await api.metrics();
    expect(during.sum("pipekit_collector_pipeline_healthy")).toBe(0);
    expectAboveZero(during, ["pipekit_collector_events_in_ring", "pipekit_collector_sink_retries_total"]);
    expect(during.sum("pipekit_collector_sink_requests_total", { status: "503" })).toBeGreaterThan(0);
    expect(await eventuallyAboveZero(api, "pipekit_collector_sink_waiting_batches")).toBe(true);

    // ---- key rejected ----
    env.messenger.setFaults({ rejectKeys: 401 });
    expect(await waitFor(async () => (await api.status()).pipeline.reasons.includes("messenger rejected the API key"), 10_000)).toBe(true);
    expect(await waitFor(async () => /^HTTP 401\b/.test((await api.status()).sink.lastError), 10_000)).toBe(true);
    const rejected = (await api.status()).sink;
    expect(Date.parse(rejected.lastErrorAt)).toBeGreaterThanOrEqual(Date.parse(rejected.failingSince));
    expect(Date.parse(rejected.lastErrorAt)).toBeLessThanOrEqual(Date.now());
    // ---- URL rejected ----
    env.messenger.setFaults({ forceStatus: 404 });
    expect(await waitFor(async () => (await api.status()).pipeline.reasons.includes("messenger URL not found"), 10_000)).toBe(true);
    failing = await api.get("/status");
    expect(failing.text).not.toContain(KEY);

    // ---- recovered: every reason clears, nothing lost, nothing twice ----
    env.messenger.setFaults({});
    expect(await waitFor(async () => (await api.status()).pipeline.healthy === true, 10_000)).toBe(true);
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 10_000)).toBe(true);
    // The old 401 is not shown as the messenger's state once it accepts again; the counters keep the history.
    const recovered = (await api.status()).sink;
    expect(recovered).toMatchObject({ lastError: null, lastErrorAt: null, failingSince: null, reasons: [] });
    expect(recovered.requestsByStatus["401"]).toBeGreaterThan(0);
    const pretty = await api.get("/status?pretty");
    expect(pretty.text).toStartWith('{\n  "version": ');
    expect(pretty.body.sink.lastError).toBeNull();

    // ---- metadata unavailable: the pods file becomes unreadable, then valid again ----
    const pods = readFileSync(env.node.podsFile, "utf8");
    writeFileSync(env.node.podsFile, "{ not json");
    expect(await waitFor(async () => (await api.status()).pipeline.reasons.some((r: string) => r.startsWith("metadata unavailable: static provider failing")), 10_000)).toBe(true);
    expect((await api.metrics()).sum("pipekit_collector_metadata_available")).toBe(0);
    writeFileSync(env.node.podsFile, pods);
    expect(await waitFor(async () => (await api.status()).pipeline.healthy === true, 10_000)).toBe(true);
    expect((await api.status()).pipeline.reasons).toEqual([]);
  } finally {
    clearInterval(probe);
    expect(await stopCollector(c)).toBe(0);
  }
  // Liveness never failed while running (the last probes may meet the shutdown or a closed port).
  const running = liveness.slice(0, -5);
  expect(running.length).toBeGreaterThan(20);
  expect(running.every((code) => code === 200)).toBe(true);
  const counts = distinctMessages(env.messenger);
  expect([...env.node.expectedMessages].filter((m) => !counts.has(m))).toEqual([]);
  expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
  // Transitions are logged once each, and the key never is.
  const stderr = c.stderr();
  expect(stderr).toContain('"msg":"pipeline unhealthy"');
  expect(stderr).toContain('"msg":"pipeline healthy again"');
  // Durations inside reasons do not make new log lines: a handful of transitions, not one per tick.
  const transitions = stderr.split("\n").filter((l) => l.includes('"msg":"pipeline unhealthy'));
  expect(transitions.length).toBeGreaterThanOrEqual(2);
  expect(transitions.length).toBeLessThanOrEqual(8);
  expect(stderr).not.toContain(KEY);
}, 90_000);
