// When a paced collection (every 32 MiB of ring traffic) should be a full one. Pure: the ring
// reads the process's anonymous memory and asks.
//
// A full collection (~10 ms on the collector's ~10 MB heap) is needed now and then: what lives
// across a few event-loop turns (a request's promises, Bun's native copy of its body, which the GC
// counts only as "extra" memory) survives minor collections, and JSC left it to grow anonymous
// memory by ~100 MB before collecting it itself (backlog scenario: peak RssAnon 155 → 80 MB with
// full collections). Not unconditionally (it was every eighth paced collection): a full
// collection also makes the allocator return its free pages to the kernel, and touching them again
// costs a page fault each — ~10 µs on the development VM, 20 k faults per 2 M events (throughput
// scenario: 2.06 → 1.85 CPU-s per M events without the unneeded ones).

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
