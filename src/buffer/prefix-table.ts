// The prefix table (docs/ring-format.md "Compact records"): each file's constant record prefix —
// its identifiers, pod and container names and field names, up to `"timestamp":` — stored once
// in `<dataDir>/prefixes.json`, and referenced by id from the compact records in the ring.
//
// Crash safety: a new prefix is written to the file (whole, atomically, durably: DurableFiles)
// before any record that references it is appended, so a record never outlives its prefix: only a
// prefix the file holds has an id to hand out. New prefixes are not written one by one (a durable
// write costs milliseconds on the main thread, and a start may bring hundreds of containers):
// acquire() queues them and they are written together at the next yield to the event loop — the
// end of the source's turn — or, after a failed write, on a backoff timer. Until then their
// records are stored whole. Ids are never reused (nextId is kept in the file, and after a lost
// file it starts above every id the ring still holds), so a record can never be spliced onto
// another file's prefix. A prefix is dropped only when no record a restart could read again uses
// it (compaction, below).
//
// Pure apart from its DurableFiles port, the clock it schedules writes on, and the ring's durable
// read position it is given.
import type { Logger } from "../log.ts";
import { systemClock } from "../platform/clock.ts";
import type { Clock, DurableFiles, Timer } from "../platform/types.ts";
import { type CompactHead, MAX_PREFIX_ID, readCompactHead } from "./compact-record.ts";

export const PREFIX_TABLE_FILE = "prefixes.json";
/** Compaction keeps the table within twice its live prefixes, and never bothers below this. */
const COMPACT_ABOVE = 32;
/** After a failed write, the queued prefixes are tried again after this, doubling up to the max. */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

interface Entry {
  id: number;
  text: string;
  bytes: Uint8Array;
  /** Encoders using it now (they will append more records with it). */
  pins: number;
  /** Appends under way with it (their sequence numbers are not known yet). */
  appending: number;
  /** The highest sequence number of a record known to use it (0: none in the ring). */
  lastSeq: number;
}

export interface PrefixTableStats {
  /** Prefixes in the table, and writes of its file (and failed ones: records were stored whole). */
  prefixes: number;
  writes: number;
  writeFailures: number;
  /** Milliseconds spent writing the file (a new prefix: a new container or a metadata change). */
  writeMs: number;
  /** Unread records at open whose prefix the table does not hold (a damaged or lost table). */
  unknownAtOpen: number;
}

/** Writes failing since (epoch ms; null: fine, or nothing waits to be written), and why (an errno code). */
export interface PrefixTableHealth {
  failingSince: number | null;
  lastError: string | null;
}

/** Which prefix a stored record needs (the sink's view of the table). */
export interface PrefixLookup {
  prefix(id: number): Uint8Array | undefined;
}

const te = new TextEncoder();

/** Parses the file's text; throws with the reason when it is not a prefix table. */
export function decodePrefixTable(text: string): { nextId: number; prefixes: Array<[number, string]> } {
  const doc = JSON.parse(text) as { format?: unknown; nextId?: unknown; prefixes?: unknown };
  if (doc === null || typeof doc !== "object" || doc.format !== 1) throw new Error("not a prefix table (format 1)");
  const nextId = doc.nextId;
  if (typeof nextId !== "number" || !Number.isSafeInteger(nextId) || nextId < 1 || nextId > MAX_PREFIX_ID + 1) throw new Error("bad nextId");
  if (doc.prefixes === null || typeof doc.prefixes !== "object") throw new Error("no prefixes");
  const prefixes: Array<[number, string]> = [];
  for (const [key, value] of Object.entries(doc.prefixes as Record<string, unknown>)) {
    const id = Number(key);
    if (!Number.isSafeInteger(id) || id < 1 || id >= nextId || String(id) !== key) throw new Error(`bad prefix id ${JSON.stringify(key)}`);
    if (typeof value !== "string" || !value.startsWith("{") || !value.endsWith(":")) throw new Error(`bad prefix ${id}`);
    prefixes.push([id, value]);
  }
  return { nextId, prefixes };
}

export function encodePrefixTable(nextId: number, entries: Iterable<{ id: number; text: string }>): string {
  const prefixes: Record<string, string> = {};
  for (const e of entries) prefixes[e.id] = e.text;
  return JSON.stringify({ format: 1, nextId, prefixes });
}

