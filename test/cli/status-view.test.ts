// The view `top` and `status` print, as pure functions of two API readings.
import { describe, expect, test } from "bun:test";
import {
  bar,
  field,
  fit,
  fmtBytes,
  fmtCount,
  MISSING,
  parseMetricTotals,
  ratePerSecond,
  renderStatusView,
  type Snapshot,
} from "../../src/cli/status-view.ts";

const URL = "http://127.0.0.1:8686";

function status(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: "0.1.0",
    commit: "abc123def456",
    phase: "running",
    ready: true,
    uptimeSeconds: 3725,
    pipeline: { healthy: true, reasons: [] },
    events: { read: 1000, sent: 900, filteredTotal: 50, inRing: 50, deadLettered: 0 },
    ring: { usedBytes: 125_000_000, capacityBytes: 500_000_000, full: false },
    sink: { url: "https://messenger.example.com/logs/ingest/batch", inFlight: 2, waiting: 1, lastSuccessAt: "2026-12-05T10:00:00.000Z", secondsSinceLastSuccess: 0.4, lastError: null },
    metadata: { provider: "apiserver", synced: true, failing: false, lastSyncAt: "2026-12-05T09:59:57.000Z", lastError: null, podsKnown: 42 },
    files: [
      { path: "/var/log/pods/argo_wf-a_u1/main/0.log", namespace: "argo", pod: "wf-a", container: "main", state: "following", deleted: false, size: 5000, lag: 0 },
      { path: "/var/log/pods/argo_wf-b_u2/main/0.log", namespace: "argo", pod: "wf-b", container: "main", state: "following", deleted: false, size: 9_000_000, lag: 2_500_000 },
      { path: "/var/log/pods/argo_wf-c_u3/wait/1.log", namespace: "argo", pod: "wf-c", container: "wait", state: "rotated", deleted: true, size: 700, lag: 300 },
    ],
    ...over,
  };
}

const metricsText = (cpu: number) =>
  [
    "# HELP pipekit_collector_process_cpu_seconds_total CPU",
    "# TYPE pipekit_collector_process_cpu_seconds_total counter",
    `pipekit_collector_process_cpu_seconds_total ${cpu}`,
    "pipekit_collector_process_resident_memory_bytes 85000000",
    "pipekit_collector_process_open_fds 130",
    "pipekit_collector_deleted_held_bytes 0",
    'pipekit_collector_sink_requests_total{status="200"} 10',
    'pipekit_collector_sink_requests_total{status="503"} 5',
  ].join("\n");

const snap = (at: number, s: unknown, cpu = 1): Snapshot => ({ at, status: s, metrics: parseMetricTotals(metricsText(cpu)) });
const NOW = Date.parse("2026-12-05T10:00:00.400Z");

describe("helpers", () => {
  test("metric totals fold labels and skip comments", () => {
    const m = parseMetricTotals(metricsText(2.5));
    expect(m.get("pipekit_collector_sink_requests_total")).toBe(15);
    expect(m.get("pipekit_collector_process_cpu_seconds_total")).toBe(2.5);
    expect(m.has("# HELP")).toBe(false);
  });

  test("field walks a path and answers undefined on any missing step", () => {
    expect(field({ a: { b: 1 } }, "a.b")).toBe(1);
    expect(field({ a: null }, "a.b")).toBeUndefined();
    expect(field("text", "a")).toBeUndefined();
  });

  test("rates: per second; nothing across a restart (the counter went back) or without two readings", () => {
    expect(ratePerSecond(300, 100, 2)).toBe(100);
    expect(ratePerSecond(50, 100, 1)).toBeUndefined();
    expect(ratePerSecond(50, undefined, 1)).toBeUndefined();
    expect(ratePerSecond(50, 10, 0)).toBeUndefined();
  });

  test("formats", () => {
    expect(fmtCount(1_234_567)).toBe("1.2 M");
    expect(fmtCount(950)).toBe("950");
    expect(fmtCount(undefined)).toBe(MISSING);
    expect(fmtBytes(125_000_000)).toBe("125.0 MB");
    expect(bar(0.25, 8)).toBe("[##------]");
    expect(bar(undefined, 8)).toBe("");
    expect(fit("abcdef", 4)).toBe("abc…");
    expect(fit("abc", 4)).toBe("abc");
  });
});

