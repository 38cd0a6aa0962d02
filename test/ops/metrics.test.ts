// /metrics after a demo-sized run with a bit of everything (a malformed line, an over-long line,
// a record the messenger refuses, a rotation): parsed back, every documented metric present with
// its help, bounded labels, values driven above zero, and the accounting identity of SPEC §1.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { type Env, distinctMessages, expectAboveZero, setUp, startCollector, stopCollector, waitFor } from "./harness.ts";

const README = join(import.meta.dir, "../../README.md");
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(import.meta.dir, "../../package.json"), "utf8")) as { version: string }).version;
let env: Env;
beforeAll(async () => {
  env = await setUp("metrics", 300);
});
afterAll(async () => {
  await env.cleanup();
});

/** The metric names the README's "Metrics" section documents. */
export function documentedMetrics(): string[] {
  const text = readFileSync(README, "utf8");
  const start = text.indexOf("\n## Metrics");
  if (start < 0) return [];
  const end = text.indexOf("\n## ", start + 5);
  const section = text.slice(start, end < 0 ? undefined : end);
  return [...new Set([...section.matchAll(/`(pipekit_collector_[a-z_]+)/g)].map((m) => m[1]!))];
}

test("metrics parsed back: documented, bounded, driven above zero, and the accounting identity", async () => {
  const pod = env.node.pods.find((p) => p.expected === "delivered" && p.containers.includes("main"))!;
  const mainDir = join(env.node.root, `${pod.namespace}_${pod.name}_${pod.uid}`, "main");
  const poisoned = `${pod.name}/main line 5`;
  expect(env.node.expectedMessages.has(poisoned)).toBe(true);
  // Lines no runtime would write, and one far longer than maxLineBytes.
  appendFileSync(join(mainDir, "0.log"), "this is not a CRI line\n" + `2026-11-24T19:02:13.000000001Z stdout F ${"y".repeat(3000)}\n`);
  env.messenger.setFaults({ poisonMarker: JSON.stringify(poisoned) });

  const c = await startCollector(env, { source: { maxLineBytes: "1KiB" } }, { PIPEKIT_COLLECTOR_PER_FILE_METRICS: "1" });
  const api = c.api;
  try {
    const expected = env.node.expectedMessages.size;
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= expected, 30_000, 100)).toBe(true); // -1 poisoned, +1 truncated line
    // A rotation: the live file is renamed and a new one appears.
    renameSync(join(mainDir, "0.log"), join(mainDir, "0.log.20261125-000000"));
    env.node.appendLines(10);
    expect(await waitFor(() => env.messenger.stats().distinctEvents >= env.node.expectedMessages.size, 20_000, 100)).toBe(true);
    expect(await waitFor(async () => (await api.status()).events.inRing === 0, 10_000)).toBe(true);
    // The unlabelled pod's lines are filtered once its wait for labels (1 s) is over.
    expect(await waitFor(async () => (await api.status()).events.filteredTotal >= env.node.expectedFiltered, 10_000)).toBe(true);

    const res = await api.get("/metrics");
    expect(res.headers.get("content-type")).toContain("text/plain");
    const { parsePrometheus } = await import("./harness.ts");
    const m = parsePrometheus(res.text);

    // Every documented metric is exposed, with help and a type.
    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThan(30);
    const names = new Set(m.samples.map((s) => s.name.replace(/_(bucket|sum|count)$/, "")));
    for (const name of documented) {
      expect({ name, exposed: names.has(name) || m.types.get(name) === "histogram" }).toEqual({ name, exposed: true });
      expect(m.help.get(name)?.length ?? 0).toBeGreaterThan(10);
      if (m.types.get(name) === "counter") expect(name.endsWith("_total")).toBe(true);
    }
    // Bounded labels: only these names; no per-line values; per-file series only because of the option.
    const labelNames = new Set(m.samples.flatMap((s) => Object.keys(s.labels)));
    for (const l of labelNames) expect(["reason", "status", "le", "path", "version", "commit"]).toContain(l);
    const labelled = (names: string[]) => m.samples.filter((s) => names.some((n) => s.labels[n] !== undefined)).map((s) => s.name);
    expect([...new Set(labelled(["version", "commit"]))]).toEqual(["pipekit_collector_build_info"]);
    // What is running, as /status says it too: one series, value 1.
    const info = m.samples.filter((s) => s.name === "pipekit_collector_build_info");
    const st = await api.status();
    expect(info).toEqual([{ name: "pipekit_collector_build_info", labels: { version: st.version, commit: st.commit }, value: 1 }]);
    expect(st.version).toBe(PACKAGE_VERSION);
    expect(st.commit.length).toBeGreaterThan(0);
    expect(m.samples.filter((s) => s.labels.path !== undefined).every((s) => s.name.startsWith("pipekit_collector_file_"))).toBe(true);
    expect(m.samples.length).toBeLessThan(250);
    for (const s of m.samples) expect(s.name.startsWith("pipekit_collector_")).toBe(true);

    expectAboveZero(m, [
      "pipekit_collector_build_info",
      "pipekit_collector_events_read_total",
      "pipekit_collector_events_filtered_total",
      "pipekit_collector_events_skipped_total",
      "pipekit_collector_events_appended_total",
      "pipekit_collector_events_sent_total",
      "pipekit_collector_events_dead_lettered_total",
      "pipekit_collector_lines_truncated_total",
      "pipekit_collector_bytes_read_total",
      "pipekit_collector_bytes_sent_total",
      "pipekit_collector_bytes_sent_uncompressed_total",
      "pipekit_collector_files_watched",
      "pipekit_collector_files_skipped_total",
      "pipekit_collector_files_rotated_total",
      "pipekit_collector_prefix_table_prefixes",
      "pipekit_collector_prefix_table_writes_total",
      "pipekit_collector_prefix_table_write_seconds_total",
      "pipekit_collector_sink_requests_total",
      "pipekit_collector_sink_request_duration_seconds",
      "pipekit_collector_end_to_end_latency_seconds",
      "pipekit_collector_file_offset_bytes",
      "pipekit_collector_process_cpu_seconds_total",
      "pipekit_collector_process_cpu_user_seconds_total",
      "pipekit_collector_process_cpu_system_seconds_total",
      "pipekit_collector_process_resident_memory_bytes",
      "pipekit_collector_process_virtual_memory_bytes",
      "pipekit_collector_process_start_time_seconds",
      "pipekit_collector_process_open_fds",
      "pipekit_collector_process_max_fds",
    ]);
    expect(m.sum("pipekit_collector_events_filtered_total", { reason: "missing-runUUID" })).toBe(env.node.expectedFiltered);
    expect(m.sum("pipekit_collector_events_skipped_total", { reason: "malformed" })).toBe(1);
    expect(m.sum("pipekit_collector_events_dead_lettered_total")).toBe(1);
    expect(m.sum("pipekit_collector_sink_requests_total", { status: "400" })).toBeGreaterThan(0);
    expect(m.sum("pipekit_collector_sink_requests_total", { status: "200" })).toBeGreaterThan(0);
    // The end-to-end histogram: buckets cumulative, +Inf = count.
    const buckets = m.samples.filter((s) => s.name === "pipekit_collector_end_to_end_latency_seconds_bucket");
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(buckets.at(-1)!.labels.le).toBe("+Inf");
    expect(buckets.at(-1)!.value).toBe(m.sum("pipekit_collector_end_to_end_latency_seconds_count"));

    // read = filtered + skipped + in ring + sent + dead-lettered − replayed (this process)
    const p = (n: string) => m.sum(`pipekit_collector_${n}`);
    expect(p("events_replayed_total")).toBe(0);
    expect(p("events_in_ring")).toBe(0);
    expect(p("events_read_total")).toBe(
      p("events_filtered_total") + p("events_skipped_total") + p("events_in_ring") + p("events_sent_total") + p("events_dead_lettered_total") - p("events_replayed_total"),
    );
    expect(p("events_sent_total")).toBe(env.messenger.stats().eventsReceived);
    // The prefix table, as /status says it: the containers found at start were written together.
    const table = (await api.status()).prefixTable;
    expect(table).toMatchObject({ prefixes: p("prefix_table_prefixes"), writes: p("prefix_table_writes_total"), writeFailures: 0, unknownAtOpen: 0, failingSince: null });
    expect(table.prefixes).toBeGreaterThan(2);
    expect(table.writes).toBeLessThan(table.prefixes);
    expect((await api.status()).events.accountingImbalance).toBe(0);
  } finally {
    expect(await stopCollector(c)).toBe(0);
  }
  const counts = distinctMessages(env.messenger);
  const missing = [...env.node.expectedMessages].filter((msg) => !counts.has(msg));
  expect(missing).toEqual([poisoned]); // the one the messenger refused: dead-lettered, not lost
  const dl = readdirSync(join(env.dir, "data")).filter((f) => f.includes("dead"));
  expect(dl.length).toBeGreaterThan(0);
  expect(existsSync(join(env.dir, "data", dl[0]!))).toBe(true);
  expect(readFileSync(join(env.dir, "data", dl[0]!), "utf8")).toContain(poisoned);
}, 90_000);

test("every documented metric is driven above zero by some test (operations or reliability)", () => {
  const sources = [import.meta.dir, join(import.meta.dir, "../reliability")].flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith(".test.ts"))
      .map((f) => readFileSync(join(dir, f), "utf8").replace(/export function documentedMetrics[\s\S]*?\n}\n/, "")),
  );
  const documented = documentedMetrics();
  expect(documented.length).toBeGreaterThan(30);
  const undriven = documented.filter((name) => !sources.some((src) => src.includes(`"${name}"`)));
  expect(undriven).toEqual([]);
});
