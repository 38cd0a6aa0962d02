import { describe, expect, test } from "bun:test";
import { ConfigSchema } from "../../src/config/schema.ts";
import { decidePod, selectionRulesFromConfig } from "../../src/metadata/selection.ts";
import type { PodMeta } from "../../src/metadata/types.ts";

const rules = selectionRulesFromConfig(ConfigSchema.parse({}));
const base: PodMeta = {
  uid: "u",
  namespace: "argo",
  name: "p",
  labels: {
    "workflows.argoproj.io/workflow": "wf",
    "workflows.pipekit.io/org_uuid": "o",
    "workflows.pipekit.io/run_uuid": "r",
    "workflows.pipekit.io/pipe_uuid": "p",
  },
  annotations: { "workflows.argoproj.io/node-id": "n" },
};

describe("decidePod", () => {
  test("rules come from the config: selector label plus the keys pipeline.fields reads", () => {
    expect(rules).toEqual({
      selectorLabel: "workflows.argoproj.io/workflow",
      requiredLabels: ["workflows.pipekit.io/org_uuid", "workflows.pipekit.io/run_uuid", "workflows.pipekit.io/pipe_uuid"],
      requiredAnnotations: ["workflows.argoproj.io/node-id"],
    });
    const custom = selectionRulesFromConfig(
      ConfigSchema.parse({ metadata: { selectorLabel: "x" }, pipeline: { fields: { nodeID: { label: "nid" } } } }),
    );
    expect(custom.selectorLabel).toBe("x");
    expect(custom.requiredLabels).toContain("nid");
    expect(custom.requiredAnnotations).toEqual([]);
  });

  test("unknown pod", () => {
    expect(decidePod(undefined, rules)).toEqual({ kind: "unknown" });
  });

  test("a complete Argo pod is selected", () => {
    expect(decidePod(base, rules)).toEqual({ kind: "select" });
  });

  test("a pod without the selector label is not selected, whatever else it has", () => {
    const { "workflows.argoproj.io/workflow": _, ...rest } = base.labels;
    expect(decidePod({ ...base, labels: rest }, rules)).toEqual({ kind: "not-selected" });
    expect(decidePod({ ...base, labels: {}, annotations: {} }, rules)).toEqual({ kind: "not-selected" });
  });

  test("an empty selector value still selects (existence, as kubectl -l key)", () => {
    expect(decidePod({ ...base, labels: { ...base.labels, "workflows.argoproj.io/workflow": "" } }, rules).kind).toBe("select");
  });

  test("missing or empty required keys make a selected pod incomplete, naming each", () => {
    const labels = { ...base.labels, "workflows.pipekit.io/run_uuid": "" } as Record<string, string>;
    delete labels["workflows.pipekit.io/org_uuid"];
    expect(decidePod({ ...base, labels, annotations: {} }, rules)).toEqual({
      kind: "incomplete",
      missing: ["label:workflows.pipekit.io/org_uuid", "label:workflows.pipekit.io/run_uuid", "annotation:workflows.argoproj.io/node-id"],
    });
  });

  test("a label on the annotations side does not count (and vice versa)", () => {
    const p: PodMeta = { ...base, labels: { ...base.labels, "workflows.argoproj.io/node-id": "n" }, annotations: {} };
    expect(decidePod(p, rules)).toEqual({ kind: "incomplete", missing: ["annotation:workflows.argoproj.io/node-id"] });
  });
});
