import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { MetadataConfigError } from "../../src/metadata/index.ts";
import { makeArgoPod } from "../support/podlist.ts";
import { until } from "./helpers.ts";
import { Harness, NODE } from "./k8s-harness.ts";

const h = new Harness();
beforeAll(() => h.init());
afterEach(() => h.cleanup());
afterAll(() => h.dispose());

const b64 = (s: string) => Buffer.from(s).toString("base64");

function kubeconfig(dir: string, cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  const file = join(dir, "kubeconfig");
  writeFileSync(
    file,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "test",
      contexts: [{ name: "other", context: { cluster: "nope", user: "nope" } }, { name: "test", context: { cluster: "c", user: "u" } }],
      clusters: [{ name: "c", cluster }],
      users: [{ name: "u", user }],
    }),
  );
  return file;
}

describe("apiserver endpoint from kubeconfig / apiserverUrl (parsed with the yaml package, under Bun)", () => {
  test("kubeconfig with inline CA and client certificate: authenticated by certificate", async () => {
    const api = await h.apiServer([]); // no token accepted: only the client cert can work
    const pod = api.createPod(makeArgoPod({ workflow: "wf", step: "a", nodeName: NODE }));
    const file = kubeconfig(
      h.tmp(),
      { server: api.url, "certificate-authority-data": b64(h.pki.ca.cert) },
      { "client-certificate-data": b64(h.pki.client.cert), "client-key-data": b64(h.pki.client.key) },
    );
    const { provider, cache } = h.provider({ metadata: { provider: "apiserver", kubeconfig: file }, node: { name: NODE } });
    await provider.start();
    expect(provider.status()).toMatchObject({ synced: true, failing: false });
    expect(cache.get(pod.metadata.uid)).toBeDefined();
    expect(api.requests.every((r) => r.auth === "client-cert")).toBe(true);
  });

  test("kubeconfig with file paths relative to it and a token", async () => {
    const api = await h.apiServer(["kc-token"]);
    const dir = h.tmp();
    writeFileSync(join(dir, "ca.pem"), h.pki.ca.cert);
    const file = kubeconfig(dir, { server: api.url + "/", "certificate-authority": "ca.pem" }, { token: "kc-token" });
    const { provider } = h.provider({ metadata: { provider: "apiserver", kubeconfig: file }, node: { name: NODE } });
    await provider.start();
    expect(provider.status().synced).toBe(true);
    expect(api.requests[0]!.auth).toBe("token");
  });

  test("apiserverUrl with caFile and tokenFile (bare-metal node)", async () => {
    const api = await h.apiServer(["bm-token"]);
    const dir = h.tmp();
    writeFileSync(join(dir, "token"), "bm-token\n");
    const { provider } = h.provider({
      metadata: { provider: "apiserver", apiserverUrl: api.url, caFile: h.pki.ca.certFile, tokenFile: join(dir, "token") },
      node: { name: NODE },
    });
    await provider.start();
    expect(provider.status().synced).toBe(true);
  });

  test("the wrong CA fails TLS verification (reported, not fatal); insecureSkipTlsVerify is explicit", async () => {
    const api = await h.apiServer(["t"]);
    const dir = h.tmp();
    writeFileSync(join(dir, "token"), "t");
    const base = { provider: "apiserver" as const, apiserverUrl: api.url, tokenFile: join(dir, "token") };
    const wrong = h.provider({ metadata: { ...base, caFile: h.pki.otherCa.certFile }, node: { name: NODE } }, { apiserver: { backoffInitialMs: 10_000 } });
    await wrong.provider.start();
    expect(wrong.provider.status()).toMatchObject({ synced: false, failing: true });
    expect(wrong.provider.status().lastError).toMatch(/certificate/i);
    expect(api.requests.length).toBe(0);
    const insecure = h.provider({ metadata: { ...base, insecureSkipTlsVerify: true }, node: { name: NODE } });
    await insecure.provider.start();
    await until(() => insecure.provider.status().synced);
  });
});

