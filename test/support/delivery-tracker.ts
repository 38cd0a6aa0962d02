// The chaos run's oracle: what arrived, counted against what a RotatingWriter wrote — missing,
// duplicated (per collector run), damaged or misattributed events, and which damaged ones are pieces
// of lines lost with their files.
import { fragmentCuts, parseMessageId, type RotatingWriter } from "./rotating-writer.ts";

/**
 * Counts what arrived against what a RotatingWriter wrote: per stream and sequence, how many times;
 * duplicates attributed to the epoch (the collector's run) in which they arrived.
 */
export class DeliveryTracker {
  private counts: Uint8Array[] = [];
  /** The epoch in which each event first arrived (epochs above 255 are stored as 255). */
  private firstEpoch: Uint8Array[] = [];
  readonly duplicatesByEpoch: number[] = [];
  /** Per epoch: duplicates of events first delivered in an earlier epoch, and per stream the range of sequences duplicated. */
  readonly duplicateDetail: Array<{ fromEarlierEpoch: number; streams: Map<number, { min: number; max: number; n: number }> }> = [];
  received = 0;
  /** Messages that name no event of the writer, or whose content differs from what was written. */
  corrupt = 0;
  /** Records whose pod or container is not the writing stream's. */
  misattributed = 0;
  /** The first 1000 corrupt or unknown messages. */
  corruptSamples: string[] = [];
  /** Per epoch, per stream: how many times each event arrived in that epoch (at most 255). */
  private readonly perEpoch: Uint8Array[][] = [];
  /** Per epoch, the times given to add(), in order. */
  private readonly addTimes: number[][] = [];
  /** Per epoch, per stream: which add() of the epoch (from 1; 0: none or no time) first brought each event. */
  private readonly firstAdd: Uint16Array[][] = [];

  constructor(private readonly writer: RotatingWriter) {
    for (let i = 0; i < writer.streams.length; i++) {
      this.counts.push(new Uint8Array(1024));
      this.firstEpoch.push(new Uint8Array(1024));
    }
  }

  /**
   * Records that arrived in `epoch`; `atMs`, on the caller's clock, a time no earlier than their
   * arrival (for arrivedBy).
   */
  add(records: Array<{ message: string; podName: string; containerName: string }>, epoch: number, atMs?: number): void {
    while (this.duplicatesByEpoch.length <= epoch) {
      this.duplicatesByEpoch.push(0);
      this.duplicateDetail.push({ fromEarlierEpoch: 0, streams: new Map() });
      this.perEpoch.push(this.writer.streams.map(() => new Uint8Array(1024)));
      this.addTimes.push([]);
      this.firstAdd.push(this.writer.streams.map(() => new Uint16Array(1024)));
    }
    // Which add() this is (0: no time given); past 65,534 timed adds in one epoch, 0xffff: a time unknown.
    const times = this.addTimes[epoch]!;
    let addIndex = 0;
    if (atMs !== undefined && times.length < 0xfffe) addIndex = times.push(atMs);
    else if (atMs !== undefined) addIndex = 0xffff;
    for (const r of records) {
      this.received++;
      const id = parseMessageId(r.message);
      const s = id ? this.writer.streams[id.id] : undefined;
      if (!id || !s || r.message !== this.writer.message(id.id, id.seq)) {
        this.corrupt++;
        if (this.corruptSamples.length < 1000) this.corruptSamples.push(r.message);
        continue;
      }
      if (r.podName !== s.pod.name || r.containerName !== s.container) this.misattributed++;
      const c = (this.counts[id.id] = grown(this.counts[id.id]!, id.seq));
      const first = (this.firstEpoch[id.id] = grown(this.firstEpoch[id.id]!, id.seq));
      if (c[id.seq]! > 0) {
        this.duplicatesByEpoch[epoch]!++;
        const d = this.duplicateDetail[epoch]!;
        if (first[id.seq]! < Math.min(epoch, 255)) d.fromEarlierEpoch++;
        const r = d.streams.get(id.id);
        if (!r) d.streams.set(id.id, { min: id.seq, max: id.seq, n: 1 });
        else {
          r.min = Math.min(r.min, id.seq);
          r.max = Math.max(r.max, id.seq);
          r.n++;
        }
      } else first[id.seq] = Math.min(epoch, 255);
      if (c[id.seq]! < 255) c[id.seq]!++;
      const inEpoch = this.perEpoch[epoch]!;
      const e = (inEpoch[id.id] = grown(inEpoch[id.id]!, id.seq));
      if (e[id.seq]! === 0) {
        const firstAdd = this.firstAdd[epoch]!;
        (firstAdd[id.id] = grown(firstAdd[id.id]!, id.seq))[id.seq] = addIndex;
      }
      if (e[id.seq]! < 255) e[id.seq]!++;
    }
  }

