// A counting semaphore with FIFO waiters whose waits can be abandoned (shutdown), and an
// abandonable sleep.
import type { Clock } from "../platform/types.ts";

export class Semaphore {
  #free: number;
  #waiters: Array<{ resolve: (ok: boolean) => void }> = [];

  constructor(permits: number) {
    this.#free = permits;
  }

  /** Resolves true with a permit, or false (no permit) when the signal aborts first. */
  acquire(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const waiter = {
        resolve: (ok: boolean) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(ok);
        },
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(false);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next.resolve(true);
    else this.#free++;
  }

  get waiting(): number {
    return this.#waiters.length;
  }
}

/** Sleeps ms on `clock`; resolves false early when the signal aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const onAbort = () => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.after(Math.max(0, ms), () => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
