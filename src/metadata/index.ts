// The metadata stage's entry point: the provider chosen by config.metadata.provider, feeding a
// PodCache the source and the chain read from.
import { statSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { type Logger, log as rootLog } from "../log.ts";
import type { PodCache } from "./cache.ts";
import { MetadataConfigError } from "./errors.ts";
import { StaticProvider } from "./static-provider.ts";
import type { MetadataProvider } from "./types.ts";

export { PodCache } from "./cache.ts";
export { MetadataConfigError } from "./errors.ts";
export { decidePod, selectionRulesFromConfig } from "./selection.ts";
export type { PodDecision, SelectionRules } from "./selection.ts";
export type { MetadataProvider, MetadataProviderStatus, PodMeta } from "./types.ts";

/** Throws MetadataConfigError when the chosen provider lacks what it needs. */
export function createMetadataProvider(config: Config, cache: PodCache, log: Logger = rootLog): MetadataProvider {
  const m = config.metadata;
  const plog = log.child({ stage: "metadata", provider: m.provider });
  switch (m.provider) {
    case "static": {
      if (!m.podsFile) throw new MetadataConfigError("metadata.podsFile: required when metadata.provider is static");
      requireFile(m.podsFile, "metadata.podsFile");
      return new StaticProvider({ podsFile: m.podsFile }, cache, plog);
    }
    default:
      throw new MetadataConfigError(`metadata.provider: ${m.provider} is not available in this build`);
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
