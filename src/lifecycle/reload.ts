// SIGHUP: applies what can change safely from a re-read config and says what needs a restart
// (README "Command line"). Applied at once: the log level, the health thresholds, the shutdown
// deadline, the static provider's pods file, the messenger settings (a new sender) and the API key
// file (re-read). Everything else keeps its running value until a restart.
import type { Config } from "../config/schema.ts";
import { type Logger, setLogLevel } from "../log.ts";
import type { MetadataProvider } from "../metadata/types.ts";
import type { Sender, SenderStats } from "../sink/sender.ts";
import type { HealthThresholds } from "../api/health.ts";
import type { Swappable } from "./swappable.ts";

export interface ReloadResult {
  applied: string[];
  needsRestart: string[];
}

export interface ReloadRecord extends ReloadResult {
  at: string;
}

export interface ReloadParts {
  /** The effective config: replaced by what the reload applied. */
  config: Swappable<Config>;
  provider: Swappable<MetadataProvider>;
  makeProvider(config: Config): MetadataProvider;
  sender: Swappable<Sender>;
  makeSender(config: Config): Sender;
  /** Hands what a stopped sender held unacknowledged to its successor, before anything new. */
  tap: { rewind(): void };
  /** Keeps the counts of a replaced sender (counters never go down). */
  totals: { retire(stats: SenderStats): void };
  health: { setThresholds(t: HealthThresholds): void };
  thresholds(config: Config): HealthThresholds;
  /** The key, from the config or its file, is redacted from every log line. */
  registerSecrets(config: Config): void;
  log: Logger;
}

/** Sections read once at start: a change to them needs a restart. */
const FIXED_SECTIONS = ["source", "buffer", "api", "node", "pipeline"] as const;

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export class Reloader {
  /** The outcome of the last reload, for /status. */
  last: ReloadRecord | null = null;

  constructor(private readonly parts: ReloadParts) {}

  async reload(next: Config): Promise<ReloadResult> {
    const r: ReloadResult = { applied: [], needsRestart: [] };
    const prev = this.parts.config.get();
    if (next.log.level !== prev.log.level) {
      setLogLevel(next.log.level);
      r.applied.push(`log.level: ${prev.log.level} → ${next.log.level}`);
    }
    if (!same(next.health, prev.health)) {
      this.parts.health.setThresholds(this.parts.thresholds(next));
      r.applied.push("health");
    }
    if (next.shutdownTimeoutMs !== prev.shutdownTimeoutMs) r.applied.push("shutdownTimeoutMs");
    next = await this.reloadMetadata(next, prev, r);
    this.parts.registerSecrets(next);
    if (next.dataDir !== prev.dataDir) r.needsRestart.push("dataDir");
    next = await this.reloadMessenger(next, prev, r);
    for (const key of FIXED_SECTIONS) if (!same(next[key], prev[key])) r.needsRestart.push(key);
    let effective: Config = { ...next, dataDir: prev.dataDir, source: prev.source, buffer: prev.buffer, api: prev.api, node: prev.node, pipeline: prev.pipeline };
    if (r.needsRestart.some((k) => k.startsWith("metadata"))) effective = { ...effective, metadata: prev.metadata };
    this.parts.config.swap(effective);
    this.last = { at: new Date().toISOString(), ...r };
    return r;
  }

  /**
   * A static provider's pods file can be swapped (the new one replaces the cache's contents);
   * anything else changes how the cluster is reached. Returns `next` as far as it applies.
   */
  private async reloadMetadata(next: Config, prev: Config, r: ReloadResult): Promise<Config> {
    const { podsFile: nextPods, ...nextMeta } = next.metadata;
    const { podsFile: prevPods, ...prevMeta } = prev.metadata;
    if (!same(nextMeta, prevMeta)) {
      r.needsRestart.push("metadata");
      return next;
    }
    if (nextPods === prevPods || next.metadata.provider !== "static") return next;
    try {
      const replacement = this.parts.makeProvider(next);
      await this.parts.provider.get().stop();
      this.parts.provider.swap(replacement);
      await replacement.start();
      r.applied.push(`metadata.podsFile: ${nextPods}`);
      return next;
    } catch (err) {
      this.parts.log.error("cannot switch to the new pods file; keeping the old one", { error: err as Error });
      return { ...next, metadata: prev.metadata };
    }
  }

  /**
   * The key file is re-read always; other settings take a new sender, which gets the records its
   * predecessor held unacknowledged first (at least once: a request in flight during the swap may
   * be sent again). Returns `next` as far as it applies.
   */
  private async reloadMessenger(next: Config, prev: Config, r: ReloadResult): Promise<Config> {
    if (same(next.messenger, prev.messenger)) {
      this.parts.sender.get().reloadApiKey();
      if (next.messenger.apiKeyFile) r.applied.push("messenger.apiKeyFile re-read");
      return next;
    }
    if (!next.messenger.baseUri) {
      r.needsRestart.push("messenger (baseUri missing in the new config; keeping the old settings)");
      return { ...next, messenger: prev.messenger };
    }
    let replacement: Sender;
    try {
      replacement = this.parts.makeSender({ ...next, dataDir: prev.dataDir });
    } catch (err) {
      this.parts.log.error("new messenger settings refused; keeping the old ones", { error: err as Error });
      return { ...next, messenger: prev.messenger };
    }
    const old = this.parts.sender.get();
    await old.stop(); // in-flight requests are aborted; their records go to the successor
    this.parts.totals.retire(old.stats());
    this.parts.tap.rewind();
    this.parts.sender.swap(replacement);
    replacement.start();
    const m = next.messenger;
    const changed = (Object.keys(m) as Array<keyof Config["messenger"]>).filter((k) => !same(m[k], prev.messenger[k]));
    r.applied.push(`messenger: ${changed.join(", ")}`);
    return next;
  }
}
