// The real clock: Date.now and the runtime's timers.
import type { Clock, Timer } from "./types.ts";

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn): Timer {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  every(ms, fn): Timer {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
  soon(fn) {
    setImmediate(fn);
  },
};

/** Resolves after ms on `clock`. */
export function sleepOn(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.after(ms, resolve));
}
