// Body compression (README "Design choices", gzip). Bun.gzipSync at level 1 costs about a sixth of
// CompressionStream per batch and a JSON log batch still shrinks 4-10x, but ~1 µs per event: on the
// main thread, which reads, encodes and sends, it was the largest cost of a gzip run. The collector
// therefore gzips on a worker thread (the Gzipper of src/platform/gzip-worker.ts), which reads the
// pooled body and writes the pooled wire memory in place; the main thread posts a message per
// batch. Without a Gzipper (the simulation, which must not depend on another thread's timing), or
// should it fail, compression runs in the calling thread: slower, never lost.
import type { Logger } from "../log.ts";
import type { Gzipper } from "../platform/types.ts";
import type { BatchBuffer } from "./batch.ts";

export const GZIP_LEVEL = 1;

/** gzip in the calling thread. */
export function gzip(data: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  return Bun.gzipSync(data, { level: GZIP_LEVEL });
}

/** Room the worker may need beyond the body (gzip's framing of incompressible data). */
const WIRE_SLACK = 1024;

export class BodyCompressor {
  #gzipper: Gzipper | null = null;
  /** No Gzipper, or it could not start or failed: compress in this thread. */
  #inThread: boolean;
  #closed = false;

  /** offThread: makes the Gzipper, once, at the first body (none: compress in the calling thread). */
  constructor(
    private readonly log: Logger,
    private readonly offThread?: (level: number) => Gzipper,
  ) {
    this.#inThread = offThread === undefined;
  }

  /**
   * The gzipped body of records [from, to) of a batch, `raw` being their JSON array. A whole batch's
   * result lives in the batch's pooled wire memory; a part's (bisection, rare) in fresh memory.
   * Null once closed (the sender is stopping).
   */
  async compress(batch: BatchBuffer, raw: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer> | null> {
    if (this.#closed) return null;
    const whole = raw === batch.body;
    const gzipper = this.#gzipperOrNull();
    if (gzipper) {
      try {
        const out = await gzipper.gzip(raw, whole ? batch.wireMemory(raw.length + WIRE_SLACK) : null);
        // Fresh memory when it did not fit: kept in the batch's memory like an in-thread result.
        return whole && out.buffer !== batch.wireMemory(0).buffer ? batch.keepWire(out) : out;
      } catch (err) {
        if (this.#closed) return null;
        this.#giveUp(err as Error);
      }
    }
    const out = gzip(raw);
    return whole ? batch.keepWire(out) : out;
  }

  /** Ends the Gzipper; compressions in progress resolve null. */
  close(): void {
    this.#closed = true;
    this.#gzipper?.close();
    this.#gzipper = null;
  }

  #gzipperOrNull(): Gzipper | null {
    if (this.#inThread || this.#gzipper) return this.#gzipper;
    try {
      this.#gzipper = (this.offThread as (level: number) => Gzipper)(GZIP_LEVEL);
    } catch (err) {
      this.#giveUp(err as Error);
    }
    return this.#gzipper;
  }

  /** Every job of a failed Gzipper lands here: one warning. */
  #giveUp(err: Error): void {
    if (this.#inThread) return;
    this.#inThread = true;
    this.#gzipper?.close();
    this.#gzipper = null;
    this.log.warn("gzip worker unavailable; compressing request bodies on the main thread", { error: err });
  }
}
