// The lines a crash sends again by design from behind a line pending at the crash (docs/source.md,
// "Lines of both streams overlapping"; docs/simulation.md, "Crash duplicates"): a file's checkpoint
// is one offset, kept at the start of an overlap of stdout and stderr partial lines, so the next
// process reads the container's files again from there. Pure, shared by the simulation's crash bound
// (test/sim/crash-bound.ts) and the chaos run's (bench/lib/chaos-report.ts).

/** A line of one container, as its writer wrote it. */
export interface LedgerLine {
  /** Written in more than one fragment (P … F): a line the source holds pending until its last one. */
  split: boolean;
  /** Its first and last fragment's places in the order of writes: a split line is pending between them. */
  firstWrite: number;
  lastWrite: number;
}

/** Where a crash reads a container's lines again (indexes into its lines in write order). */
export interface BehindPendingRange {
  /** The first line of the overlap the head is in: the next process reads again from here. */
  from: number;
  /** The oldest split line begun before the crash and not delivered by then, while the crashed process delivered a later one. */
  head: number;
  /** The last line the crashed process delivered. */
  last: number;
}

/** What the ledger tells of a line at a crash. */
export interface CrashView<L> {
  /** Delivered by the crashed process. */
  sentByCrashed(l: L): boolean;
  /** Its first fragment was written before the crash. */
  begunBeforeCrash(l: L): boolean;
  /**
   * Delivered before the crash, by the crashed process or an earlier one: such a line is not pending
   * (a process that started from a checkpoint past it never read it, and delivers later lines).
   */
  deliveredBeforeCrash(l: L): boolean;
}

/**
 * Of one container instance's lines, in write order (by first fragment), the range the next process
 * reads again: from the start of the overlap containing the oldest split line begun before the crash
 * and not delivered by then while the crashed process delivered a later one (its head read, its end
 * not yet), to the last line the crashed process delivered. Null when no such line was pending.
 */
export function behindPendingRange<L extends LedgerLine>(list: readonly L[], at: CrashView<L>): BehindPendingRange | null {
  let last = -1;
  for (let i = 0; i < list.length; i++) if (at.sentByCrashed(list[i] as L)) last = i;
  const head = list.findIndex((l, i) => i < last && l.split && at.begunBeforeCrash(l) && !at.deliveredBeforeCrash(l));
  return head < 0 ? null : { from: overlapStart(list, head), head, last };
}

/** The lines of behindPendingRange the crashed process delivered (the head excepted): the next one sends them again. */
export function pinnedBehindPending<L extends LedgerLine>(list: readonly L[], at: CrashView<L>): L[] {
  const range = behindPendingRange(list, at);
  if (!range) return [];
  const pinned: L[] = [];
  for (let i = range.from; i <= range.last; i++) if (i !== range.head && at.sentByCrashed(list[i] as L)) pinned.push(list[i] as L);
  return pinned;
}

/**
 * The first line of the overlap `head` is in (`list` in write order): the last line at or before it
 * begun while no other line of the container was pending (every line begun before it had ended).
 */
export function overlapStart(list: readonly LedgerLine[], head: number): number {
  let start = 0;
  let lastEnd = Number.NEGATIVE_INFINITY;
  for (let i = 0; i <= head; i++) {
    const l = list[i] as LedgerLine;
    if (lastEnd < l.firstWrite) start = i;
    lastEnd = Math.max(lastEnd, l.lastWrite);
  }
  return start;
}
