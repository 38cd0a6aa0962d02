// The simulation's time: a virtual clock (the Clock port) and the event queue that drives a run.
// Nothing waits for real time: the run pops the next due callback, moves the clock to its time and
// runs it, then lets every promise reaction it caused settle before the next one — so one seed
// replays the same run, event for event.
import type { Clock, Timer } from "../../src/platform/types.ts";
import type { Rng } from "./rng.ts";

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  /** Every `period` ms (0: once). */
  period: number;
  cancelled: boolean;
  /** The process that owns it: a crash cancels everything it scheduled. */
  owner: number;
}

// The real macrotask yield: runs after every pending promise reaction (nothing real is in flight
// in a simulation, so this is deterministic). Captured before anything can replace the globals.
const realSetImmediate = globalThis.setImmediate;
const settle = () => new Promise<void>((resolve) => realSetImmediate(resolve));
const DEBUG = process.env.SIM_DEBUG === "1";

/** The world's own callbacks (the workload, the kubelet, faults): never dropped. */
export const WORLD = 0;

export class Scheduler implements Clock {
  private time: number;
  private seq = 0;
  /** A binary heap by (at, seq). */
  private readonly heap: Entry[] = [];
  /** Callbacks run so far. */
  steps = 0;
  /** Called after every step has settled (the harness's own measurements; it must schedule nothing). */
  onStep: () => void = () => {};
  /** Virtual milliseconds each `now()` may advance by (synchronous work taking time; 0: none). */
  private drift = 0;

  constructor(
    private readonly startMs: number,
    private readonly rng: Rng,
  ) {
    this.time = startMs;
  }

  /** Makes reading the clock take time, as work on a busy CPU does: each now() moves up to `ms`. */
  setDrift(ms: number): void {
    this.drift = ms;
  }

  now(): number {
    if (this.drift > 0 && this.rng.chance(0.2)) this.time += this.rng.int(0, this.drift);
    return this.time;
  }

  /** The time without drift (for the harness's own bookkeeping). */
  peek(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): Timer {
    return this.push(this.time + Math.max(0, ms), fn, 0, WORLD);
  }

  every(ms: number, fn: () => void): Timer {
    return this.push(this.time + Math.max(1, ms), fn, Math.max(1, ms), WORLD);
  }

  soon(fn: () => void): void {
    this.push(this.time, fn, 0, WORLD);
  }

  /** Runs fn soon on behalf of `owner` (dropped if that process crashes first). */
  soonFor(owner: number, fn: () => void): void {
    this.push(this.time, fn, 0, owner);
  }

  /** The clock of one simulated process: everything it schedules dies with it (dropOwner). */
  clockFor(owner: number): Clock {
    return {
      now: () => this.now(),
      after: (ms, fn) => this.push(this.time + Math.max(0, ms), fn, 0, owner),
      every: (ms, fn) => this.push(this.time + Math.max(1, ms), fn, Math.max(1, ms), owner),
      soon: (fn) => void this.push(this.time, fn, 0, owner),
    };
  }

  /** Owners whose process ended: nothing they scheduled, or schedule later, runs. */
  private readonly dead = new Set<number>();

  /** Cancels every callback scheduled by `owner` (its process crashed), and any it would schedule. */
  dropOwner(owner: number): void {
    this.dead.add(owner);
    for (const e of this.heap) if (e.owner === owner) e.cancelled = true;
  }

  /** Whether any live callback is due at or before `t`. */
  hasWorkBefore(t: number): boolean {
    this.prune();
    return this.heap.length > 0 && (this.heap[0] as Entry).at <= t;
  }

  /**
   * Runs callbacks in time order until the clock would pass `until` or `stop()` says so. Returns
   * false when nothing is scheduled any more before `until`.
   */
  async runUntil(until: number, stop?: () => boolean): Promise<void> {
    await settle();
    for (;;) {
      if (stop?.()) return;
      this.prune();
      const next = this.heap[0];
      if (!next || next.at > until) {
        if (this.time < until) this.time = until;
        return;
      }
      this.pop();
      if (next.at > this.time) this.time = next.at;
      if (next.period > 0) {
        next.at = this.time + next.period;
        next.seq = ++this.seq;
        this.insert(next);
      }
      this.steps++;
      if (DEBUG && this.steps % 1000 === 0) console.error(`sim: step ${this.steps} at +${((this.time - this.startMs) / 1000).toFixed(1)} s, ${this.heap.length} queued`);
      next.fn();
      await settle();
      this.onStep();
    }
  }

  private push(at: number, fn: () => void, period: number, owner: number): Timer {
    const e: Entry = { at, seq: ++this.seq, fn, period, cancelled: this.dead.has(owner), owner };
    this.insert(e);
    return { cancel: () => void (e.cancelled = true) };
  }

  private prune(): void {
    while (this.heap.length > 0 && (this.heap[0] as Entry).cancelled) this.pop();
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private insert(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as Entry, h[p] as Entry)) break;
      [h[i], h[p]] = [h[p] as Entry, h[i] as Entry];
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
        if (l < h.length && this.less(h[l] as Entry, h[m] as Entry)) m = l;
        if (r < h.length && this.less(h[r] as Entry, h[m] as Entry)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Entry, h[i] as Entry];
        i = m;
      }
    }
    return top;
  }
}