  /**
   * A time by which event `seq` of stream `id` first arrived in `epoch`: the time given to the add()
   * that brought it (no earlier than its arrival); Infinity when it did not arrive then, or that add()
   * was given no time.
   */
  arrivedBy(epoch: number, id: number, seq: number): number {
    const index = this.firstAdd[epoch]?.[id]?.[seq] ?? 0;
    return index === 0 || index === 0xffff ? Number.POSITIVE_INFINITY : this.addTimes[epoch]![index - 1]!;
  }

  /** Whether event `seq` of stream `id` had arrived by the end of `epoch` (in it or an earlier one). */
  deliveredBy(epoch: number, id: number, seq: number): boolean {
    return this.delivered(id, seq) && this.firstEpoch[id]![seq]! <= Math.min(epoch, 255);
  }

  /** How many times event `seq` of stream `id` arrived in `epoch` (the collector's run). */
  arrivals(epoch: number, id: number, seq: number): number {
    return this.perEpoch[epoch]?.[id]?.[seq] ?? 0;
  }

  /** Distinct events delivered. */
  distinct(): number {
    let n = 0;
    for (const c of this.counts) for (let i = 0; i < c.length; i++) if (c[i]) n++;
    return n;
  }

  /** Events written and never delivered, with up to `sample` examples as "stream:seq". */
  missing(sample = 10): { count: number; examples: string[] } {
    const written = this.writer.written();
    let count = 0;
    const examples: string[] = [];
    written.forEach((n, id) => {
      const c = this.counts[id]!;
      for (let seq = 0; seq < n; seq++) {
        if (seq >= c.length || c[seq] === 0) {
          count++;
          if (examples.length < sample) examples.push(`c${id}:${seq}`);
        }
      }
    });
    return { count, examples };
  }

  /**
   * Of the corrupt messages kept, those made of pieces of missing events' messages, cut where the writer
   * cuts lines into fragments: the end of a line whose head was lost (e.g. in a file deleted while
   * nobody held it open), the head of a line whose end was lost, or such a head glued to such an end.
   * Only where loss is expected are they excused: they are what a file that lost bytes leaves.
   */
  piecesOfMissing(): number {
    if (this.corruptSamples.length === 0) return 0;
    const tails = new Set<string>();
    this.writer.written().forEach((count, id) => {
      for (let seq = 0; seq < count; seq++) {
        if (this.delivered(id, seq)) continue;
        const m = this.message(id, seq);
        for (const cut of fragmentCuts(m.length)) tails.add(m.slice(cut));
      }
    });
    return this.corruptSamples.filter((piece) => tails.has(piece) || this.isHeadOfMissing(piece, tails)).length;
  }

  /** A missing event's head, alone or glued to a missing event's tail. */
  private isHeadOfMissing(piece: string, tails: Set<string>): boolean {
    const id = parseMessageId(piece);
    if (!id || id.id >= this.writer.streams.length || id.seq >= this.writer.written()[id.id]! || this.delivered(id.id, id.seq)) return false;
    const m = this.message(id.id, id.seq);
    return fragmentCuts(m.length).some((cut) => {
      const head = m.slice(0, cut);
      return piece.startsWith(head) && (piece.length === head.length || tails.has(piece.slice(cut)));
    });
  }

  private delivered(id: number, seq: number): boolean {
    const c = this.counts[id]!;
    return seq < c.length && c[seq] !== 0;
  }

  private message(id: number, seq: number): string {
    return this.writer.message(id, seq);
  }

  duplicates(): number {
    return this.duplicatesByEpoch.reduce((a, b) => a + b, 0);
  }
}

/** `a`, or a copy of it twice as long as needed, so that index `i` exists. */
function grown<A extends Uint8Array | Uint16Array>(a: A, i: number): A {
  if (i < a.length) return a;
  let n = a.length;
  while (n <= i) n *= 2;
  const g = new (a.constructor as new (n: number) => A)(n);
  g.set(a);
  return g;
}
