// What the mock messenger (src/dev/mock-messenger.ts) has seen: the records it accepted, its
// distinct events, its counters and the log of the requests it answered.
import type { PipekitRecord } from "../pipeline/record.ts";

export interface MockMessengerStats {
  requests: number;
  /** Answers by status code, e.g. {"200": 12, "503": 3}. */
  byStatus: Record<string, number>;
  /** Events accepted, duplicates included. */
  eventsReceived: number;
  distinctEvents: number;
  duplicateEvents: number;
  batchesAccepted: number;
  /** Bytes of request bodies as they came on the wire / after decompression. */
  bytesReceivedWire: number;
  bytesReceivedRaw: number;
  gzipRequests: number;
  inFlight: number;
  maxInFlight: number;
  hanging: number;
  reorderedAnswers: number;
  /** The last refusal reason (for 400/401/413/415). */
  lastRejection: string | null;
}

/** One answered ingest request, for timing and ordering checks. */
export interface MockRequestLogEntry {
  /** Epoch ms when the answer was produced. */
  at: number;
  status: number;
  /** Events accepted by this request (0 unless 2xx). */
  events: number;
}

/** The request log keeps this many answers; it is trimmed back to it once it holds 20% more. */
const LOG_KEPT = 10_000;
const LOG_TRIM_AT = 12_000;

/** cyrb53: a fast, well-mixed 53-bit string hash (public domain). */
function hash53(str: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

function emptyStats(): MockMessengerStats {
  return {
    requests: 0, byStatus: {}, eventsReceived: 0, distinctEvents: 0, duplicateEvents: 0, batchesAccepted: 0,
    bytesReceivedWire: 0, bytesReceivedRaw: 0, gzipRequests: 0, inFlight: 0, maxInFlight: 0, hanging: 0,
    reorderedAnswers: 0, lastRejection: null,
  };
}

export class MessengerLedger {
  /** The live counters (replaced by reset(); read them through the ledger, never keep them). */
  stats: MockMessengerStats = emptyStats();
  private records: PipekitRecord[] = [];
  // Distinct events: by their JSON text, or (when records are not retained: the dev-messenger,
  // benchmarks) by a 53-bit hash of it, so that millions of events cost megabytes, not gigabytes.
  private distinct = new Set<string | number>();
  private log: MockRequestLogEntry[] = [];

  /** retain: keep accepted records for received(); counts are kept either way. */
  constructor(private readonly retain: boolean) {}

  requestStarted(): void {
    this.stats.requests++;
    this.stats.inFlight++;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
  }

  requestEnded(): void {
    this.stats.inFlight--;
  }

  /** Counts an answer by its status and logs it. */
  answered(status: number, events: number): void {
    this.stats.byStatus[String(status)] = (this.stats.byStatus[String(status)] ?? 0) + 1;
    this.log.push({ at: Date.now(), status, events });
    if (this.log.length > LOG_TRIM_AT) this.log = this.log.slice(-LOG_KEPT);
  }

  /** Keeps an accepted batch: its events counted, duplicates recognised. */
  accept(batch: PipekitRecord[]): void {
    this.stats.batchesAccepted++;
    for (const rec of batch) {
      this.stats.eventsReceived++;
      const text = JSON.stringify(rec);
      const key = this.retain ? text : hash53(text);
      if (this.distinct.has(key)) this.stats.duplicateEvents++;
      else this.distinct.add(key);
      if (this.retain) this.records.push(rec);
    }
    this.stats.distinctEvents = this.distinct.size;
  }

  received(): PipekitRecord[] {
    return this.records.slice();
  }

  snapshot(): MockMessengerStats {
    return { ...this.stats, byStatus: { ...this.stats.byStatus } };
  }

  requestLog(): MockRequestLogEntry[] {
    return this.log.length > LOG_KEPT ? this.log.slice(-LOG_KEPT) : this.log.slice();
  }

  /** Forgets received records and zeroes the counters. */
  reset(): void {
    this.records = [];
    this.distinct = new Set();
    this.stats = emptyStats();
    this.log = [];
  }
}
