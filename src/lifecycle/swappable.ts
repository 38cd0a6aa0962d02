// A part that a SIGHUP may replace while the collector runs (the sender, the metadata provider,
// the effective config). Whoever needs it holds the holder and asks for the current one at the
// moment of use, so no caller keeps a stale reference and nothing is reassigned behind a readonly.

export class Swappable<T> {
  constructor(private current: T) {}

  get(): T {
    return this.current;
  }

  /** Puts `next` in place; returns the part it replaces. */
  swap(next: T): T {
    const previous = this.current;
    this.current = next;
    return previous;
  }
}
