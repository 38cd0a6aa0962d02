// A Clock whose time only moves when the simulation says so (bench/fleet.ts): timers are kept in a
// heap; runUntil(t) fires them in time order and, after each instant, lets the event loop run until
// the work those timers started (promises, in-process streams) has settled, before time moves on.
import type { Clock, Timer } from "../../src/platform/types.ts";

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly heap: Entry[] = [];
  /** Timers fired so far (a measure of the simulation's own work). */
  fired = 0;

  constructor(
    start: number,
    /** Changes whenever simulated work happens (requests, bytes); settle() waits for it to stop changing. */
    private readonly activity: () => number = () => 0,
  ) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): Timer {
    const e: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(e);
    return { cancel: () => void (e.cancelled = true) };
  }

  every(ms: number, fn: () => void): Timer {
    const period = Math.max(1, ms);
    let current: Timer;
    let cancelled = false;
    const tick = () => {
      if (cancelled) return;
      current = this.after(period, tick);
      fn();
    };
    current = this.after(period, tick);
    return {
      cancel: () => {
        cancelled = true;
        current.cancel();
      },
    };
  }

  soon(fn: () => void): void {
    this.after(0, fn);
  }

  /** Lets promises and in-process I/O run until nothing changes for two turns of the event loop. */
  async settle(): Promise<void> {
    let quiet = 0;
    let last = this.activity() + this.seq;
    while (quiet < 2) {
      await new Promise<void>((r) => setImmediate(r));
      const now = this.activity() + this.seq;
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
  }

  /** Fires every timer due up to t (and those they schedule), settling after each instant; then time is t. */
  async runUntil(t: number): Promise<void> {
    await this.settle();
    for (;;) {
      const next = this.peek();
      if (next === undefined || next.at > t) break;
      this.t = Math.max(this.t, next.at);
      for (let e = this.peek(); e !== undefined && e.at <= this.t; e = this.peek()) {
        this.pop();
        this.fired++;
        e.fn();
      }
      await this.settle();
    }
    this.t = Math.max(this.t, t);
  }

  private peek(): Entry | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0];
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
