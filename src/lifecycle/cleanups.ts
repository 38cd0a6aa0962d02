// What start-up acquired (the data dir lock, the API socket, the ring, the metadata provider, the
// sender, timers), released in reverse order whether the start failed half-way or the collector
// stopped. A step that fails is logged and the others still run.
import type { Logger } from "../log.ts";

export type Cleanup = () => Promise<void> | void;

export class Cleanups {
  private readonly steps: Cleanup[] = [];

  constructor(private readonly log: Logger) {}

  push(step: Cleanup): void {
    this.steps.push(step);
  }

  /** Runs every step once, last acquired first. */
  async run(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step();
      } catch (err) {
        this.log.error("cleanup step failed", { error: err as Error });
      }
    }
  }
}
