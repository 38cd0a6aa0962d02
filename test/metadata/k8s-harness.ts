// Shared set-up for provider tests: one PKI per file, a fake API server / kubelet over HTTPS on
// 127.0.0.1, a service-account dir (ca.crt + token) and the real provider built from a Config.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConfigInput, ConfigSchema } from "../../src/config/schema.ts";
import { createMetadataProvider, type MetadataProviderOverrides, PodCache } from "../../src/metadata/index.ts";
import type { MetadataProvider } from "../../src/metadata/types.ts";
import { FakeApiServer, type FakeApiServerOptions } from "../support/fake-apiserver.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { memoryLogger } from "./helpers.ts";

export const NODE = "worker-3";

export class Harness {
  readonly dirs: string[] = [];
  readonly closers: Array<() => Promise<void> | void> = [];
  readonly log = memoryLogger();
  pki!: TestPki;

  init(): void {
    this.pki = createTestPki();
  }

  tmp(): string {
    const d = mkdtempSync(join(tmpdir(), "pk-meta-"));
    this.dirs.push(d);
    return d;
  }

  /** A service-account mount with the test CA and this token. */
  serviceAccount(token: string): { dir: string; tokenFile: string } {
    const dir = this.tmp();
    writeFileSync(join(dir, "ca.crt"), this.pki.ca.cert);
    writeFileSync(join(dir, "token"), token);
    writeFileSync(join(dir, "namespace"), "pipekit");
    return { dir, tokenFile: join(dir, "token") };
  }

  async apiServer(tokens: string[] = ["sa-token-1"], options: Omit<FakeApiServerOptions, "cert" | "key" | "clientCa" | "tokens"> = {}): Promise<FakeApiServer> {
    const s = await FakeApiServer.start({ cert: this.pki.server.cert, key: this.pki.server.key, clientCa: this.pki.ca.cert, tokens, ...options });
    this.closers.push(() => s.close());
    return s;
  }

  provider(config: ConfigInput, overrides: MetadataProviderOverrides = {}, cache = new PodCache({ deletionGraceSeconds: 60 })): { provider: MetadataProvider; cache: PodCache } {
    const provider = createMetadataProvider(ConfigSchema.parse(config), cache, this.log, { env: {}, serviceAccountDir: "/nonexistent", ...overrides });
    this.closers.push(() => provider.stop());
    return { provider, cache };
  }

  /** The in-cluster apiserver provider against a fake, with short timings. */
  inCluster(api: FakeApiServer, sa: { dir: string }, apiserver: MetadataProviderOverrides["apiserver"] = {}, cache?: PodCache) {
    return this.provider(
      { metadata: { provider: "apiserver" }, node: { name: NODE } },
      {
        env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(api.port) },
        serviceAccountDir: sa.dir,
        apiserver: { backoffInitialMs: 50, backoffMaxMs: 300, reconnectWindowMs: 100, ...apiserver },
      },
      cache,
    );
  }

  async cleanup(): Promise<void> {
    for (const c of this.closers.splice(0).reverse()) await c();
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }

  dispose(): void {
    this.pki?.cleanup();
  }
}
