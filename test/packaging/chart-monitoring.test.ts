// The chart's monitoring objects: the PrometheusRule (README's alert table) and the Grafana
// dashboard ConfigMap, rendered with the real helm and validated against their schemas; and every
// metric their expressions name checked against the /metrics of a real, running collector.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { alertsTable, mainReadme, README_PATH, type AlertRule } from "../../scripts/render-manifests.ts";
import { type Env, eventuallyAboveZero, setUp, startCollector, stopCollector } from "../ops/harness.ts";
import { CHART_DIR, findOne, helm, type K8sObject, render, validateAll, validateObject } from "./helm-support.ts";

const BASE = ["messengerBaseUri=https://messenger.example.com", "secrets.existingSecret=pipekit-api-key"];
const MONITORING = [...BASE, "serviceMonitor.enabled=true", "prometheusRule.enabled=true", "dashboards.enabled=true"];
/** kube-state-metrics series the restarts alert and panel read (not the collector's). */
const EXTERNAL = new Set(["kube_pod_container_status_restarts_total"]);
/** Labels Prometheus puts on every scraped series of a ServiceMonitor's targets. */
const TARGET_LABELS = new Set(["namespace", "pod", "container", "service", "endpoint", "instance", "job"]);

let env: Env;
/** Metric name → the label names its series carry, from a live /metrics. */
let served: Map<string, Set<string>>;
let objects: K8sObject[];

beforeAll(async () => {
  helm();
  objects = render(MONITORING);
  env = await setUp("monitoring", 50);
  const c = await startCollector(env, {}, { PIPEKIT_COLLECTOR_PER_FILE_METRICS: "1" });
  try {
    // Labelled series appear with their first event: wait for a delivery.
    if (!(await eventuallyAboveZero(c.api, "pipekit_collector_events_sent_total", 15_000))) throw new Error("nothing was delivered");
    const text = (await c.api.get("/metrics")).text;
    served = new Map();
    for (const line of text.split("\n")) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
      if (!m) continue;
      const labels = served.get(m[1]!) ?? new Set<string>();
      for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]!);
      served.set(m[1]!, labels);
    }
  } finally {
    await stopCollector(c);
  }
}, 60_000);
afterAll(async () => {
  await env.cleanup();
});

function rules(): AlertRule[] {
  return findOne(objects, "PrometheusRule").spec.groups.flatMap((g: { rules: AlertRule[] }) => g.rules);
}

function dashboard(): any {
  return JSON.parse(findOne(objects.filter((o) => o.metadata.name.endsWith("-dashboard")), "ConfigMap").data["pipekit-log-collector.json"]);
}

function dashboardExprs(): string[] {
  const d = dashboard();
  const fromPanels = d.panels.flatMap((p: { targets?: Array<{ expr: string }> }) => (p.targets ?? []).map((t) => t.expr));
  const fromVariables = d.templating.list.map((v: { query?: { query?: string } }) => v.query?.query).filter(Boolean);
  return [...fromPanels, ...fromVariables];
}

