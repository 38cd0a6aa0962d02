import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config/load.ts";
import { compileEncoder, filter, reshape, transform } from "../../src/pipeline/chain.ts";
import { OUTPUT_FIELDS, PipekitRecordSchema } from "../../src/pipeline/record.ts";
import type { PodMeta } from "../../src/metadata/types.ts";

const fields = parseConfig({}).pipeline.fields;
const pod: PodMeta = {
  uid: "5f0c9a7e",
  namespace: "argo",
  name: "ci-build-7xk2p-compile-3470861234",
  labels: {
    "workflows.argoproj.io/workflow": "ci-build-7xk2p",
    "workflows.pipekit.io/org_uuid": "org-1",
    "workflows.pipekit.io/run_uuid": "run-1",
    "workflows.pipekit.io/pipe_uuid": "pipe-1",
    "workflows.pipekit.io/runner": "must-not-leak",
    "secret-ish": "must-not-leak-either",
  },
  annotations: { "workflows.argoproj.io/node-id": "node-1", "kubectl.kubernetes.io/default-container": "main" },
};
const line = { timestamp: "2026-11-24T19:02:13.401245871Z", stream: "stdout" as const, message: 'say "hi"\t✓' };

describe("the Pipekit chain", () => {
  test("transform picks labels, annotations, pod and container names", () => {
    expect(transform(pod, "main", fields)).toEqual({
      orgUUID: "org-1",
      runUUID: "run-1",
      pipeUUID: "pipe-1",
      nodeID: "node-1",
      podName: "ci-build-7xk2p-compile-3470861234",
      containerName: "main",
    });
  });

  test("reshape gives exactly the contract's fields; the encoder produces the same JSON", () => {
    const id = transform(pod, "main", fields);
    expect(filter(id, line)).toBeNull();
    const record = reshape(id, line);
    expect(Object.keys(record)).toEqual([...OUTPUT_FIELDS]);
    expect(PipekitRecordSchema.parse(record)).toEqual(record);
    const json = compileEncoder(id).encode(line.timestamp, line.stream, line.message);
    expect(json).toBe(JSON.stringify(record));
    expect(json).not.toContain("must-not-leak");
    expect(json).not.toContain("default-container");
  });

  test("each missing required field is its own reason", () => {
    const without = (labels: string[], annotations: string[] = []): PodMeta => ({
      ...pod,
      labels: Object.fromEntries(Object.entries(pod.labels).filter(([k]) => !labels.includes(k))),
      annotations: Object.fromEntries(Object.entries(pod.annotations).filter(([k]) => !annotations.includes(k))),
    });
    const reason = (p: PodMeta, container = "main", ts = line.timestamp) => filter(transform(p, container, fields), { ...line, timestamp: ts });
    expect(reason(without(["workflows.pipekit.io/org_uuid"]))).toBe("missing-orgUUID");
    expect(reason(without(["workflows.pipekit.io/run_uuid"]))).toBe("missing-runUUID");
    expect(reason(without(["workflows.pipekit.io/pipe_uuid"]))).toBe("missing-pipeUUID");
    expect(reason(without([], ["workflows.argoproj.io/node-id"]))).toBe("missing-nodeID");
    expect(reason({ ...pod, name: "" })).toBe("missing-podName");
    expect(reason(pod, "")).toBe("missing-containerName");
    expect(reason(pod, "main", "")).toBe("missing-timestamp");
    // An empty label value counts as missing.
    expect(reason({ ...pod, labels: { ...pod.labels, "workflows.pipekit.io/org_uuid": "" } })).toBe("missing-orgUUID");
    const enc = compileEncoder(transform(without(["workflows.pipekit.io/pipe_uuid"]), "main", fields));
    expect(enc.fileReason).toBe("missing-pipeUUID");
    expect(enc.encode(line.timestamp, "stdout", "x")).toBeNull();
    expect(compileEncoder(transform(pod, "main", fields)).encode("", "stdout", "x")).toBeNull();
  });

  test("configurable sources for identifiers", () => {
    const custom = parseConfig({ pipeline: { fields: { nodeID: { label: "my/node" }, orgUUID: { annotation: "my/org" } } } }).pipeline.fields;
    const p: PodMeta = { ...pod, labels: { ...pod.labels, "my/node": "n-7" }, annotations: { "my/org": "o-7" } };
    const id = transform(p, "wait", custom);
    expect(id.nodeID).toBe("n-7");
    expect(id.orgUUID).toBe("o-7");
  });

  test("odd timestamps and messages still produce valid JSON", () => {
    const enc = compileEncoder(transform(pod, "main", fields));
    for (const [ts, msg] of [
      ['2026-11-24T19:02:13"Z', "\u0000\u0001 nul"],
      ["2026-11-24T19:02:13Z", "\uFFFD replaced \\ backslash"],
      ["t", "\ud800 lone surrogate"],
    ] as const) {
      const parsed = JSON.parse(enc.encode(ts, "stderr", msg) as string);
      expect(parsed.timestamp).toBe(ts);
      expect(parsed.stream).toBe("stderr");
      expect(PipekitRecordSchema.safeParse(parsed).success).toBe(true);
    }
  });
});
