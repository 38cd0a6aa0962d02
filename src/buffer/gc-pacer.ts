// Garbage-collection pacing, a memory policy of the collector's own: GcPacing observes the ring's
// traffic (RingTraffic) and collects every 32 MiB of it, which releases the payload views and
// copies that keep anonymous memory growing under load (docs/ring-format.md, "Memory"); a minor
// collection costs ~0.2 ms. GcPacer (pure) decides when a paced collection is a full one.
//
// A full collection (~10 ms on the collector's ~10 MB heap) is needed now and then: what lives
// across a few event-loop turns (a request's promises, Bun's native copy of its body, which the GC
// counts only as "extra" memory) survives minor collections, and JSC left it to grow anonymous
// memory by ~100 MB before collecting it itself (backlog scenario: peak RssAnon 155 → 80 MB with
// full collections). Not unconditionally (it was every eighth paced collection): a full
// collection also makes the allocator return its free pages to the kernel, and touching them again
// costs a page fault each — ~10 µs on the development VM, 20 k faults per 2 M events (throughput
// scenario: 2.06 → 1.85 CPU-s per M events without the unneeded ones).

import { collectGarbage } from "../platform/mmap.ts";
import { procStatusBytes } from "../platform/proc-status.ts";
import type { RingTraffic } from "./types.ts";

/** Bytes of ring traffic (appended + handed out) between paced collections. */
export const DEFAULT_GC_EVERY_BYTES = 32 << 20;

/** Below this much anonymous memory, minor collections only. */
export const FULL_GC_ANON_FLOOR_BYTES = 96 << 20;
/** A full collection again only once anonymous memory has grown this much past the last one's result. */
export const FULL_GC_HEADROOM_BYTES = 48 << 20;

export class GcPacer {
  private fullAbove: number;
  private afterFull = false;

  constructor(
    private readonly floorBytes = FULL_GC_ANON_FLOOR_BYTES,
    private readonly headroomBytes = FULL_GC_HEADROOM_BYTES,
  ) {
    this.fullAbove = floorBytes;
  }

  /**
   * Whether this paced collection is a full one, given the anonymous memory now (-1: unknown,
   * minor only). The baseline after a full collection is taken at the next paced point, once the
   * allocator has returned what was freed (it does so after a short delay).
   */
  full(anonBytes: number): boolean {
    if (anonBytes < 0) return false;
    if (this.afterFull) this.fullAbove = Math.max(this.floorBytes, anonBytes + this.headroomBytes);
    this.afterFull = anonBytes > this.fullAbove;
    return this.afterFull;
  }
}

export interface GcPacingOptions {
  /** Collect after this many bytes have gone through the ring; 0 disables. Default 32 MiB. */
  everyBytes?: number;
  /** Runs a collection (default: the runtime's). */
  collect?: (full: boolean) => void;
  /** The process's anonymous memory in bytes, -1 when unknown (default: /proc/self/status RssAnon). */
  anonBytes?: () => number;
}

/** Collects garbage every `everyBytes` of ring traffic; a full collection when GcPacer says so. */
export class GcPacing implements RingTraffic {
  private readonly everyBytes: number;
  private readonly collect: (full: boolean) => void;
  private readonly anonBytes: () => number;
  private readonly pacer = new GcPacer();
  private budget: number;

  constructor(o: GcPacingOptions = {}) {
    this.everyBytes = o.everyBytes ?? DEFAULT_GC_EVERY_BYTES;
    this.collect = o.collect ?? collectGarbage;
    this.anonBytes = o.anonBytes ?? (() => procStatusBytes("RssAnon"));
    this.budget = this.everyBytes > 0 ? this.everyBytes : Number.POSITIVE_INFINITY;
  }

  moved(bytes: number): void {
    this.budget -= bytes;
    if (this.budget > 0) return;
    this.budget = this.everyBytes;
    this.collect(this.pacer.full(this.anonBytes()));
  }
}
