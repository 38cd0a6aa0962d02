// The lines a crash sends again by design from behind a line pending at the crash (docs/source.md,
// "Lines of both streams overlapping"; docs/ring-format.md, "Bounded replay"): a file's checkpoint
// moves over a line only once the ring says its record is durable, so the next process reads the
// container's files again from the head of a line whose record was not durable at the crash. Pure;
// the chaos run's (bench/lib/chaos-report.ts). The simulation's crash bound (test/sim/crash-bound.ts)
// shares the ledger's line.

/** A line of one container, as its writer wrote it. */
export interface LedgerLine {
  /** Written in more than one fragment (P … F): a line the source holds pending until its last one. */
  split: boolean;
  /** Its first and last fragment's places in the order of writes: a split line is pending between them. */
  firstWrite: number;
  lastWrite: number;
}

/** What the ledger tells of a line at a crash. */
export interface CrashView<L> {
  /** Delivered by the crashed process. */
  sentByCrashed(l: L): boolean;
  /** Its first fragment was written before the crash. */
  begunBeforeCrash(l: L): boolean;
  /**
   * Known to pin no checkpoint at the crash: its record was durable by then (the crashed process
   * delivered it long enough before), or the crashed process never read it (an earlier one delivered
   * it, and the crashed one started from a checkpoint past it).
   */
  settledBeforeCrash(l: L): boolean;
}

/** Where the next process reads a container's lines again (indexes into its lines in write order). */
export interface PinnedBehindPending {
  /** The lines the crashed process delivered that a pending line pinned: the next one sends them again. */
  pinned: number[];
  /**
   * The lines it delivered behind a pending line's head that ended after it: not pinned by it. Their
   * records were appended after its own, so if that one was not durable neither were theirs, and
   * they are read again as the sync interval's (in that term of the bound already).
   */
  afterEnds: number[];
  /** The pending line that pins the first pinned line (its overlap's first line, itself, the last line delivered). */
  first: null | { from: number; head: number; last: number };
}

/**
 * Of one container instance's lines, in write order (by first fragment), what the next process reads
 * again from behind the lines pending at the crash. Pending: split, begun before the crash, not
 * settled before it, and the crashed process delivered a later line (it read the head). A pending
 * line pins, from the start of the overlap it is in to the last line the crashed process delivered,
 * the lines that ended before it did: their records were appended before its own, possibly long
 * before the last sync, and the checkpoints stay at its head until its record is durable.
 */
export function pinnedBehindPending<L extends LedgerLine>(list: readonly L[], at: CrashView<L>): PinnedBehindPending {
  const out: PinnedBehindPending = { pinned: [], afterEnds: [], first: null };
  let last = -1;
  for (let i = 0; i < list.length; i++) if (at.sentByCrashed(list[i] as L)) last = i;
  if (last < 0) return out;
  const starts = overlapStarts(list);
  // Per overlap start, the pending line whose overlap begins there and which ends last; then, per line,
  // the one ending last among those whose overlap reaches it, and how many reach it.
  const reach = new Int32Array(last + 1).fill(-1);
  const reaching = new Int32Array(last + 1);
  const isHead = (i: number) => i < last && (list[i] as L).split && at.begunBeforeCrash(list[i] as L) && !at.settledBeforeCrash(list[i] as L);
  for (let i = 0; i < last; i++) {
    if (!isHead(i)) continue;
    const s = starts[i]!;
    const r = reach[s]!;
    if (r < 0 || (list[i] as L).lastWrite > (list[r] as L).lastWrite) reach[s] = i;
    reaching[s]!++;
  }
  for (let i = 1; i <= last; i++) {
    const prev = reach[i - 1]!;
    if (prev >= 0 && (reach[i]! < 0 || (list[prev] as L).lastWrite > (list[reach[i]!] as L).lastWrite)) reach[i] = prev;
    reaching[i]! += reaching[i - 1]!;
  }
  for (let i = 0; i <= last; i++) {
    const l = list[i] as L;
    const h = reach[i]!;
    if (h < 0 || !at.sentByCrashed(l)) continue;
    if ((list[h] as L).lastWrite > l.lastWrite) {
      out.pinned.push(i);
      out.first ??= { from: starts[h]!, head: h, last };
    } else if (reaching[i]! > (isHead(i) ? 1 : 0)) out.afterEnds.push(i);
  }
  return out;
}

/**
 * Per line of `list` (in write order), the first line of the overlap it is in: the last line at or
 * before it begun while no other line of the container was pending (every line begun before it had ended).
 */
export function overlapStarts(list: readonly LedgerLine[]): Int32Array {
  const starts = new Int32Array(list.length);
  let start = 0;
  let lastEnd = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < list.length; i++) {
    const l = list[i] as LedgerLine;
    if (lastEnd < l.firstWrite) start = i;
    lastEnd = Math.max(lastEnd, l.lastWrite);
    starts[i] = start;
  }
  return starts;
}