export class PrefixTable implements PrefixLookup {
  private readonly byId = new Map<number, Entry>();
  private readonly byText = new Map<string, Entry>();
  private nextId = 1;
  private readonly path: string;
  /** Prefixes encoders wait for, with how many wait (acquire() returned null; withdraw() ends it). */
  private readonly claims = new Map<string, number>();
  /** A write is queued for the next yield to the event loop. */
  private writeQueued = false;
  private retry: Timer | null = null;
  private retryMs = RETRY_MIN_MS;
  /** Counts writes that added prefixes: an acquire() that returned null may succeed after it changes. */
  private written = 0;
  private readonly onWrittenFns: Array<() => void> = [];
  readonly counters: PrefixTableStats = { prefixes: 0, writes: 0, writeFailures: 0, writeMs: 0, unknownAtOpen: 0 };
  readonly health: PrefixTableHealth = { failingSince: null, lastError: null };

  /**
   * Loads the table. A damaged file is kept as `prefixes.json.invalid-<ms>` and an error logged;
   * the records that need its prefixes are then reported as corrupt when read, nothing else.
   */
  constructor(
    private readonly files: DurableFiles,
    private readonly log: Logger,
    /** The read position of the ring's last durable header: a restart reads nothing older. */
    private readonly durableReadSeq: () => number,
    private readonly clock: Pick<Clock, "now" | "after" | "soon"> = systemClock,
  ) {
    this.path = files.pathOf(PREFIX_TABLE_FILE);
    let text: string | null;
    try {
      text = files.read(PREFIX_TABLE_FILE);
    } catch (err) {
      log.error("cannot read the prefix table; records that need its prefixes will be reported as corrupt", { path: this.path, error: err as Error });
      return;
    }
    if (text === null) return;
    try {
      const t = decodePrefixTable(text);
      this.nextId = t.nextId;
      for (const [id, prefix] of t.prefixes) this.add(id, prefix);
    } catch (err) {
      this.keepAside(text, (err as Error).message);
    }
  }

  /**
   * What the ring still holds, oldest first (every record a restart may hand out): which prefixes
   * they use, up to which sequence number; ids are then allocated above all of them. Call once,
   * after the ring is opened and before anything is appended.
   */
  noteRecords(visit: (fn: (seq: number, data: Uint8Array, start: number, end: number) => void) => void): void {
    const head: CompactHead = { id: 0, length: 0 };
    let maxId = 0;
    const unknown = new Set<number>();
    visit((seq, data, start, end) => {
      if (!readCompactHead(data, start, end, head)) return;
      if (head.id > maxId) maxId = head.id;
      const e = this.byId.get(head.id);
      if (e) e.lastSeq = seq;
      else {
        this.counters.unknownAtOpen++;
        unknown.add(head.id);
      }
    });
    if (maxId >= this.nextId) this.nextId = maxId + 1;
    if (unknown.size) {
      this.log.error("ring records reference prefixes the prefix table does not hold; they will be reported as corrupt, not sent", {
        path: this.path,
        records: this.counters.unknownAtOpen,
        prefixIds: [...unknown].slice(0, 10),
      });
    }
  }

  prefix(id: number): Uint8Array | undefined {
    return this.byId.get(id)?.bytes;
  }

  /**
   * The id of `prefix` (a full record's bytes up to and including `"timestamp":`), pinned until
   * release(), when the file holds it. Otherwise null — store the records whole — and the prefix is
   * queued for the next write, claimed by this call until withdraw(prefix); after that write
   * (generation() changes) withdraw and acquire again.
   */
  acquire(prefix: string): number | null {
    const e = this.byText.get(prefix);
    if (e) {
      e.pins++;
      return e.id;
    }
    this.claims.set(prefix, (this.claims.get(prefix) ?? 0) + 1);
    this.queueWrite();
    return null;
  }

  /** Ends a claim of acquire() that returned null. */
  withdraw(prefix: string): void {
    const n = this.claims.get(prefix);
    if (n === undefined) return;
    if (n > 1) this.claims.set(prefix, n - 1);
    else this.claims.delete(prefix);
  }

  /** Changes when a write added prefixes. */
  generation(): number {
    return this.written;
  }

  /**
   * A write of the queued prefixes runs at the next yield to the event loop (not a retry after a
   * failure): a file may wait that long for its prefix rather than store its records whole.
   */
  writeDue(): boolean {
    return this.writeQueued;
  }

  /** Called after each write that added prefixes (the source reads the files that waited for them). */
  onWritten(fn: () => void): void {
    this.onWrittenFns.push(fn);
  }

