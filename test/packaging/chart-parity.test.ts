// What the peers' charts (Vector's, Fluent Bit's) offer for real clusters, in this chart: extension
// points, Vector's value names, the data dir split into container path and host path, and the
// node-critical priority class with the quota GKE needs for it. Rendered with the real helm and
// validated against the Kubernetes schemas.
import { beforeAll, describe, expect, test } from "bun:test";
import { parse as parseYaml } from "yaml";
import { parseConfig } from "../../src/config/load.ts";
import { findOne, helm, type K8sObject, render, renderError, validateAll } from "./helm-support.ts";

beforeAll(() => {
  helm();
}, 120_000);

const BASE = ["messengerBaseUri=https://messenger.example.com", "secrets.existingSecret=pipekit-api-key"];
const renderBase = (set: string[] = [], values?: string) => render([...BASE, ...set], { values });

function pod(objects: K8sObject[]) {
  return findOne(objects, "DaemonSet").spec.template.spec;
}

describe("the data dir: Vector's dataDir (container path) and persistence.hostPath.path (host path)", () => {
  test("defaults: the same path on both sides", () => {
    const objects = renderBase();
    const spec = pod(objects);
    expect(spec.volumes.find((v: { name: string }) => v.name === "data").hostPath).toEqual({ path: "/var/lib/pipekit-log-collector", type: "DirectoryOrCreate" });
    expect(spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === "data").mountPath).toBe("/var/lib/pipekit-log-collector");
  });

  test("each moves on its own, and the collector's config follows the container path", () => {
    const objects = renderBase(["dataDir=/vector-data-dir", "persistence.hostPath.path=/var/lib/pipekit-agent-logs"]);
    const spec = pod(objects);
    expect(spec.volumes.find((v: { name: string }) => v.name === "data").hostPath.path).toBe("/var/lib/pipekit-agent-logs");
    expect(spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === "data").mountPath).toBe("/vector-data-dir");
    const config = parseConfig(parseYaml(findOne(objects, "ConfigMap").data["config.yaml"]));
    expect(config.dataDir).toBe("/vector-data-dir");
  });
});

describe("priority class", () => {
  test("system-node-critical by default, with the ResourceQuota that admits it (GKE)", async () => {
    const objects = renderBase();
    await validateAll(objects);
    expect(pod(objects).priorityClassName).toBe("system-node-critical");
    const quota = findOne(objects, "ResourceQuota");
    expect(quota.metadata.namespace).toBe("pipekit");
    expect(quota.spec).toEqual({
      hard: { pods: "1G" },
      scopeSelector: { matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: ["system-node-critical"] }] },
    });
  });

  test("Vector's podPriorityClassName wins; any other class has no quota", () => {
    const objects = renderBase(["podPriorityClassName=logging-high"]);
    expect(pod(objects).priorityClassName).toBe("logging-high");
    expect(objects.some((o) => o.kind === "ResourceQuota")).toBe(false);
    expect(findOne(renderBase(["podPriorityClassName=system-cluster-critical"]), "ResourceQuota").spec.scopeSelector.matchExpressions[0].values).toEqual([
      "system-cluster-critical",
    ]);
  });

  test("overridable: an empty class leaves the cluster's default; the quota can be left out", () => {
    const none = renderBase(["priorityClassName="]);
    expect(pod(none).priorityClassName).toBeUndefined();
    expect(none.some((o) => o.kind === "ResourceQuota")).toBe(false);
    expect(renderBase(["priorityClassQuota.enabled=false"]).some((o) => o.kind === "ResourceQuota")).toBe(false);
  });
});

describe("extension points (Vector's names and meanings)", () => {
  const values = `
extraVolumes:
  - name: ca
    configMap: { name: corporate-ca }
extraVolumeMounts:
  - name: ca
    mountPath: /etc/ssl/corporate
    readOnly: true
initContainers:
  - name: wait-for-disk
    image: busybox:1.36
    command: ["sh", "-c", "test -d /data || sleep 5"]
    env:
      - name: RELEASE
        value: "{{ .Release.Name }}"
extraContainers:
  - name: sidecar
    image: "registry.example.com/tools:{{ .Chart.AppVersion }}"
extraObjects:
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: "{{ .Release.Name }}-extra"
      namespace: "{{ .Release.Namespace }}"
    data:
      note: made by extraObjects
`;
  let objects: K8sObject[];
  beforeAll(() => {
    objects = renderBase([], values);
  });

  test("every rendered object is valid", async () => {
    expect(await validateAll(objects)).toBe(objects.length);
  });

  test("extraVolumes and extraVolumeMounts join the chart's own", () => {
    const spec = pod(objects);
    expect(spec.volumes).toContainEqual({ name: "ca", configMap: { name: "corporate-ca" } });
    expect(spec.volumes.some((v: { name: string }) => v.name === "data")).toBe(true);
    expect(spec.containers[0].volumeMounts).toContainEqual({ name: "ca", mountPath: "/etc/ssl/corporate", readOnly: true });
  });

  test("initContainers and extraContainers, their strings through tpl", () => {
    const spec = pod(objects);
    expect(spec.initContainers).toHaveLength(1);
    expect(spec.initContainers[0].env).toEqual([{ name: "RELEASE", value: "plc" }]);
    expect(spec.containers.map((c: { name: string }) => c.name)).toEqual(["collector", "sidecar"]);
    expect(spec.containers[1].image).toBe("registry.example.com/tools:0.1.0");
  });

  test("extraObjects are rendered with the release, through tpl", () => {
    const extra = objects.find((o) => o.metadata.name === "plc-extra")!;
    expect(extra.kind).toBe("ConfigMap");
    expect(extra.metadata.namespace).toBe("pipekit");
    expect(extra.data).toEqual({ note: "made by extraObjects" });
  });

  test("env and envFrom strings go through tpl too (a parent chart names its objects after the release)", () => {
    const spec = pod(
      renderBase(
        [],
        `
env:
  - name: PIPEKIT_MESSENGER_BASE_URI
    valueFrom: { configMapKeyRef: { name: "{{ .Release.Name }}-agent", key: messengerBaseUri } }
envFrom:
  - secretRef: { name: "{{ .Release.Name }}-env" }
`,
      ),
    );
    expect(spec.containers[0].env).toContainEqual({
      name: "PIPEKIT_MESSENGER_BASE_URI",
      valueFrom: { configMapKeyRef: { name: "plc-agent", key: "messengerBaseUri" } },
    });
    expect(spec.containers[0].envFrom).toEqual([{ secretRef: { name: "plc-env" } }]);
  });

  test("the schema knows them: a misspelt one is refused", () => {
    expect(renderError([...BASE, "extraVolume[0].name=x"])).toMatch(/additional properties 'extraVolume' not allowed/);
  });
});
