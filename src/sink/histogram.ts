// A fixed-bucket latency histogram in Prometheus shape (cumulative counts per upper bound).

export const LATENCY_BOUNDS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

export interface HistogramSnapshot {
  /** Upper bounds in seconds; +Inf is implied (its cumulative count is `count`). */
  boundsSeconds: readonly number[];
  /** cumulativeCounts[i] = observations <= boundsSeconds[i]. */
  cumulativeCounts: number[];
  count: number;
  sumSeconds: number;
}

export class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #count = 0;
  #sum = 0;

  constructor(bounds: readonly number[] = LATENCY_BOUNDS_SECONDS) {
    this.#bounds = bounds;
    this.#counts = new Array<number>(bounds.length).fill(0);
  }

  observe(seconds: number): void {
    this.#count++;
    this.#sum += seconds;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (seconds <= this.#bounds[i]!) {
        this.#counts[i]!++;
        return;
      }
    }
  }

  snapshot(): HistogramSnapshot {
    const cumulativeCounts: number[] = [];
    let acc = 0;
    for (const c of this.#counts) cumulativeCounts.push((acc += c));
    return { boundsSeconds: this.#bounds, cumulativeCounts, count: this.#count, sumSeconds: this.#sum };
  }
}