/** Every metric name and every aggregation label an expression uses, checked against what is served. */
function problemsOf(expr: string): string[] {
  const problems: string[] = [];
  const names = [...expr.matchAll(/\b(pipekit_collector_[a-z0-9_]+|kube_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
  if (names.length === 0) problems.push(`${expr}: names no metric`);
  for (const name of names) {
    if (!served.has(name) && !EXTERNAL.has(name)) problems.push(`${expr}: ${name} is not served`);
  }
  for (const by of expr.matchAll(/\bby \(([^)]*)\)/g)) {
    for (const label of by[1]!.split(",").map((l) => l.trim())) {
      const known = TARGET_LABELS.has(label) || names.some((n) => served.get(n)?.has(label));
      if (!known) problems.push(`${expr}: no series of it carries the label ${label}`);
    }
  }
  return problems;
}

describe("rendered objects", () => {
  test("valid against the Kubernetes and Prometheus Operator schemas", async () => {
    expect(await validateAll(objects)).toBe(objects.length);
    const rule = findOne(objects, "PrometheusRule");
    expect(rule.apiVersion).toBe("monitoring.coreos.com/v1");
    const broken = structuredClone(rule);
    broken.spec.groups[0].rules[0].for = "ten minutes";
    await expect(validateObject(broken)).rejects.toThrow(/for/);
  });

  test("the dashboard ConfigMap: the sidecar's label, valid dashboard JSON", () => {
    const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "plc-pipekit-log-collector-dashboard")!;
    expect(cm.metadata.labels.grafana_dashboard).toBe("1");
    const d = dashboard();
    expect(d.uid).toBe("pipekit-log-collector");
    const ids = d.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels.filter((p: { type: string }) => p.type !== "row")) {
      expect(p.targets.length).toBeGreaterThan(0);
      expect(p.datasource.uid).toBe("${datasource}");
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    }
    expect(d.templating.list.map((v: { name: string }) => v.name)).toEqual(["datasource", "namespace", "pod"]);
  });

  test("labels, annotations and the namespace of the dashboard are yours to set", () => {
    const cm = findOne(
      render([...BASE, "dashboards.enabled=true", "dashboards.namespace=monitoring", "dashboards.annotations.grafana_folder=Logs"]).filter((o) => o.metadata.name.endsWith("-dashboard")),
      "ConfigMap",
    );
    expect(cm.metadata.namespace).toBe("monitoring");
    expect(cm.metadata.annotations).toEqual({ grafana_folder: "Logs" });
  });

  test("alert labels reach every rule; the PrometheusRule's own labels select it", () => {
    const rule = findOne(render([...BASE, "prometheusRule.enabled=true", "prometheusRule.alertLabels.severity=warning", "prometheusRule.labels.release=prom"]), "PrometheusRule");
    expect(rule.metadata.labels.release).toBe("prom");
    for (const r of rule.spec.groups[0].rules) expect(r.labels).toEqual({ severity: "warning" });
  });
});

describe("every expression names what the collector really serves", () => {
  test("the check itself catches a wrong name and a wrong label", () => {
    expect(served.size).toBeGreaterThan(30);
    expect(problemsOf("rate(pipekit_collector_events_read[5m])")).toEqual(["rate(pipekit_collector_events_read[5m]): pipekit_collector_events_read is not served"]);
    expect(problemsOf("sum by (path) (pipekit_collector_events_filtered_total)")).toHaveLength(1);
    expect(problemsOf("sum by (reason) (pipekit_collector_events_filtered_total)")).toEqual([]);
  });

  test("the alerts", () => {
    expect(rules().length).toBeGreaterThanOrEqual(9);
    expect(rules().flatMap((r) => problemsOf(r.expr))).toEqual([]);
  });

  test("the dashboard's panels and variables", () => {
    expect(dashboardExprs().length).toBeGreaterThan(20);
    expect(dashboardExprs().flatMap(problemsOf)).toEqual([]);
  });

  test("the restarts alert reads this release's pods in its namespace", () => {
    const restarts = rules().find((r) => r.expr.includes("kube_pod_container_status_restarts_total"))!;
    expect(restarts.expr).toContain('namespace="pipekit", pod=~"plc-pipekit-log-collector-.*"');
  });
});

describe("README's alert table", () => {
  test("is the PrometheusRule's rules, row for row", () => {
    const readme = readFileSync(README_PATH, "utf8");
    expect(mainReadme(readme, [])).not.toBe(readme); // the markers are there and the table is not empty
    const table = alertsTable(rules()).split("\n").slice(2);
    // The README's rows come from the manifests' release (namespace pipekit-log-collector); the
    // alert names, for clauses and reasons are the same whatever the release.
    const names = (rows: string[]) => rows.map((r) => r.split(" | ")[0]);
    const readmeRows = readme.split("\n").filter((l) => l.startsWith("| `PipekitCollector"));
    expect(names(readmeRows)).toEqual(names(table));
    expect(readmeRows.length).toBe(rules().length);
  });

  test("the chart's README documents the dashboard file that exists", () => {
    expect(readFileSync(join(CHART_DIR, "README.md"), "utf8")).toContain("dashboards/pipekit-log-collector.json");
    expect(() => readFileSync(join(CHART_DIR, "dashboards", "pipekit-log-collector.json"), "utf8")).not.toThrow();
  });
});
