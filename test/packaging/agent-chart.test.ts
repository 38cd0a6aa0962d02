// Pipekit's documented Helm command for its Vector log shipper, verbatim, against the stand-in Pipekit Agent chart
// (deploy/helm/pipekit-agent-example), which depends on this chart under the alias `vector`:
//   helm upgrade -i -n argo pipekit-agent pipekit/pipekit-agent --set secrets.pipekitSecretAccessKey=…
//     --set secrets.pipekitClusterId=… --set vector.enabled=true --set configMap.sendLogsToPipekit=false
// plus --set configMap.messengerBaseUri=…, rendered with the real helm (`helm template`, the local
// chart for pipekit/pipekit-agent after `helm dependency build`). Where the collector's URL and key
// come from a ConfigMap or a Secret, the test follows the reference the way the kubelet does.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseConfig } from "../../src/config/load.ts";
import { CHART_DIR, findOne, helm, type K8sObject, render, renderError, ROOT, runHelm, setArgs, validateAll } from "./helm-support.ts";

const AGENT_DIR = join(ROOT, "deploy", "helm", "pipekit-agent-example");
const URL = "https://messenger.pipekit.example";
const KEY = "pk_live_key_0123";
const CLUSTER = "cluster-0a1b";
/** The documented command's --set lines, in its order, and the messenger URL the agent chart threads through. */
const DOCUMENTED = [
  `secrets.pipekitSecretAccessKey=${KEY}`,
  `secrets.pipekitClusterId=${CLUSTER}`,
  "vector.enabled=true",
  "configMap.sendLogsToPipekit=false",
  `configMap.messengerBaseUri=${URL}`,
];

let work: string;
let chart: string;
beforeAll(() => {
  helm();
  // Both charts side by side, as in the repository, so that file://../pipekit-log-collector resolves.
  work = mkdtempSync(join(tmpdir(), "plc-agent-"));
  cpSync(CHART_DIR, join(work, "pipekit-log-collector"), { recursive: true });
  cpSync(AGENT_DIR, join(work, "pipekit-agent-example"), { recursive: true });
  chart = join(work, "pipekit-agent-example");
  const built = runHelm(["dependency", "build", chart]);
  if (built.exitCode !== 0) throw new Error(`helm dependency build: ${built.stderr}`);
}, 120_000);
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const agent = (set: string[], values?: string) => render(set, { chart, release: "pipekit-agent", namespace: "argo", values });

function collector(objects: K8sObject[]) {
  const ds = findOne(objects, "DaemonSet");
  return { ds, pod: ds.spec.template.spec, container: ds.spec.template.spec.containers[0] };
}

/**
 * The container's environment as the kubelet builds it: envFrom first, then env, whose entries
 * win; an optional reference to a missing Secret or key is skipped. `cluster` holds objects that
 * exist without the release (a Secret the user created).
 */
function environment(objects: K8sObject[], container: K8sObject, cluster: K8sObject[] = []): Record<string, string> {
  const all = [...objects, ...cluster];
  const data = (kind: string, name: string): Record<string, string> | null => {
    const o = all.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) return null;
    const raw = (o.data ?? {}) as Record<string, string>;
    return kind === "Secret" ? Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Buffer.from(v, "base64").toString()])) : raw;
  };
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const src = from.secretRef ? data("Secret", from.secretRef.name) : data("ConfigMap", from.configMapRef.name);
    if (!src) throw new Error(`envFrom names ${JSON.stringify(from)}, which does not exist`);
    Object.assign(env, src);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = e.value;
      continue;
    }
    const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
    if (!ref) continue; // the downward API
    const src = data(e.valueFrom.secretKeyRef ? "Secret" : "ConfigMap", ref.name);
    const value = src?.[ref.key];
    if (value === undefined) {
      if (ref.optional) continue;
      throw new Error(`${e.name} refers to ${ref.name}/${ref.key}, which does not exist`);
    }
    env[e.name] = value;
  }
  return env;
}

