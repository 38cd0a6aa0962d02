// Between the source and the ring: decides per file whether to read it (metadata gating,
// docs/metadata.md "Selection"), runs each line through the compiled chain, and counts what it
// filters.
//
// Records are written back to back into one reused buffer and appended with one appendPacked.
// A line the reader kept as byte ranges (LineBatch) is written from its bytes (the byte path);
// one the byte path refuses (not valid UTF-8, an odd timestamp) and every MergedLine take the
// string path — encode, then UTF-8 into the same buffer. Both give the same bytes.
import type { PackedRecords } from "../buffer/types.ts";
import type { Config } from "../config/schema.ts";
import type { PodCache } from "../metadata/cache.ts";
import { decidePod, type SelectionRules, selectionRulesFromConfig } from "../metadata/selection.ts";
import type { MetadataProvider, PodMeta } from "../metadata/types.ts";
import { LineBatch } from "../source/line-reader.ts";
import type { MergedLine } from "../source/partial.ts";
import type { FileDecision, SourceFileInfo } from "../source/source.ts";
import { compileEncoder, FILTER_REASONS, type FilterReason, type RecordEncoder, transform } from "./chain.ts";
import { RecordBuffer } from "./packed.ts";

export interface RouterCounters {
  eventsRead: number;
  eventsFiltered: Record<FilterReason, number>;
  eventsAppended: number;
  bytesAppended: number;
}

/**
 * Where the encoded records go: the ring's appendPacked, with its backpressure. It must copy the
 * records before it returns (not resolves): the router writes the next emit's into the same memory.
 */
export interface RecordSink {
  appendPacked(records: PackedRecords): Promise<number>;
  lastSeq(): number;
}

const NO_METADATA: RecordEncoder = { fileReason: "no-metadata", encode: () => null, writeBytes: () => false };

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
  /** Every emit's records, reused (the sink copies them before appendPacked returns). */
  private readonly records = new RecordBuffer();
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

  /**
   * Encodes and appends a file's lines; resolves with the ring sequence number covering them.
   * All encoding happens before the first await: a LineBatch's ranges are read before this returns.
   */
  async emit(file: SourceFileInfo, lines: LineBatch | readonly MergedLine[]): Promise<number> {
    const n = lines.length;
    if (n === 0) return this.sink.lastSeq();
    const c = this.counters;
    c.eventsRead += n;
    const encoder = this.encoderFor(file);
    if (encoder.fileReason) {
      c.eventsFiltered[encoder.fileReason] += n;
      return this.sink.lastSeq();
    }
    const out = this.records;
    out.clear();
    if (lines instanceof LineBatch) this.encodeBatch(encoder, lines, out);
    else for (const line of lines) this.encodeLine(encoder, line, out);
    const count = out.count;
    if (count === 0) return this.sink.lastSeq();
    c.bytesAppended += out.at;
    const seq = await this.sink.appendPacked(out);
    c.eventsAppended += count;
    return seq;
  }

  private encodeBatch(encoder: RecordEncoder, batch: LineBatch, out: RecordBuffer): void {
    const f = batch.fields;
    const chunks = batch.chunks;
    const W = LineBatch.FIELDS;
    for (let i = 0, at = 0; i < batch.count; i++, at += W) {
      const tag = f[at + 4] as number;
      if (tag < 0) this.encodeLine(encoder, batch.merged[-1 - tag] as MergedLine, out);
      else if (!encoder.writeBytes(chunks[tag >> 1] as Uint8Array, f[at] as number, f[at + 1] as number, (tag & 1) === 1, f[at + 2] as number, f[at + 3] as number, out)) {
        this.encodeLine(encoder, batch.line(i), out); // decoded as the string path decodes it
      }
    }
  }

  /** The string path: one line's record, or a missing-timestamp count. */
  private encodeLine(encoder: RecordEncoder, line: MergedLine, out: RecordBuffer): void {
    const json = encoder.encode(line.timestamp, line.stream, line.message);
    if (json === null) {
      this.counters.eventsFiltered["missing-timestamp"]++;
      return;
    }
    out.writeString(json);
    out.end();
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
