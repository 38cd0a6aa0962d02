// Between the source and the ring: decides per file whether to read it (metadata gating,
// docs/metadata.md "Selection"), runs each line through the compiled chain, and counts what it
// filters.
//
// Records are written back to back into one reused buffer and appended with one appendPacked.
// A line the source kept as byte ranges (a CRI line's raw content, a docker line's escaped content)
// is written from its bytes (the byte path); one the byte path refuses (not valid UTF-8, an odd
// timestamp) and every merged line take the string path — encode, then UTF-8 into the same buffer.
// Both give the same bytes.
import type { PackedRecords } from "../buffer/types.ts";
import type { Config } from "../config/schema.ts";
import type { PodCache } from "../metadata/cache.ts";
import { decidePod, type SelectionRules, selectionRulesFromConfig } from "../metadata/selection.ts";
import type { MetadataProvider, PodMeta } from "../metadata/types.ts";
import type { EscapedRangeVisitor } from "../source/line-batch.ts";
import type { FileDecision, Lines, MergedLine, SourceFileInfo } from "../source/types.ts";
import { compactHead } from "../buffer/compact-record.ts";
import { compileEncoder, FILTER_REASONS, type FilterReason, filteredEncoder, missingIdentity, type RecordEncoder, recordHead, transform } from "./chain.ts";
import { RecordBuffer } from "./packed.ts";
import { systemClock } from "../platform/clock.ts";
import type { Clock } from "../platform/types.ts";
import { utf8ByteLength } from "../source/utf8.ts";

export interface RouterCounters {
  eventsRead: number;
  eventsFiltered: Record<FilterReason, number>;
  eventsAppended: number;
  bytesAppended: number;
  /** Records whose message was cut so that the record fits in the ring (JSON escaping can grow a line sixfold). */
  recordsCut: number;
}

/**
 * Where the encoded records go: the ring's appendPacked, with its backpressure. It must copy the
 * records before it returns (not resolves): the router writes the next emit's into the same memory.
 */
export interface RecordSink {
  appendPacked(records: PackedRecords): Promise<number>;
  lastSeq(): number;
  /** The largest record it can hold. */
  maxRecordBytes(): number;
}

/**
 * Where each file's constant record prefix is stored once (the prefix table, src/buffer/prefix-table.ts).
 * acquire() gives an id only for a prefix that is durable; null: store the records whole, the
 * prefix is queued for the table's next write and claimed until withdraw().
 */
export interface PrefixRegistry {
  acquire(prefix: string): number | null;
  withdraw(prefix: string): void;
  /** Changes when a write made queued prefixes durable. */
  generation(): number;
  /** A write of the queued prefixes is about to run (at the next yield to the event loop). */
  writeDue(): boolean;
  release(id: number): void;
  appending(id: number): void;
  appended(id: number, seq: number): void;
}

const NO_METADATA: RecordEncoder = filteredEncoder("no-metadata");
const WHOLE = { prefixId: 0, waiting: null, generation: 0 };

interface CachedEncoder {
  pod: PodMeta | undefined;
  encoder: RecordEncoder;
  /** The prefix id its records carry; 0: stored whole. */
  prefixId: number;
  /** The prefix it waits for (claimed in the table) while stored whole; null: none. */
  waiting: string | null;
  /** The table's generation when it started waiting: a new one may have made the prefix durable. */
  generation: number;
}

export class Router {
  readonly counters: RouterCounters = {
    eventsRead: 0,
    eventsFiltered: Object.fromEntries(FILTER_REASONS.map((r) => [r, 0])) as Record<FilterReason, number>,
    eventsAppended: 0,
    bytesAppended: 0,
    recordsCut: 0,
  };
  private readonly rules: SelectionRules;
  private readonly waitMs: number;
  private readonly encoders = new Map<string, CachedEncoder>();
  private readonly retained = new Set<string>();
  /** Every emit's records, reused (the sink copies them before appendPacked returns). */
  private readonly records = new RecordBuffer();
  private readonly writer: RecordWriter;

