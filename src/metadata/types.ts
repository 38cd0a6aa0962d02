// Pod metadata as the rest of the collector sees it (docs/metadata.md). Providers feed one PodCache
// keyed by pod UID; the source and the chain only read from it.

export interface PodMeta {
  uid: string;
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

export interface MetadataProviderStatus {
  provider: "apiserver" | "kubelet" | "static";
  /** True once a first full list/poll/load succeeded. */
  synced: boolean;
  /** True while the provider cannot reach its source (for the pipeline's health reasons). */
  failing: boolean;
  lastSyncAt: string | null;
  lastError: string | null;
  podsKnown: number;
  tombstones: number;
  /** Provider-specific counters (watch restarts, relists, polls, errors...). */
  counters: Record<string, number>;
}

export interface MetadataProvider {
  readonly name: MetadataProviderStatus["provider"];
  /** Starts feeding the cache. Resolves after the first sync attempt; transient failures do not reject. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A file of a pod UID the cache does not know appeared: providers that poll may poll sooner. */
  notifyUnknownPod(uid: string): void;
  status(): MetadataProviderStatus;
}
