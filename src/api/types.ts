// What the local API reads from the running stages. Each stage keeps its own counters and status;
// /status and /metrics are built from them on request (src/api/status.ts, src/api/metrics.ts).
import type { PrefixTableHealth, PrefixTableStats } from "../buffer/prefix-table.ts";
import type { RingStats } from "../buffer/types.ts";
import type { MetadataProviderStatus } from "../metadata/types.ts";
import type { RouterCounters } from "../pipeline/router.ts";
import type { SenderStats } from "../sink/sender.ts";
import type { Source } from "../source/source.ts";
import type { Accounting } from "./accounting.ts";
import type { HealthVerdict } from "./health.ts";

/** The source as the API reads it: its counters, the files it follows and their state. */
export type SourceView = Pick<Source, "counters" | "filesWatched" | "fileStatus">;

/** Every value is read at the call, never cached. */
export interface StagesView {
  router(): RouterCounters;
  source(): SourceView;
  ring(): RingStats;
  /** The ring's prefix table (docs/ring-format.md "Compact records"). */
  prefixTable(): PrefixTableStats & PrefixTableHealth;
  /** Totals across every sender of this process (a SIGHUP may replace it). */
  sender(): SenderStats;
  metadata(): MetadataProviderStatus;
  /** Sampled now (a change of reasons is logged by the sampler). */
  health(): HealthVerdict;
  accounting(): Accounting;
}