describe("Pipekit's documented command", () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = agent(DOCUMENTED);
  });

  test("renders the collector's DaemonSet in argo, every object valid", async () => {
    expect(await validateAll(objects)).toBe(objects.length);
    const { ds } = collector(objects);
    expect(ds.metadata.name).toBe("pipekit-agent-pipekit-log-collector");
    expect(ds.metadata.namespace).toBe("argo");
    for (const o of objects) expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  test("the collector gets the messenger URL and the key (through the agent's ConfigMap and Secret)", () => {
    const { container } = collector(objects);
    const env = environment(objects, container);
    expect(env.PIPEKIT_MESSENGER_BASE_URI).toBe(URL);
    expect(env.PIPEKIT_API_KEY).toBe(KEY);
    // The agent's own values, as the agent chart keeps them.
    const agentConfig = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "pipekit-agent")!;
    expect(agentConfig.data).toEqual({ messengerBaseUri: URL, sendLogsToPipekit: "false" });
    const secret = findOne(objects, "Secret");
    expect(Buffer.from(secret.data.pipekitClusterId, "base64").toString()).toBe(CLUSTER);
    // The key is never written out in the clear.
    for (const o of objects.filter((o) => o.kind !== "Secret")) expect(JSON.stringify(o)).not.toContain(KEY);
  });

  test("the collector's config passes its own schema", () => {
    const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "pipekit-agent-pipekit-log-collector")!;
    const config = parseConfig(parseYaml(cm.data["config.yaml"]), "rendered config.yaml");
    expect(config.api.address).toBe("0.0.0.0:8686");
  });

  test("helm lint --strict passes on the agent chart with the documented command's values", () => {
    const r = runHelm(["lint", "--strict", chart, ...setArgs(DOCUMENTED)]);
    expect(r.stdout).toContain("0 chart(s) failed");
    expect(r.exitCode).toBe(0);
  });

  test("without vector.enabled the agent chart renders no collector", () => {
    const off = agent(DOCUMENTED.filter((l) => !l.startsWith("vector.enabled")));
    expect(off.some((o) => o.kind === "DaemonSet")).toBe(false);
    expect(off.map((o) => o.kind).sort()).toEqual(["ConfigMap", "Secret"]);
  });

  test("sendLogsToPipekit left on warns that Pipekit would get every line twice", () => {
    const r = runHelm(["install", "--dry-run=client", "-n", "argo", "pipekit-agent", chart, ...setArgs(DOCUMENTED.filter((l) => !l.includes("sendLogsToPipekit")))]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("WARNING: configMap.sendLogsToPipekit is true");
    const quiet = runHelm(["install", "--dry-run=client", "-n", "argo", "pipekit-agent", chart, ...setArgs(DOCUMENTED)]);
    expect(quiet.stdout).not.toContain("WARNING");
  });
});

describe("secrets.existingSecret with vector.envFrom: the key comes from your Secret", () => {
  const lines = [`secrets.existingSecret=pipekit-mine`, "vector.enabled=true", "configMap.sendLogsToPipekit=false", `configMap.messengerBaseUri=${URL}`];
  const yours = (data: Record<string, string>): K8sObject => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "pipekit-mine" },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  });

  test("no Secret is created; in the agent Secret's shape or holding PIPEKIT_API_KEY, the key arrives", () => {
    const objects = agent([...lines, "vector.envFrom[0].secretRef.name=pipekit-mine"]);
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
    const { container } = collector(objects);
    expect(container.envFrom).toEqual([{ secretRef: { name: "pipekit-mine" } }]);
    const agentShape = environment(objects, container, [yours({ pipekitSecretAccessKey: "pk_yours", pipekitClusterId: CLUSTER })]);
    expect(agentShape.PIPEKIT_API_KEY).toBe("pk_yours");
    const envShape = environment(objects, container, [yours({ PIPEKIT_API_KEY: "pk_env" })]);
    expect(envShape.PIPEKIT_API_KEY).toBe("pk_env");
    expect(envShape.PIPEKIT_MESSENGER_BASE_URI).toBe(URL);
  });

  test("forgetting vector.envFrom is refused, naming it", () => {
    expect(renderError(lines, chart)).toMatch(/secrets.existingSecret: .* add --set vector.envFrom\[0\].secretRef.name=pipekit-mine/);
  });
});

