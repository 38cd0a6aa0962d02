// Every event is accounted for, per process lifetime (README "Architecture" and "Metrics"):
//   read = filtered + skipped + inRing + (sent + deadLettered − replayed)
// Each term is a counter with one owner: the router counts what it read and filtered, the source
// the malformed lines it skipped, the ring what was appended, the ring tap what was acknowledged
// (split into this process's records and those an earlier run left in the ring), the sender what
// the messenger acknowledged or refused. Pure: /status and /metrics both read it from here.
import type { RouterCounters } from "../pipeline/router.ts";

export interface Accounting {
  read: number;
  filtered: number;
  skipped: number;
  inRing: number;
  sent: number;
  deadLettered: number;
  replayed: number;
  /** read − (filtered + skipped + inRing + sent + deadLettered − replayed); 0 when balanced. */
  imbalance: number;
}

/** The counters the terms come from, each as its owner keeps it. */
export interface AccountingCounters {
  router: Pick<RouterCounters, "eventsRead" | "eventsFiltered">;
  /** Lines the source could not parse (skipped; never handed to the router). */
  linesMalformed: number;
  /** Records this process appended to the ring. */
  ringAppended: number;
  /** Acknowledged records appended by this process / found in the ring file at start. */
  ackedOwn: number;
  ackedReplayed: number;
  /**
   * Acknowledgements by every sender of this process, replayed records included: sent with a 2xx,
   * or refused on their own and dead-lettered.
   */
  eventsSent: number;
  deadLetteredEvents: number;
}

export function accountingOf(c: AccountingCounters): Accounting {
  const read = c.router.eventsRead + c.linesMalformed;
  let filtered = 0;
  for (const n of Object.values(c.router.eventsFiltered)) filtered += n;
  const skipped = c.linesMalformed;
  const inRing = c.ringAppended - c.ackedOwn;
  const replayed = c.ackedReplayed;
  const imbalance = read - (filtered + skipped + inRing + c.eventsSent + c.deadLetteredEvents - replayed);
  return { read, filtered, skipped, inRing, sent: c.eventsSent, deadLettered: c.deadLetteredEvents, replayed, imbalance };
}
