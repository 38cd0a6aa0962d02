// Between the source and the ring: decides per file whether to read it (metadata gating,
// SPEC §2.3), runs each line through the compiled chain, and counts what it filters.
import type { Config } from "../config/schema.ts";
import type { PodCache } from "../metadata/cache.ts";
import { decidePod, type SelectionRules, selectionRulesFromConfig } from "../metadata/selection.ts";
import type { MetadataProvider, PodMeta } from "../metadata/types.ts";
import type { MergedLine } from "../source/partial.ts";
import type { FileDecision, SourceFileInfo } from "../source/source.ts";
import { compileEncoder, FILTER_REASONS, type FilterReason, type RecordEncoder, transform } from "./chain.ts";

export interface RouterCounters {
  eventsRead: number;
  eventsFiltered: Record<FilterReason, number>;
  eventsAppended: number;
  bytesAppended: number;
}

/** Where the encoded records go: the ring's append, with its backpressure. */
export interface RecordSink {
  append(payloads: readonly Uint8Array[]): Promise<number>;
  lastSeq(): number;
}

const NO_METADATA: RecordEncoder = { fileReason: "no-metadata", encode: () => null };

interface CachedEncoder {
  pod: PodMeta | undefined;
  encoder: RecordEncoder;
}

export class Router {
  readonly counters: RouterCounters = {
    eventsRead: 0,
    eventsFiltered: Object.fromEntries(FILTER_REASONS.map((r) => [r, 0])) as Record<FilterReason, number>,
    eventsAppended: 0,
    bytesAppended: 0,
  };
  private readonly rules: SelectionRules;
  private readonly waitMs: number;
  private readonly encoders = new Map<string, CachedEncoder>();
  private readonly retained = new Set<string>();
  private readonly textEncoder = new TextEncoder();
  /** Files held at their last decision (waiting for metadata or labels). */
  private readonly heldIds = new Set<string>();

  constructor(
    private readonly config: Config,
    private readonly cache: PodCache,
    private readonly provider: Pick<MetadataProvider, "notifyUnknownPod">,
    private readonly sink: RecordSink,
  ) {
    this.rules = selectionRulesFromConfig(config);
    this.waitMs = config.metadata.waitForMetadataSeconds * 1000;
  }

  /** Files currently held waiting for metadata or labels. */
  get held(): number {
    return this.heldIds.size;
  }

  decide(file: SourceFileInfo, now: number): FileDecision {
    const d = this.decideFile(file, now);
    if (d === "hold") this.heldIds.add(file.id);
    else this.heldIds.delete(file.id);
    return d;
  }

  private decideFile(file: SourceFileInfo, now: number): FileDecision {
    if (!this.retained.has(file.id)) {
      // While a file is open its pod's metadata must outlive a deletion.
      this.retained.add(file.id);
      this.cache.retain(file.podUid);
    }
    const decision = decidePod(this.cache.get(file.podUid), this.rules);
    switch (decision.kind) {
      case "select":
        return "read";
      case "not-selected":
        return "skip";
      case "unknown":
        if (now - file.firstSeenAt < this.waitMs) {
          this.provider.notifyUnknownPod(file.podUid);
          return "hold";
        }
        return "read"; // its lines are filtered as no-metadata
      case "incomplete":
        return now - file.firstSeenAt < this.waitMs ? "hold" : "read";
    }
  }

  /** Encodes and appends a file's lines; resolves with the ring sequence number covering them. */
  async emit(file: SourceFileInfo, lines: MergedLine[]): Promise<number> {
    if (lines.length === 0) return this.sink.lastSeq();
    const c = this.counters;
    c.eventsRead += lines.length;
    const encoder = this.encoderFor(file);
    if (encoder.fileReason) {
      c.eventsFiltered[encoder.fileReason] += lines.length;
      return this.sink.lastSeq();
    }
    const payloads: Uint8Array[] = [];
    for (const line of lines) {
      const json = encoder.encode(line.timestamp, line.stream, line.message);
      if (json === null) {
        c.eventsFiltered["missing-timestamp"]++;
        continue;
      }
      const bytes = this.textEncoder.encode(json);
      c.bytesAppended += bytes.length;
      payloads.push(bytes);
    }
    if (payloads.length === 0) return this.sink.lastSeq();
    const seq = await this.sink.append(payloads);
    c.eventsAppended += payloads.length;
    return seq;
  }

  closed(file: SourceFileInfo): void {
    this.heldIds.delete(file.id);
    this.encoders.delete(file.id);
    if (this.retained.delete(file.id)) this.cache.release(file.podUid);
  }

  /** The compiled chain for a file, rebuilt whenever its pod's metadata object changes. */
  private encoderFor(file: SourceFileInfo): RecordEncoder {
    const pod = this.cache.get(file.podUid);
    const cached = this.encoders.get(file.id);
    if (cached && cached.pod === pod) return cached.encoder;
    const encoder = pod ? compileEncoder(transform(pod, file.container, this.config.pipeline.fields)) : NO_METADATA;
    this.encoders.set(file.id, { pod, encoder });
    return encoder;
  }
}