  /**
   * Writes the claimed prefixes the file does not hold yet, in one write (the queued write does
   * this; call it to write now). False when the write failed: it is tried again later.
   */
  flush(): boolean {
    const fresh: string[] = [];
    for (const text of this.claims.keys()) if (!this.byText.has(text) && this.nextId + fresh.length <= MAX_PREFIX_ID) fresh.push(text);
    if (fresh.length === 0) {
      this.health.failingSince = null; // nothing waits for a write
      this.health.lastError = null;
      return true;
    }
    const firstId = this.nextId;
    const added = fresh.map((text, i) => ({ id: firstId + i, text }));
    const dropped = new Set(this.byId.size + added.length > Math.max(COMPACT_ABOVE, 2 * this.liveCount()) ? this.unused() : []);
    const kept = [...this.byId.values()].filter((x) => !dropped.has(x));
    if (!this.save(firstId + added.length, [...kept, ...added])) {
      this.retryLater();
      return false;
    }
    this.nextId = firstId + added.length;
    for (const x of dropped) this.remove(x);
    for (const a of added) this.add(a.id, a.text);
    this.retry?.cancel();
    this.retry = null;
    this.retryMs = RETRY_MIN_MS;
    this.written++;
    for (const fn of this.onWrittenFns) fn();
    return true;
  }

  /** Cancels a pending retry (at shutdown). */
  close(): void {
    this.retry?.cancel();
    this.retry = null;
  }

  release(id: number): void {
    const e = this.byId.get(id);
    if (e && e.pins > 0) e.pins--;
  }

  /** Records with this prefix are being appended (call appended() when that settles). */
  appending(id: number): void {
    const e = this.byId.get(id);
    if (e) e.appending++;
  }

  /** The append settled; `seq` (0 when it failed) is the last sequence number it used. */
  appended(id: number, seq: number): void {
    const e = this.byId.get(id);
    if (!e) return;
    e.appending--;
    if (seq > e.lastSeq) e.lastSeq = seq;
  }

  stats(): PrefixTableStats {
    return { ...this.counters, prefixes: this.byId.size };
  }

  /** Once per turn of the event loop at most; none while a retry is armed (it writes them). */
  private queueWrite(): void {
    if (this.writeQueued || this.retry) return;
    this.writeQueued = true;
    this.clock.soon(() => {
      this.writeQueued = false;
      this.flush();
    });
  }

  private retryLater(): void {
    if (this.retry) return;
    this.retry = this.clock.after(this.retryMs, () => {
      this.retry = null;
      this.flush();
    });
    this.retryMs = Math.min(2 * this.retryMs, RETRY_MAX_MS);
  }

  /**
   * In use now, waited for by an encoder, or used by a record at or after the durable read
   * position (a restart may read it).
   */
  private live(e: Entry, readSeq: number): boolean {
    return e.pins > 0 || e.appending > 0 || e.lastSeq >= readSeq || this.claims.has(e.text);
  }

  private liveCount(): number {
    const readSeq = this.durableReadSeq();
    let n = 0;
    for (const e of this.byId.values()) if (this.live(e, readSeq)) n++;
    return n;
  }

  private unused(): Entry[] {
    const readSeq = this.durableReadSeq();
    return [...this.byId.values()].filter((e) => !this.live(e, readSeq));
  }

  private add(id: number, text: string): Entry {
    const e: Entry = { id, text, bytes: te.encode(text), pins: 0, appending: 0, lastSeq: 0 };
    this.byId.set(id, e);
    this.byText.set(text, e);
    return e;
  }

  private remove(e: Entry): void {
    this.byId.delete(e.id);
    this.byText.delete(e.text);
  }

  private save(nextId: number, entries: Array<{ id: number; text: string }>): boolean {
    const t0 = performance.now();
    try {
      this.files.write(PREFIX_TABLE_FILE, encodePrefixTable(nextId, entries));
    } catch (err) {
      this.counters.writeFailures++;
      if (this.health.failingSince === null) {
        this.log.warn("cannot write the prefix table; records are stored whole until it can be written (nothing is lost)", { path: this.path, error: err as Error });
      }
      this.health.failingSince ??= this.clock.now();
      this.health.lastError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      return false;
    } finally {
      this.counters.writeMs += performance.now() - t0;
    }
    if (this.health.failingSince !== null) this.log.info("prefix table written again", { path: this.path });
    this.health.failingSince = null;
    this.health.lastError = null;
    this.counters.writes++;
    return true;
  }

  private keepAside(text: string, reason: string): void {
    const aside = `${PREFIX_TABLE_FILE}.invalid-${this.clock.now()}`;
    try {
      this.files.write(aside, text);
    } catch {
      // Evidence only: the table starts empty either way.
    }
    this.log.error("the prefix table is damaged; starting a new one (records that need its prefixes will be reported as corrupt, not sent)", {
      path: this.path,
      reason,
      keptAs: this.files.pathOf(aside),
    });
  }
}
