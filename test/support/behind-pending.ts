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

/**
 * Of one container instance's lines, in write order (by first fragment), those the crashed process
 * delivered and the next one reads again: from the start of the overlap containing the oldest split
 * line begun before the crash that the crashed process did not deliver while it delivered a later
 * one (its head read, its end not yet), to the last line it delivered — that head excepted.
 */
export function pinnedBehindPending<L extends LedgerLine>(list: readonly L[], sentByCrashed: (l: L) => boolean, begunBeforeCrash: (l: L) => boolean): L[] {
  let last = -1;
  for (let i = 0; i < list.length; i++) if (sentByCrashed(list[i] as L)) last = i;
  const head = list.findIndex((l, i) => i < last && l.split && begunBeforeCrash(l) && !sentByCrashed(l));
  if (head < 0) return [];
  const pinned: L[] = [];
  for (let i = overlapStart(list, head); i <= last; i++) if (i !== head && sentByCrashed(list[i] as L)) pinned.push(list[i] as L);
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
