import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigSchema } from "../../src/config/schema.ts";
import { createMetadataProvider, MetadataConfigError, PodCache } from "../../src/metadata/index.ts";
import type { MetadataProvider } from "../../src/metadata/types.ts";
import { makeArgoPod, makePod, makePodList } from "../support/podlist.ts";
import { memoryLogger, until } from "./helpers.ts";

const quiet = memoryLogger();
const dirs: string[] = [];
const providers: MetadataProvider[] = [];
afterEach(async () => {
  for (const p of providers.splice(0)) await p.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "pk-static-"));
  dirs.push(d);
  return d;
}

function staticProvider(podsFile: string | null, cache: PodCache): MetadataProvider {
  const config = ConfigSchema.parse({ metadata: { provider: "static", podsFile } });
  const p = createMetadataProvider(config, cache, quiet);
  providers.push(p);
  return p;
}

const FIXTURE = join(import.meta.dir, "../fixtures/argo-node-podlist.json");

describe("static provider", () => {
  test("loads the Argo node fixture", async () => {
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    const p = staticProvider(FIXTURE, cache);
    await p.start();
    const fixture = JSON.parse(readFileSync(FIXTURE, "utf8"));
    expect(cache.counts().podsKnown).toBe(fixture.items.length);
    const argo = cache.get("5f0c9a7e-2b1d-4c8e-9f3a-7d6e5c4b3a21");
    expect(argo?.name).toBe("ci-build-7xk2p-compile-3470861234");
    expect(argo?.annotations["workflows.argoproj.io/node-id"]).toBe("ci-build-7xk2p-3470861234");
    expect(cache.get("a3d1e2f4-5b6c-4d7e-8f90-1a2b3c4d5e6f")?.namespace).toBe("kube-system");
    expect(p.status()).toMatchObject({ provider: "static", synced: true, failing: false, podsKnown: fixture.items.length });
  });

  test("reloads on an in-place write and on a rename into place; removed pods become tombstones", async () => {
    const dir = tmp();
    const file = join(dir, "pods.json");
    const a = makeArgoPod({ workflow: "wf", step: "a" });
    const b = makeArgoPod({ workflow: "wf", step: "b" });
    writeFileSync(file, JSON.stringify(makePodList([a])));
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    const p = staticProvider(file, cache);
    await p.start();
    expect(cache.get(a.metadata.uid)).toBeDefined();
    const changed: string[] = [];
    cache.onChange((u) => changed.push(u));

    writeFileSync(file, JSON.stringify(makePodList([a, b])));
    await until(() => cache.get(b.metadata.uid) !== undefined);

    const next = join(dir, ".pods.json.tmp");
    writeFileSync(next, JSON.stringify(makePodList([b])));
    renameSync(next, file);
    await until(() => cache.isDeleted(a.metadata.uid));
    expect(cache.get(a.metadata.uid)?.name).toBe(a.metadata.name); // still enriches until swept
    expect(changed).toContain(b.metadata.uid);
    expect(changed).toContain(a.metadata.uid);
    expect(p.status().counters.reloads).toBeGreaterThanOrEqual(3);
  });

  test("a broken file keeps the previous pods and reports failing until fixed", async () => {
    const dir = tmp();
    const file = join(dir, "pods.json");
    const a = makePod({ name: "x", uid: "uid-x" });
    writeFileSync(file, JSON.stringify(makePodList([a])));
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    const p = staticProvider(file, cache);
    await p.start();
    writeFileSync(file, '{"kind":"PodList","items":[');
    await until(() => p.status().failing);
    expect(p.status().lastError).toContain("not a valid PodList");
    expect(cache.get("uid-x")).toBeDefined();
    expect(cache.isDeleted("uid-x")).toBe(false);
    writeFileSync(file, JSON.stringify(makePodList([a, makePod({ name: "y", uid: "uid-y" })])));
    await until(() => !p.status().failing);
    expect(cache.get("uid-y")?.name).toBe("y");
  });

  test("items without uid are counted, not fatal; a non-PodList is refused", async () => {
    const dir = tmp();
    const file = join(dir, "pods.json");
    writeFileSync(file, JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: {}, items: [{ metadata: { name: "no-uid" } }, makePod({ name: "ok", uid: "u-ok" })] }));
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    const p = staticProvider(file, cache);
    await p.start();
    expect(cache.counts().podsKnown).toBe(1);
    expect(p.status().counters.invalidPods).toBe(1);

    const file2 = join(dir, "other.json");
    writeFileSync(file2, JSON.stringify({ kind: "ConfigMap", data: {} }));
    const p2 = staticProvider(file2, new PodCache({ deletionGraceSeconds: 60 }));
    await p2.start();
    expect(p2.status()).toMatchObject({ synced: false, failing: true });
    expect(p2.status().lastError).toContain("expected kind PodList");
  });

  test("missing podsFile setting or file is a MetadataConfigError naming the key", () => {
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    expect(() => staticProvider(null, cache)).toThrow(MetadataConfigError);
    expect(() => staticProvider(null, cache)).toThrow(/metadata\.podsFile: required/);
    expect(() => staticProvider("/nonexistent/pods.json", cache)).toThrow(/metadata\.podsFile: cannot read \/nonexistent\/pods.json: ENOENT/);
  });
});
