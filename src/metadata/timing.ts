// Time for the providers, on an injected Clock (the fleet simulation runs a virtual one):
// exponential backoff with full jitter, abortable sleeps and request deadlines.
import type { Clock } from "../platform/types.ts";

/** Exponential backoff with full jitter. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}
  next(): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt++, 30));
    return Math.max(1, Math.floor(this.random() * cap));
  }
  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after ms on the clock, or at once when the signal aborts (never rejects). */
export function sleepOn(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      timer.cancel();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = clock.after(Math.max(0, ms), done);
    signal.addEventListener("abort", done, { once: true });
  });
}

export interface Deadline {
  /** Aborted by the parent, or once ms have passed on the clock unless disarmed first. */
  readonly signal: AbortSignal;
  expired(): boolean;
  /** The deadline no longer applies (the parent still aborts the signal). */
  disarm(): void;
  /** The request is over: disarms and lets go of the parent. */
  done(): void;
}

export function deadline(clock: Clock, ms: number, parent: AbortSignal): Deadline {
  const c = new AbortController();
  let expired = false;
  const onParent = () => c.abort(parent.reason);
  if (parent.aborted) c.abort(parent.reason);
  else parent.addEventListener("abort", onParent, { once: true });
  const timer = clock.after(ms, () => {
    expired = true;
    c.abort(new Error(`no answer within ${ms} ms`));
  });
  return {
    signal: c.signal,
    expired: () => expired,
    disarm: () => timer.cancel(),
    done: () => {
      timer.cancel();
      parent.removeEventListener("abort", onParent);
    },
  };
}
