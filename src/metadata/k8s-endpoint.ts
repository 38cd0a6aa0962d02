// Where the API server is and how to authenticate (docs/metadata.md "apiserver provider"):
//   kubeconfig   — current context's cluster and user (token, tokenFile, client certificate);
//   apiserverUrl — that URL, with caFile/tokenFile or the service account's when present;
//   in-cluster   — KUBERNETES_SERVICE_HOST/PORT with the service account's CA and token.
// metadata.apiserverUrl / caFile / tokenFile / insecureSkipTlsVerify override the kubeconfig.
// Everything is checked here, before anything runs: a problem is a MetadataConfigError (exit 2).
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { Config } from "../config/schema.ts";
import { MetadataConfigError } from "./errors.ts";
import type { K8sEndpoint } from "./k8s-client.ts";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface EndpointEnv {
  env: Record<string, string | undefined>;
  /** The service account mount (tests point it elsewhere). */
  serviceAccountDir: string;
}

function readPem(path: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new MetadataConfigError(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!text.includes("-----BEGIN ")) throw new MetadataConfigError(`${key}: ${path} is not a PEM file`);
  return text;
}

function checkReadable(path: string, key: string): void {
  try {
    readFileSync(path);
  } catch (err) {
    throw new MetadataConfigError(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function exists(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function named(list: unknown, name: string, what: string, file: string): Record<string, unknown> {
  if (!Array.isArray(list)) throw new MetadataConfigError(`metadata.kubeconfig: ${file} has no ${what}s list`);
  const hit = list.find((e) => isObj(e) && e.name === name);
  if (!isObj(hit)) throw new MetadataConfigError(`metadata.kubeconfig: ${file} has no ${what} named "${name}"`);
  const inner = hit[what];
  if (!isObj(inner)) throw new MetadataConfigError(`metadata.kubeconfig: ${file}: ${what} "${name}" has no ${what} section`);
  return inner;
}

function decodeData(v: unknown, field: string, file: string): string {
  if (typeof v !== "string") throw new MetadataConfigError(`metadata.kubeconfig: ${file}: ${field} must be a base64 string`);
  return Buffer.from(v, "base64").toString("utf8");
}

/** Reads a kubeconfig's current context into an endpoint (certs/keys inlined, token file kept). */
export function endpointFromKubeconfig(file: string): K8sEndpoint {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MetadataConfigError(`metadata.kubeconfig: cannot read ${file}: ${code ?? (err as Error).message}`);
  }
  if (!isObj(doc)) throw new MetadataConfigError(`metadata.kubeconfig: ${file} is not a kubeconfig`);
  const ctxName = doc["current-context"];
  if (typeof ctxName !== "string" || ctxName === "") throw new MetadataConfigError(`metadata.kubeconfig: ${file} has no current-context`);
  const ctx = named(doc.contexts, ctxName, "context", file);
  const cluster = named(doc.clusters, String(ctx.cluster), "cluster", file);
  const user = typeof ctx.user === "string" && ctx.user !== "" ? named(doc.users, ctx.user, "user", file) : {};
  const rel = (p: unknown, field: string): string => {
    if (typeof p !== "string" || p === "") throw new MetadataConfigError(`metadata.kubeconfig: ${file}: ${field} must be a path`);
    return isAbsolute(p) ? p : resolve(dirname(file), p);
  };

  if (typeof cluster.server !== "string" || !/^https?:\/\//.test(cluster.server)) {
    throw new MetadataConfigError(`metadata.kubeconfig: ${file}: cluster "${String(ctx.cluster)}" has no http(s) server`);
  }
  const ep: K8sEndpoint = {
    server: cluster.server.replace(/\/+$/, ""),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
    description: `kubeconfig ${file} (context ${ctxName})`,
  };
  if (cluster["certificate-authority-data"] !== undefined) ep.ca = decodeData(cluster["certificate-authority-data"], "certificate-authority-data", file);
  else if (cluster["certificate-authority"] !== undefined) ep.ca = readPem(rel(cluster["certificate-authority"], "certificate-authority"), "metadata.kubeconfig certificate-authority");

  if (user.exec !== undefined || user["auth-provider"] !== undefined) {
    throw new MetadataConfigError(
      `metadata.kubeconfig: ${file}: user "${String(ctx.user)}" uses an exec/auth-provider plugin, which the collector does not run; use a token, tokenFile or client certificate`,
    );
  }
  if (typeof user.token === "string" && user.token !== "") ep.token = user.token;
  if (user.tokenFile !== undefined) {
    ep.tokenFile = rel(user.tokenFile, "tokenFile");
    checkReadable(ep.tokenFile, "metadata.kubeconfig tokenFile");
  }
  if (user["client-certificate-data"] !== undefined) ep.cert = decodeData(user["client-certificate-data"], "client-certificate-data", file);
  else if (user["client-certificate"] !== undefined) ep.cert = readPem(rel(user["client-certificate"], "client-certificate"), "metadata.kubeconfig client-certificate");
  if (user["client-key-data"] !== undefined) ep.key = decodeData(user["client-key-data"], "client-key-data", file);
  else if (user["client-key"] !== undefined) ep.key = readPem(rel(user["client-key"], "client-key"), "metadata.kubeconfig client-key");
  if ((ep.cert === undefined) !== (ep.key === undefined)) {
    throw new MetadataConfigError(`metadata.kubeconfig: ${file}: user "${String(ctx.user)}" has a client certificate without its key (or the reverse)`);
  }
  if (typeof user.username === "string") {
    throw new MetadataConfigError(`metadata.kubeconfig: ${file}: basic auth (username/password) is not supported; use a token or client certificate`);
  }
  return ep;
}

/** The API server endpoint for the apiserver provider. */
export function resolveApiserverEndpoint(m: Config["metadata"], e: EndpointEnv): K8sEndpoint {
  const saCa = `${e.serviceAccountDir}/ca.crt`;
  const saToken = `${e.serviceAccountDir}/token`;
  let ep: K8sEndpoint;
  if (m.kubeconfig) {
    ep = endpointFromKubeconfig(m.kubeconfig);
    if (m.apiserverUrl) ep.server = m.apiserverUrl.replace(/\/+$/, "");
  } else if (m.apiserverUrl) {
    ep = { server: m.apiserverUrl.replace(/\/+$/, ""), insecureSkipTlsVerify: false, description: `apiserverUrl ${m.apiserverUrl}` };
    // Outside a pod there is no service account; inside one, use it unless told otherwise.
    if (!m.caFile && exists(saCa)) ep.ca = readPem(saCa, "service account ca.crt");
    if (!m.tokenFile && exists(saToken)) ep.tokenFile = saToken;
  } else {
    const host = e.env.KUBERNETES_SERVICE_HOST;
    const port = e.env.KUBERNETES_SERVICE_PORT;
    if (!host || !port) {
      throw new MetadataConfigError(
        "metadata: not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST/PORT unset); set metadata.apiserverUrl or metadata.kubeconfig, or use provider kubelet/static",
      );
    }
    ep = {
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      insecureSkipTlsVerify: false,
      description: "in-cluster service account",
    };
    if (!m.caFile) ep.ca = readPem(saCa, "metadata.caFile (default: the service account's ca.crt)");
    if (!m.tokenFile) {
      checkReadable(saToken, "metadata.tokenFile (default: the service account's token)");
      ep.tokenFile = saToken;
    }
  }
  applyOverrides(ep, m);
  return ep;
}

/** The kubelet endpoint: kubeletUrl or https://$NODE_IP:10250, service-account token and CA. */
export function resolveKubeletEndpoint(m: Config["metadata"], nodeIp: string | null, e: EndpointEnv): K8sEndpoint {
  let server: string;
  if (m.kubeletUrl) server = m.kubeletUrl.replace(/\/+$/, "");
  else if (nodeIp) server = `https://${nodeIp.includes(":") ? `[${nodeIp}]` : nodeIp}:10250`;
  else throw new MetadataConfigError("metadata.kubeletUrl: required when NODE_IP (node.ip) is unset for provider kubelet or metadata.kubeletFallback");
  const ep: K8sEndpoint = { server, insecureSkipTlsVerify: false, description: `kubelet ${server}` };
  const saCa = `${e.serviceAccountDir}/ca.crt`;
  const saToken = `${e.serviceAccountDir}/token`;
  // Kubelet serving certificates are often self-signed: the cluster CA only helps with
  // serverTLSBootstrap; otherwise caFile (the kubelet's cert) or insecureSkipTlsVerify.
  if (!m.caFile && !m.insecureSkipTlsVerify && exists(saCa)) ep.ca = readPem(saCa, "service account ca.crt");
  if (!m.tokenFile && exists(saToken)) ep.tokenFile = saToken;
  applyOverrides(ep, m);
  return ep;
}

function applyOverrides(ep: K8sEndpoint, m: Config["metadata"]): void {
  if (m.caFile) ep.ca = readPem(m.caFile, "metadata.caFile");
  if (m.tokenFile) {
    checkReadable(m.tokenFile, "metadata.tokenFile");
    ep.tokenFile = m.tokenFile;
    delete ep.token;
  }
  if (m.insecureSkipTlsVerify) ep.insecureSkipTlsVerify = true;
}
