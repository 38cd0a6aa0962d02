// The metadata stage's entry point: the provider chosen by config.metadata.provider, feeding a
// PodCache the source and the chain read from (docs/metadata.md).
import { statSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { type Logger, log as rootLog } from "../log.ts";
import { systemClock } from "../platform/clock.ts";
import type { Clock } from "../platform/types.ts";
import { ApiserverProvider, type ApiserverProviderOptions } from "./apiserver-provider.ts";
import type { PodCache } from "./cache.ts";
import { MetadataConfigError } from "./errors.ts";
import { type FetchLike, K8sClient } from "./k8s-client.ts";
import { KubeletFallback } from "./kubelet-fallback.ts";
import { type EndpointEnv, resolveApiserverEndpoint, resolveKubeletEndpoint, SERVICE_ACCOUNT_DIR } from "./k8s-endpoint.ts";
import { KubeletProvider } from "./kubelet-provider.ts";
import { StaticProvider } from "./static-provider.ts";
import type { MetadataProvider } from "./types.ts";

export { PodCache } from "./cache.ts";
export type { PodCacheCounts } from "./cache.ts";
export { MetadataConfigError } from "./errors.ts";
export { decidePod, selectionRulesFromConfig } from "./selection.ts";
export type { PodDecision, SelectionRules } from "./selection.ts";
export type { MetadataProvider, MetadataProviderStatus, PodMeta } from "./types.ts";

/** Knobs that are not config keys: the environment (tests), timings (tests, demo, benchmarks), time and transport (the fleet simulation). */
export interface MetadataProviderOverrides {
  env?: Record<string, string | undefined>;
  serviceAccountDir?: string;
  apiserver?: Omit<Partial<ApiserverProviderOptions>, "nodeName" | "kubeletFallback">;
  kubeletMinGapMs?: number;
  /** Delay before the kubelet fallback asks about an unknown pod (default 2 s). */
  kubeletFallbackDelayMs?: number;
  staticPollIntervalMs?: number;
  clock?: Clock;
  fetch?: FetchLike;
}

/** Throws MetadataConfigError when the chosen provider lacks what it needs (the CLI exits 2). */
export function createMetadataProvider(
  config: Config,
  cache: PodCache,
  log: Logger = rootLog,
  overrides: MetadataProviderOverrides = {},
): MetadataProvider {
  const m = config.metadata;
  const plog = log.child({ stage: "metadata", provider: m.provider });
  const env: EndpointEnv = { env: overrides.env ?? process.env, serviceAccountDir: overrides.serviceAccountDir ?? SERVICE_ACCOUNT_DIR };
  const clock = overrides.clock ?? systemClock;
  const client = (endpoint: ReturnType<typeof resolveApiserverEndpoint>) => new K8sClient(endpoint, { clock, fetch: overrides.fetch });
  switch (m.provider) {
    case "static": {
      if (!m.podsFile) throw new MetadataConfigError("metadata.podsFile: required when metadata.provider is static");
      requireFile(m.podsFile, "metadata.podsFile");
      return new StaticProvider({ podsFile: m.podsFile, pollIntervalMs: overrides.staticPollIntervalMs }, cache, plog, clock);
    }
    case "apiserver": {
      if (!config.node.name) {
        throw new MetadataConfigError(
          "node.name: NODE_NAME is required for metadata.provider apiserver (set it from spec.nodeName with the downward API)",
        );
      }
      const endpoint = resolveApiserverEndpoint(m, env);
      plog.info("metadata: API server", { server: endpoint.server, via: endpoint.description, node: config.node.name });
      let kubeletFallback: KubeletFallback | null = null;
      if (m.kubeletFallback) {
        const kubelet = resolveKubeletEndpoint(m, config.node.ip, env);
        plog.info("metadata: kubelet fallback for pods the API server never showed", { server: kubelet.server });
        kubeletFallback = new KubeletFallback(client(kubelet), cache, clock, plog, { delayMs: overrides.kubeletFallbackDelayMs });
      }
      const options: ApiserverProviderOptions = {
        reconnectWindowMs: m.reconnectWindowSeconds * 1000,
        ...overrides.apiserver,
        nodeName: config.node.name,
        kubeletFallback,
      };
      return new ApiserverProvider(client(endpoint), options, cache, plog, clock);
    }
    case "kubelet": {
      const endpoint = resolveKubeletEndpoint(m, config.node.ip, env);
      plog.info("metadata: kubelet", { server: endpoint.server });
      return new KubeletProvider(client(endpoint), { pollIntervalMs: m.pollIntervalMs, minGapMs: overrides.kubeletMinGapMs }, cache, plog, clock);
    }
  }
}

export function requireFile(path: string, key: string): void {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    throw new MetadataConfigError(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!isFile) throw new MetadataConfigError(`${key}: ${path} is not a file`);
}
