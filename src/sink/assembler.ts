// Reading the ring into batches: records are spliced into a pooled buffer as they are read (the
// ring's views are valid only until acknowledged), until the batch is full or flushIntervalMs after
// its first record.
import type { Ring, RingRanges } from "../buffer/types.ts";
import type { Clock, Timer } from "../platform/types.ts";
import type { BatchBuffer, BatchPool } from "./batch.ts";

/** Where the sender is in its life, as the assembler reads it. */
export interface SenderPhase {
  /** drain() or stop() began: no more waiting for new records. */
  readonly stopping: boolean;
  /** drain() began: what the ring holds now is still sent. */
  readonly draining: boolean;
  /** stop() or the drain deadline: nothing more is read. */
  readonly stopped: boolean;
}

export interface AssemblerOptions {
  /** The ring's records as full records (record-expander.ts): byte counts are those of full records. */
  ring: Pick<Ring, "readRanges" | "waitForData">;
  pool: BatchPool;
  maxEvents: number;
  /** Payload bytes per batch (payloadBudget of batch.ts). */
  budget: number;
  flushIntervalMs: number;
  clock: Clock;
  phase: SenderPhase;
}

export class BatchAssembler {
  /** Records read past the end of the last batch: they start the next one. */
  #carry: RingRanges | null = null;
  // Not Promise.race with a long-lived "stopping" promise: every race would leave a reaction on it
  // until shutdown (thousands of closures and promises per minute under load).
  readonly #ringWaiters = new Set<() => void>();

  constructor(private readonly o: AssemblerOptions) {}

  /** Ends every wait for the ring (the sender is stopping). */
  wakeWaiters(): void {
    for (const w of [...this.#ringWaiters]) w();
  }

  /**
   * The next batch, in a buffer from the pool: full, or flushIntervalMs after its first record;
   * null when stopping (or drained). Records are copied out of the mapping as they are read, before
   * anything is acknowledged (the ring's views are valid only until then).
   */
  async next(): Promise<BatchBuffer | null> {
    const { o } = this;
    const first = await this.#firstRecords();
    if (!first) return null;
    const batch = o.pool.take(first.firstSeq);
    try {
      batch.addRanges(first);
      const deadline = o.clock.now() + o.flushIntervalMs;
      while (batch.count < o.maxEvents && batch.payloadBytes < o.budget) {
        if (o.phase.stopped) {
          o.pool.give(batch);
          return null;
        }
        const next = o.ring.readRanges(o.maxEvents - batch.count, o.budget - batch.payloadBytes);
        if (next) {
          // The ring hands out one record above the byte budget rather than none: it starts the next batch.
          if (batch.payloadBytes + next.bytes > o.budget || next.firstSeq !== batch.firstSeq + batch.count) {
            this.#carry = next;
            break;
          }
          batch.addRanges(next);
          continue;
        }
        if (o.phase.draining) break;
        const left = deadline - o.clock.now();
        if (left <= 0) break;
        await this.#waitForRing(left);
      }
    } catch (err) {
      o.pool.give(batch);
      throw err;
    }
    return batch.finish();
  }

  /** The records that start a batch: the carry, or the next ones the ring has; null when stopping. */
  async #firstRecords(): Promise<RingRanges | null> {
    const { o } = this;
    let r = this.#carry;
    this.#carry = null;
    while (!r) {
      if (o.phase.stopped) return null;
      r = o.ring.readRanges(o.maxEvents, o.budget);
      if (r) break;
      if (o.phase.draining) return null;
      await this.#waitForRing(null);
    }
    return r;
  }

  /** Resolves when the ring has records, after ms (null: no limit), or when the sender stops. */
  #waitForRing(ms: number | null): Promise<void> {
    if (this.o.phase.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: Timer | undefined;
      const done = () => {
        if (!this.#ringWaiters.delete(done)) return;
        timer?.cancel();
        resolve();
      };
      this.#ringWaiters.add(done);
      if (ms !== null) timer = this.o.clock.after(ms, done);
      this.o.ring.waitForData().then(done, done);
    });
  }
}
