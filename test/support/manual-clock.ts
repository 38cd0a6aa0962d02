// A clock the test turns by hand: soon() callbacks run when runSoon() is called, timers when
// advance() passes them. For logic that defers work to the event loop (the prefix table's writes).
import type { Clock, Timer } from "../../src/platform/types.ts";

interface Pending {
  at: number;
  fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  private soonFns: Array<() => void> = [];
  private timers: Pending[] = [];

  constructor(private t = 0) {}

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): Timer {
    const p: Pending = { at: this.t + ms, fn, cancelled: false };
    this.timers.push(p);
    return { cancel: () => void (p.cancelled = true) };
  }

  every(): Timer {
    throw new Error("ManualClock: every() is not supported");
  }

  soon(fn: () => void): void {
    this.soonFns.push(fn);
  }

  /** Runs what soon() queued so far (and what those queue in turn); returns how many ran. */
  runSoon(): number {
    let n = 0;
    while (this.soonFns.length) {
      const fns = this.soonFns;
      this.soonFns = [];
      for (const fn of fns) fn();
      n += fns.length;
    }
    return n;
  }

  /** Timers armed and not yet run or cancelled. */
  get armed(): number {
    return this.timers.filter((p) => !p.cancelled).length;
  }

  /** Moves the time on by ms, running the timers it passes, in order. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const due = this.timers.filter((p) => !p.cancelled && p.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((p) => p !== due);
      this.t = due.at;
      due.fn();
    }
    this.timers = this.timers.filter((p) => !p.cancelled);
    this.t = until;
  }
}