  constructor(
    private readonly config: Config,
    private readonly cache: PodCache,
    private readonly provider: Pick<MetadataProvider, "notifyUnknownPod">,
    private readonly sink: RecordSink,
    private readonly clock: Clock = systemClock,
    /** Without it every record is stored whole. */
    private readonly prefixes: PrefixRegistry | null = null,
  ) {
    this.writer = new RecordWriter(this.records, this.counters, sink.maxRecordBytes());
    this.rules = selectionRulesFromConfig(config);
    this.waitMs = config.metadata.waitForMetadataSeconds * 1000;
  }

  /**
   * While a file is open its pod's metadata must outlive a deletion — from the moment it is opened,
   * not its first turn: behind a full ring, a file may wait long for its first decision.
   */
  opened(file: SourceFileInfo): void {
    if (this.retained.has(file.id)) return;
    this.retained.add(file.id);
    this.cache.retain(file.podUid);
  }

  decide(file: SourceFileInfo, now: number): FileDecision {
    this.opened(file);
    const decision = decidePod(this.cache.get(file.podUid), this.rules);
    switch (decision.kind) {
      case "select":
        // A new prefix is written at the next yield: waiting one turn for it beats storing a
        // backlog's first slice whole (docs/ring-format.md "Compact records").
        return this.waitsForPrefixWrite(file) ? "hold" : "read";
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
   * All encoding happens before the first await: the lines' byte ranges are read before this returns.
   */
  async emit(file: SourceFileInfo, lines: Lines): Promise<number> {
    const n = lines.length;
    if (n === 0) return this.sink.lastSeq();
    const c = this.counters;
    c.eventsRead += n;
    const { encoder, prefixId } = this.encoderFor(file);
    if (encoder.fileReason) {
      c.eventsFiltered[encoder.fileReason] += n;
      return this.sink.lastSeq();
    }
    const out = this.records;
    out.clear();
    this.writer.begin(encoder, lines);
    lines.visit(this.writer);
    const count = out.count;
    if (count === 0) return this.sink.lastSeq();
    c.bytesAppended += out.at;
    const seq = prefixId ? await this.appendWithPrefix(prefixId, out) : await this.sink.appendPacked(out);
    c.eventsAppended += count;
    return seq;
  }

  closed(file: SourceFileInfo): void {
    this.dropEncoder(file.id);
    if (this.retained.delete(file.id)) this.cache.release(file.podUid, this.clock.now());
  }

  /** Tells the prefix table which sequence numbers use the prefix (it keeps the prefix while a restart may read them). */
  private async appendWithPrefix(prefixId: number, out: RecordBuffer): Promise<number> {
    const prefixes = this.prefixes as PrefixRegistry;
    prefixes.appending(prefixId);
    let seq = 0;
    try {
      seq = await this.sink.appendPacked(out);
    } finally {
      prefixes.appended(prefixId, seq);
    }
    return seq;
  }

  private waitsForPrefixWrite(file: SourceFileInfo): boolean {
    return this.prefixes !== null && this.encoderFor(file).waiting !== null && this.prefixes.writeDue();
  }

  /**
   * The compiled chain for a file, rebuilt whenever its pod's metadata object changes, and once
   * the prefix it waits for may be durable (then its records are stored compact).
   */
  private encoderFor(file: SourceFileInfo): CachedEncoder {
    const pod = this.cache.get(file.podUid);
    const cached = this.encoders.get(file.id);
    if (cached && cached.pod === pod && (cached.waiting === null || cached.generation === this.prefixes?.generation())) return cached;
    this.dropEncoder(file.id);
    const compiled = this.compile(pod, file.container);
    this.encoders.set(file.id, compiled);
    return compiled;
  }

  private compile(pod: PodMeta | undefined, container: string): CachedEncoder {
    if (!pod) return { pod, encoder: NO_METADATA, ...WHOLE };
    const identity = transform(pod, container, this.config.pipeline.fields);
    const prefixes = this.prefixes;
    if (!prefixes || missingIdentity(identity) !== null) return { pod, encoder: compileEncoder(identity, null), ...WHOLE };
    const head = recordHead(identity);
    const generation = prefixes.generation();
    // The only way to a compact head: an id acquire() gives for a durable prefix.
    const prefixId = prefixes.acquire(head);
    if (prefixId === null) return { pod, encoder: compileEncoder(identity, null), prefixId: 0, waiting: head, generation };
    return { pod, encoder: compileEncoder(identity, compactHead(prefixId)), prefixId, waiting: null, generation };
  }

  private dropEncoder(fileId: string): void {
    const cached = this.encoders.get(fileId);
    if (!cached) return;
    this.encoders.delete(fileId);
    if (cached.prefixId) this.prefixes?.release(cached.prefixId);
    else if (cached.waiting !== null) this.prefixes?.withdraw(cached.waiting);
  }
}

/**
 * Writes one emit's lines as records: from their bytes where the source kept bytes, else as strings.
 * A record larger than the ring can hold (a long line of characters JSON escapes sixfold) has its
 * message cut until it fits, and is counted.
 */
class RecordWriter implements EscapedRangeVisitor {
  private encoder: RecordEncoder = NO_METADATA;
  private lines: Lines | null = null;

  constructor(
    private readonly out: RecordBuffer,
    private readonly counters: RouterCounters,
    private readonly maxRecordBytes: number,
  ) {}

  begin(encoder: RecordEncoder, lines: Lines): void {
    this.encoder = encoder;
    this.lines = lines;
  }

  range(chunk: Uint8Array, tsStart: number, tsEnd: number, stderr: boolean, contentStart: number, contentEnd: number, index: number): void {
    this.fromBytes(chunk, tsStart, tsEnd, stderr, contentStart, contentEnd, index, false);
  }

  escapedRange(chunk: Uint8Array, tsStart: number, tsEnd: number, stderr: boolean, contentStart: number, contentEnd: number, index: number): void {
    this.fromBytes(chunk, tsStart, tsEnd, stderr, contentStart, contentEnd, index, true);
  }

  private fromBytes(chunk: Uint8Array, tsStart: number, tsEnd: number, stderr: boolean, contentStart: number, contentEnd: number, index: number, escaped: boolean): void {
    if (this.encoder.writeBytes(chunk, tsStart, tsEnd, stderr, contentStart, contentEnd, this.out, escaped)) {
      // The limit applies to the full record, as the sink sends it.
      if (this.out.lastRecordBytes + this.encoder.expansion <= this.maxRecordBytes) return;
      this.out.dropLast();
    }
    this.merged((this.lines as Lines).line(index)); // decoded as the string path decodes it
  }

  /** The string path: one line's record, or a missing-timestamp count. */
  merged(line: MergedLine): void {
    const json = this.encoder.encode(line.timestamp, line.stream, line.message);
    if (json === null) {
      this.counters.eventsFiltered["missing-timestamp"]++;
      return;
    }
    this.encoder.writeEncoded(json, this.out);
    if (this.out.lastRecordBytes + this.encoder.expansion > this.maxRecordBytes) this.cutToFit(line);
  }

  /** Replaces the last record with one whose message is the longest prefix that fits. */
  private cutToFit(line: MergedLine): void {
    this.out.dropLast();
    const fits = (units: number): string | null => {
      const json = this.encoder.encode(line.timestamp, line.stream, prefix(line.message, units)) as string;
      return utf8ByteLength(json) <= this.maxRecordBytes ? json : null;
    };
    let lo = 0;
    let hi = line.message.length;
    let best = fits(0);
    if (best === null) {
      this.counters.eventsFiltered["record-too-large"]++;
      return;
    }
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const json = fits(mid);
      if (json === null) hi = mid - 1;
      else {
        best = json;
        lo = mid;
      }
    }
    this.counters.recordsCut++;
    this.encoder.writeEncoded(best, this.out);
  }
}

/** The first `units` UTF-16 units of `s`, not ending inside a surrogate pair. */
function prefix(s: string, units: number): string {
  const c = s.charCodeAt(units - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? units - 1 : units);
}

