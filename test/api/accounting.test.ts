// The accounting identity from the stages' own counters: each term from its one owner, and the
// imbalance 0 exactly when they agree.
import { expect, test } from "bun:test";
import { type AccountingCounters, accountingOf } from "../../src/api/accounting.ts";
import { FILTER_REASONS, type FilterReason } from "../../src/pipeline/chain.ts";

function counters(over: Partial<AccountingCounters> = {}): AccountingCounters {
  const eventsFiltered = Object.fromEntries(FILTER_REASONS.map((r) => [r, 0])) as Record<FilterReason, number>;
  return { router: { eventsRead: 0, eventsFiltered }, linesMalformed: 0, ringAppended: 0, ackedOwn: 0, ackedReplayed: 0, eventsSent: 0, deadLetteredEvents: 0, ...over };
}

test("read counts malformed lines too; filtered sums every reason; inRing is appended minus acknowledged own records", () => {
  const c = counters({ linesMalformed: 3, ringAppended: 80, ackedOwn: 70, eventsSent: 68, deadLetteredEvents: 2 });
  c.router.eventsRead = 100;
  c.router.eventsFiltered["no-metadata"] = 12;
  c.router.eventsFiltered["missing-runUUID"] = 8;
  expect(accountingOf(c)).toEqual({ read: 103, filtered: 20, skipped: 3, inRing: 10, sent: 68, deadLettered: 2, replayed: 0, imbalance: 0 });
});

test("records an earlier run left in the ring are acknowledged as replayed, and do not unbalance", () => {
  const c = counters({ ringAppended: 5, ackedOwn: 5, ackedReplayed: 40, eventsSent: 45 });
  c.router.eventsRead = 5;
  const a = accountingOf(c);
  expect(a.replayed).toBe(40);
  expect(a.inRing).toBe(0);
  expect(a.imbalance).toBe(0);
});

test("a lost record shows as a positive imbalance, a counted-twice one as a negative", () => {
  const lost = counters({ ringAppended: 10, ackedOwn: 10, eventsSent: 9 });
  lost.router.eventsRead = 10;
  expect(accountingOf(lost).imbalance).toBe(1);
  const twice = counters({ ringAppended: 10, ackedOwn: 10, eventsSent: 11 });
  twice.router.eventsRead = 10;
  expect(accountingOf(twice).imbalance).toBe(-1);
});