describe("the view", () => {
  test("a healthy collector: every element, rates from two readings", () => {
    const before = snap(NOW - 2000, status(), 1);
    const after = snap(NOW, status({ events: { read: 3000, sent: 2500, filteredTotal: 70, inRing: 500, deadLettered: 0 } }), 1.5);
    const text = renderStatusView(after, before, { url: URL, width: 200, height: 40 }).join("\n");
    expect(text).toContain("pipekit-log-collector 0.1.0 (abc123def456) at http://127.0.0.1:8686 · running · ready · up 62 min");
    expect(text).toMatch(/health {4}healthy/);
    expect(text).toContain("in 1000/s  out 800/s  filtered 10/s");
    expect(text).toContain("in ring 500");
    expect(text).toContain("125.0 MB of 500.0 MB (25.0 %)");
    expect(text).toMatch(/\[#+-+\]/);
    expect(text).toContain("in flight 2  waiting 1  last success 0.4 s ago");
    expect(text).toContain("last error –");
    expect(text).toContain("apiserver  synced  pods 42  last sync 3.4 s ago");
    expect(text).toContain("cpu 25.0 %  resident 85.0 MB  open files 130");
    expect(text).toContain("3 followed, most lag first");
  });

  test("a failing messenger: the error delivery fails with now, and how long ago it came", () => {
    const sink = { url: "https://m.example/b", inFlight: 0, waiting: 3, lastSuccessAt: "2026-12-05T09:58:00.400Z", secondsSinceLastSuccess: 120, lastError: "HTTP 401 (messenger rejected the API key)", lastErrorAt: "2026-12-05T09:59:59.000Z" };
    const text = renderStatusView(snap(NOW, status({ sink })), null, { url: URL, width: 200, height: 40 }).join("\n");
    expect(text).toContain("last success 2 min ago");
    expect(text).toContain("last error 1.4 s ago: HTTP 401 (messenger rejected the API key)");
    // From a collector that does not date its errors: the error alone.
    const undated = renderStatusView(snap(NOW, status({ sink: { ...sink, lastErrorAt: undefined } })), null, { url: URL, width: 200, height: 40 }).join("\n");
    expect(undated).toContain("last error HTTP 401 (messenger rejected the API key)");
  });

  test("files come most lag first, with where they belong", () => {
    const lines = renderStatusView(snap(NOW, status()), null, { url: URL, width: 200, height: 40 });
    const table = lines.slice(lines.findIndex((l) => l.includes("NAMESPACE/POD/CONTAINER")) + 1).filter((l) => l.startsWith("  "));
    expect(table[0]).toContain("argo/wf-b/main  0.log");
    expect(table[0]).toContain("2.5 MB");
    expect(table[1]).toContain("rotated (deleted)");
    expect(table[2]).toContain("argo/wf-a/main");
  });

  test("unhealthy: the reasons, one per line", () => {
    const s = status({ pipeline: { healthy: false, reasons: ["messenger failing for 42 s", "ring full for 12 s (reading paused)"] }, ring: { usedBytes: 5e8, capacityBytes: 5e8, full: true } });
    const text = renderStatusView(snap(NOW, s), null, { url: URL, width: 200, height: 40 }).join("\n");
    expect(text).toContain("UNHEALTHY: 2 reasons");
    expect(text).toContain("· messenger failing for 42 s");
    expect(text).toContain("· ring full for 12 s (reading paused)");
    expect(text).toContain("FULL: reading waits");
  });

  test("a missing or renamed field shows as –, never a crash", () => {
    const lines = renderStatusView({ at: NOW, status: { version: "9.9.9", events: { eventsRead: 5 } }, metrics: null }, null, { url: URL, width: 200, height: 40 });
    const text = lines.join("\n");
    expect(text).toContain("pipekit-log-collector 9.9.9 at");
    expect(text).toMatch(/health {4}–/);
    expect(text).toContain("in –  out –");
    expect(text).toContain("read –");
    expect(text).toContain("– of – (–)");
    expect(text).toContain("in flight –  waiting –  last success –");
    expect(text).toContain("process   – (/metrics did not answer)");
    expect(text).toContain("files     – followed");
    // Garbage of every kind is survived too.
    for (const junk of [null, 42, "text", [], { files: "x", pipeline: { reasons: "x", healthy: false } }]) {
      expect(renderStatusView({ at: NOW, status: junk, metrics: new Map() }, null, { url: URL, width: 80, height: 24 }).length).toBeGreaterThan(5);
    }
  });

  test("fits the terminal: no line wider than it, the file table shortened to its height", () => {
    const files = Array.from({ length: 50 }, (_, i) => ({ path: `/var/log/pods/ns_p${i}_u/c/0.log`, namespace: "ns", pod: `p${i}`, container: "c", state: "following", size: 100, lag: i }));
    const lines = renderStatusView(snap(NOW, status({ files })), null, { url: URL, width: 60, height: 24, footer: ["q quits"] });
    expect(lines.length).toBeLessThanOrEqual(24);
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(60);
    expect(lines.at(-1)).toBe("q quits");
    expect(lines.some((l) => /… \d+ more/.test(l))).toBe(true);
  });
});