describe("refusals name the value to set", () => {
  test("no messenger URL", () => {
    expect(renderError(DOCUMENTED.filter((l) => !l.startsWith("configMap.messengerBaseUri")), chart)).toMatch(/configMap.messengerBaseUri: set the Pipekit messenger's base URI/);
  });
  test("no key", () => {
    expect(renderError(DOCUMENTED.filter((l) => !l.startsWith("secrets.pipekitSecretAccessKey")), chart)).toMatch(/secrets.pipekitSecretAccessKey or secrets.existingSecret/);
  });
});

describe("every vector.* value the agent's users set keeps Vector's meaning", () => {
  const values = `
vector:
  role: Agent
  dataDir: /vector-data-dir
  persistence:
    hostPath:
      path: /var/lib/pipekit-vector
  image:
    pullSecrets:
      - name: pipekit-registry
  resources:
    requests: { cpu: 200m, memory: 768Mi }
    limits: { memory: 1536Mi }
  service:
    enabled: false
  podPriorityClassName: pipekit-high
`;

  test("role, dataDir (the container path) and its host path, pull secrets, resources, Service, priority class", async () => {
    const objects = agent(DOCUMENTED, values);
    await validateAll(objects);
    const { pod, container } = collector(objects);
    expect(container.volumeMounts.find((m: { name: string }) => m.name === "data").mountPath).toBe("/vector-data-dir");
    expect(pod.volumes.find((v: { name: string }) => v.name === "data").hostPath.path).toBe("/var/lib/pipekit-vector");
    const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "pipekit-agent-pipekit-log-collector")!;
    expect(parseConfig(parseYaml(cm.data["config.yaml"])).dataDir).toBe("/vector-data-dir");
    expect(pod.imagePullSecrets).toEqual([{ name: "pipekit-registry" }]);
    expect(container.resources).toEqual({ requests: { cpu: "200m", memory: "768Mi" }, limits: { memory: "1536Mi" } });
    expect(objects.some((o) => o.kind === "Service")).toBe(false);
    expect(pod.priorityClassName).toBe("pipekit-high");
  });

  test("existingConfigMaps: your config instead of the chart's; the URL and key still arrive", () => {
    const objects = agent([...DOCUMENTED, "vector.existingConfigMaps[0]=my-collector-config"]);
    const { container } = collector(objects);
    expect(objects.some((o) => o.kind === "ConfigMap" && o.metadata.name === "pipekit-agent-pipekit-log-collector")).toBe(false);
    expect(container.args).toEqual(["run", "--config", "/etc/pipekit-log-collector/my-collector-config/config.yaml"]);
    const env = environment(objects, container);
    expect(env.PIPEKIT_MESSENGER_BASE_URI).toBe(URL);
    expect(env.PIPEKIT_API_KEY).toBe(KEY);
  });

  test("standalone, the same values without the vector. prefix give the same collector pod", () => {
    const under = collector(agent(DOCUMENTED, values)).pod;
    const standaloneValues = values.replace(/^\s*vector:\n/, "").replace(/^ {2}/gm, "");
    const alone = collector(
      render([`secrets.pipekitSecretAccessKey=${KEY}`, `secrets.pipekitClusterId=${CLUSTER}`, `messengerBaseUri=${URL}`], {
        release: "pipekit-agent",
        namespace: "argo",
        values: standaloneValues,
      }),
    ).pod;
    const shape = (p: K8sObject) => ({
      priorityClassName: p.priorityClassName,
      imagePullSecrets: p.imagePullSecrets,
      resources: p.containers[0].resources,
      data: [p.volumes.find((v: { name: string }) => v.name === "data"), p.containers[0].volumeMounts.find((m: { name: string }) => m.name === "data")],
    });
    expect(shape(alone)).toEqual(shape(under));
    // The URL and key standalone: the value itself, and the chart's own Secret as a file.
    expect(alone.containers[0].env).toContainEqual({ name: "PIPEKIT_MESSENGER_BASE_URI", value: URL });
    expect(alone.volumes.find((v: { name: string }) => v.name === "api-key").secret.secretName).toBe("pipekit-agent-pipekit-log-collector");
  });

  test("envFrom replaces the agent's default, as with Vector: list the agent's Secret too when adding one", () => {
    const objects = agent([...DOCUMENTED, "vector.envFrom[0].secretRef.name=pipekit-agent", "vector.envFrom[1].configMapRef.name=proxy-env"]);
    expect(collector(objects).container.envFrom).toEqual([{ secretRef: { name: "pipekit-agent" } }, { configMapRef: { name: "proxy-env" } }]);
  });
});
