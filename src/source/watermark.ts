// A file's checkpoint as a watermark (docs/source.md): the lowest offset not yet safe. Each emit
// leaves a mark — "everything before this offset is covered by ring records up to this sequence
// number" — and the checkpoint moves over a mark only once the ring says that sequence is durable.
// With the offset goes where each stream stood there (a line of one may be inside a line of the other).
import type { ResumeStreams } from "./types.ts";

/** The sequence number of an expected mark: no ring sequence reaches it. */
const EXPECTED = Number.POSITIVE_INFINITY;

interface Mark {
  seq: number;
  offset: number;
  /** Where each stream stands at `offset` (null: not known). */
  streams: ResumeStreams | null;
}

export class Watermark {
  private marks: Mark[] = [];

  constructor(
    /** Everything before it is safe (durable in the ring, filtered or skipped). */
    public checkpoint: number,
    /** Where each stream stands at the checkpoint (null: not known; a file opened at its first byte, say). */
    public streams: ResumeStreams | null = null,
  ) {}

  /** Whether marks wait for the ring to make their records durable. */
  get waiting(): boolean {
    return this.marks.length > 0;
  }

  /**
   * Everything before `safeOffset` is covered by ring records up to `seq` (it takes the place of an
   * expected mark); `streams`: where each stream stands there.
   */
  mark(seq: number, safeOffset: number, streams: ResumeStreams | null = null): void {
    const last = this.marks[this.marks.length - 1];
    if (last && (last.seq === seq || last.seq === EXPECTED)) {
      last.seq = seq;
      last.offset = safeOffset;
      last.streams = streams;
    } else this.marks.push({ seq, offset: safeOffset, streams });
  }

  /**
   * A mark is on its way: a line with fragments here completed, and the record that carries it is not
   * in the ring yet. Until the mark comes the checkpoint stays where it is and the file is `waiting`
   * (a closed file is not done while its last line is in flight).
   */
  expect(): void {
    const last = this.marks[this.marks.length - 1];
    if (last?.seq !== EXPECTED) this.marks.push({ seq: EXPECTED, offset: this.checkpoint, streams: this.streams });
  }

  /** Moves the checkpoint over the marks durable at `durable`; returns whether it changed. */
  advance(durable: number): boolean {
    let i = 0;
    while (i < this.marks.length && (this.marks[i] as Mark).seq <= durable) i++;
    if (i === 0) return false;
    const { offset, streams } = this.marks[i - 1] as Mark;
    this.marks.splice(0, i);
    if (offset === this.checkpoint && sameStreams(streams, this.streams)) return false;
    this.checkpoint = offset;
    this.streams = streams;
    return true;
  }

  /** Starts over at `offset` (a truncated file read again from the top, a file re-read from its start). */
  reset(offset: number): void {
    this.marks = [];
    this.checkpoint = offset;
    this.streams = null;
  }
}

function sameStreams(a: ResumeStreams | null, b: ResumeStreams | null): boolean {
  return a === b || (a !== null && b !== null && a.stdout === b.stdout && a.stderr === b.stderr);
}
