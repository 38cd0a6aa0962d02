// The set of acknowledged sequence numbers above the read position, kept as sorted disjoint
// ranges. Acks arrive per batch (ranges) and at most a few batches are in flight, so the list stays
// short; a consumer acking single records out of order still works, just with more ranges.
// Each header records the ranges (docs/ring-format.md), so a restart does not send them again.

export class AckedRanges {
  // Flat [start0, end0, start1, end1, ...], ends exclusive, sorted, disjoint and non-adjacent.
  private r: number[] = [];
  /** Sequence numbers in the set. */
  size = 0;

  get rangeCount(): number {
    return this.r.length / 2;
  }

  /** Adds [start, end); returns how many sequence numbers were not in the set before. */
  add(start: number, end: number): number {
    if (end <= start) return 0;
    const r = this.r;
    // First range whose end >= start (it may touch or overlap the new one).
    let i = 0;
    while (i < r.length && r[i + 1]! < start) i += 2;
    let s = start;
    let e = end;
    let covered = 0;
    let j = i;
    while (j < r.length && r[j]! <= e) {
      const rs = r[j]!;
      const re = r[j + 1]!;
      covered += Math.max(0, Math.min(re, end) - Math.max(rs, start));
      if (rs < s) s = rs;
      if (re > e) e = re;
      j += 2;
    }
    r.splice(i, j - i, s, e);
    this.size += end - start - covered;
    return end - start - covered;
  }

  /** If a range starts at `from`, removes it and returns its end; otherwise returns `from`. */
  takePrefix(from: number): number {
    const r = this.r;
    if (r.length === 0 || r[0]! > from) return from;
    const end = r[1]!;
    this.size -= end - r[0]!;
    r.splice(0, 2);
    return end;
  }

  has(seq: number): boolean {
    const r = this.r;
    for (let i = 0; i < r.length; i += 2) if (seq >= r[i]! && seq < r[i + 1]!) return true;
    return false;
  }

  /** The ranges, flat [start, end) pairs, lowest first (a copy). */
  toArray(): number[] {
    return this.r.slice();
  }
}