test("an API server that accepts but never answers: start() resolves, the list times out and is retried", async () => {
  const { createServer } = await import("node:net");
  const sockets: Array<import("node:net").Socket> = [];
  const srv = createServer((s) => sockets.push(s)); // never speaks TLS, never closes
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  h.closers.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  const port = (srv.address() as { port: number }).port;
  const { provider } = h.provider(
    { metadata: { provider: "apiserver", apiserverUrl: `https://127.0.0.1:${port}`, caFile: h.pki.ca.certFile }, node: { name: NODE } },
    { apiserver: { requestTimeoutMs: 300, backoffInitialMs: 50, backoffMaxMs: 100 } },
  );
  const t0 = Date.now();
  await provider.start();
  expect(Date.now() - t0).toBeLessThan(3000);
  expect(provider.status()).toMatchObject({ synced: false, failing: true });
  expect(provider.status().lastError).toContain("no answer within 300 ms");
  await until(() => sockets.length >= 2, 3000, "a retry");
});

describe("configuration errors are MetadataConfigError, naming the key", () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ["apiserver without NODE_NAME", () => h.provider({ metadata: { provider: "apiserver", apiserverUrl: "https://127.0.0.1:1" } }), /node\.name: NODE_NAME is required/],
    ["apiserver outside a cluster", () => h.provider({ metadata: { provider: "apiserver" }, node: { name: NODE } }), /KUBERNETES_SERVICE_HOST\/PORT unset/],
    [
      "in-cluster without the service account CA",
      () => h.provider({ metadata: { provider: "apiserver" }, node: { name: NODE } }, { env: { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" } }),
      /metadata\.caFile \(default: the service account's ca\.crt\): cannot read \/nonexistent\/ca\.crt: ENOENT/,
    ],
    ["unreadable caFile", () => h.provider({ metadata: { provider: "apiserver", apiserverUrl: "https://x:1", caFile: "/nonexistent/ca.crt" }, node: { name: NODE } }), /metadata\.caFile: cannot read/],
    ["caFile that is not PEM", () => h.provider({ metadata: { provider: "apiserver", apiserverUrl: "https://x:1", caFile: "/etc/hostname" }, node: { name: NODE } }), /not a PEM file/],
    ["unreadable tokenFile", () => h.provider({ metadata: { provider: "kubelet", kubeletUrl: "https://x:1", tokenFile: "/nonexistent/t" } }), /metadata\.tokenFile: cannot read/],
    ["kubelet without NODE_IP", () => h.provider({ metadata: { provider: "kubelet" } }), /metadata\.kubeletUrl: required when NODE_IP/],
    [
      "apiserver with kubeletFallback without NODE_IP",
      () => h.provider({ metadata: { provider: "apiserver", apiserverUrl: "https://127.0.0.1:1", kubeletFallback: true }, node: { name: NODE } }),
      /metadata\.kubeletUrl: required when NODE_IP \(node\.ip\) is unset for provider kubelet or metadata\.kubeletFallback/,
    ],
    ["static without podsFile", () => h.provider({ metadata: { provider: "static" } }), /metadata\.podsFile: required/],
    ["missing kubeconfig", () => h.provider({ metadata: { provider: "apiserver", kubeconfig: "/nonexistent/kc" }, node: { name: NODE } }), /metadata\.kubeconfig: cannot read \/nonexistent\/kc/],
    [
      "kubeconfig with an exec plugin",
      () => h.provider({ metadata: { provider: "apiserver", kubeconfig: kubeconfig(h.tmp(), { server: "https://x" }, { exec: { command: "aws" } }) }, node: { name: NODE } }),
      /exec\/auth-provider plugin/,
    ],
    [
      "kubeconfig client certificate without key",
      () => h.provider({ metadata: { provider: "apiserver", kubeconfig: kubeconfig(h.tmp(), { server: "https://x" }, { "client-certificate-data": b64(h.pki.client.cert) }) }, node: { name: NODE } }),
      /client certificate without its key/,
    ],
  ];
  for (const [name, make, message] of cases) {
    test(name, () => {
      let err: unknown;
      try {
        make();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MetadataConfigError);
      expect((err as Error).message).toMatch(message);
    });
  }
});
