// A continuous container runtime + kubelet for one node, on local disk: Argo pods whose containers
// write CRI lines without pause while the kubelet rotates their logs (SPEC §2.1: `N.log` renamed to
// `N.log.<YYYYMMDD-hhmmss>`, a late write landing in the renamed file before the runtime reopens,
// a new `N.log`, older rotated files gzip-compressed through `.gz.tmp`, the oldest deleted beyond
// `maxFiles`). Every message is derived from (stream, sequence), so a checker can tell a missing,
// duplicated or damaged event without keeping the messages (delivery-tracker.ts). Shared by the
// reliability tests, the chaos run and the benchmarks.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { argoPod, podListJson, prng, type SamplePod } from "../../src/dev/sample-node.ts";

export interface RotatingWriterOptions {
  /** The `/var/log/pods`-like root to write under. */
  root: string;
  /** Where the PodList (static metadata provider) is written. */
  podsFile: string;
  seed: number;
  pods?: number;
  containers?: string[];
  /** Rotate a live file once it reaches this many bytes (kubelet default 10 MiB). */
  rotateBytes?: number;
  /** Files kept per container, live one included (kubelet default 5). */
  maxFiles?: number;
  /** Message lengths are drawn in [min, max] bytes (before the prefix). */
  messageBytes?: { min: number; max: number };
  /** About one line in this many is split by the runtime into P/F fragments (0: never). */
  partialEvery?: number;
  /** About one line in this many goes to stderr. */
  stderrEvery?: number;
  /**
   * Of the lines split into P/F fragments, about one in this many has the next event, on the other
   * stream (stdout/stderr), split too and its fragments interleaved with them (0: never). A reader
   * resuming between them must not make a line of the other stream's tail.
   */
  interleaveEvery?: number;
  /**
   * About one rotation in this many falls inside a line: the line that reaches the limit is split, its
   * first fragment left in the renamed file and the rest written to the new one (0: only where a
   * split line happens to straddle the limit).
   */
  rotateInsideLineEvery?: number;
  /** Keep the ledger of each line's fragments in the order of writes (`ledger`), for a crash's accounting. */
  ledger?: boolean;
}

/** Per stream, per sequence: the places of a line's first and last fragment in the writer's order of writes (from 1; 0: not written). */
export interface LineLedger {
  firstWrite: Uint32Array;
  lastWrite: Uint32Array;
}

export interface WriterStats {
  events: number;
  lines: number;
  bytes: number;
  rotations: number;
  lateWrites: number;
  gzipped: number;
  deleted: number;
  /** Rotations that fell between the P fragments and the F of one line. */
  splitAcrossRotation: number;
  /** Pairs of split lines, one per stream, whose fragments were interleaved. */
  interleaved: number;
}

interface Stream {
  id: number;
  pod: SamplePod;
  container: string;
  dir: string;
  fd: number;
  liveBytes: number;
  seq: number;
  lastStamp: number;
}

const MESSAGE_PREFIX = /^c(\d+):(\d+):/;

/** A fast integer hash (splitmix-like), for deterministic payloads. */
function mix(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Where the writer cuts a message of `length` characters into fragments: P, P, F thirds, or halves at a rotation. */
export function fragmentCuts(length: number): number[] {
  return [Math.floor(length / 3), Math.floor(length / 2), Math.floor((2 * length) / 3)];
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_=.,;{}[]\"'/\\";

/**
 * The message of event `seq` of stream `id`: a prefix naming both, then a payload derived from them
 * (some with JSON-hostile characters, tabs and non-ASCII), so the checker can rebuild it.
 */
export function expectedMessage(seed: number, id: number, seq: number, min: number, max: number): string {
  const h = mix(seed ^ id, seq);
  const len = min + (h % (max - min + 1));
  let s = `c${id}:${seq}:`;
  let x = h;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += ALPHABET[(x >>> 16) % ALPHABET.length];
  }
  if (h % 23 === 0) s += "\tünïcödé ✓";
  return s;
}

/** Which stream and sequence a delivered message claims to be, or null. */
export function parseMessageId(message: string): { id: number; seq: number } | null {
  const m = MESSAGE_PREFIX.exec(message);
  return m ? { id: Number(m[1]), seq: Number(m[2]) } : null;
}

function stamp(sec: number): string {
  const d = new Date(sec * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

let tsCounter = 0;
function criTime(): string {
  // RFC 3339 with nanoseconds, as containerd writes them; the sub-millisecond digits are a counter.
  const iso = new Date().toISOString(); // …T10:00:00.123Z
  tsCounter = (tsCounter + 1) % 1_000_000;
  return `${iso.slice(0, -1)}${String(tsCounter).padStart(6, "0")}Z`;
}

export class RotatingWriter {
  readonly pods: SamplePod[];
  readonly streams: Stream[] = [];
  readonly stats: WriterStats = { events: 0, lines: 0, bytes: 0, rotations: 0, lateWrites: 0, gzipped: 0, deleted: 0, splitAcrossRotation: 0, interleaved: 0 };
  readonly seed: number;
  readonly messageBytes: { min: number; max: number };
  private readonly rand: () => number;
  private readonly rotateBytes: number;
  private readonly maxFiles: number;
  private readonly partialEvery: number;
  private readonly stderrEvery: number;
  private readonly interleaveEvery: number;
  private readonly rotateInsideLineEvery: number;
  /** Physical lines written so far (a line's fragments each count): the writer's order of writes. */
  writes = 0;
  /** With opts.ledger, per stream: where each line's fragments were written (split: first ≠ last). */
  readonly ledger: LineLedger[] | null;
  /** The error that stopped run(), if one did. */
  failure: Error | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed = false;

  constructor(readonly opts: RotatingWriterOptions) {
    this.seed = opts.seed >>> 0;
    this.rand = prng(this.seed);
    this.rotateBytes = opts.rotateBytes ?? 10 * 1024 * 1024;
    this.maxFiles = Math.max(2, opts.maxFiles ?? 5);
    this.messageBytes = opts.messageBytes ?? { min: 20, max: 240 };
    this.partialEvery = opts.partialEvery ?? 40;
    this.stderrEvery = opts.stderrEvery ?? 9;
    this.interleaveEvery = opts.interleaveEvery ?? 0;
    this.rotateInsideLineEvery = opts.rotateInsideLineEvery ?? 0;
    const containers = opts.containers ?? ["wait", "main"];
    this.pods = [];
    for (let i = 0; i < (opts.pods ?? 4); i++) this.pods.push(argoPod(this.rand, `chaos-wf-${i % 3}`, `step${i}`, containers));
    mkdirSync(opts.root, { recursive: true });
    for (const pod of this.pods) {
      for (const container of pod.containers) {
        const dir = join(opts.root, `${pod.namespace}_${pod.name}_${pod.uid}`, container);
        mkdirSync(dir, { recursive: true });
        this.streams.push({ id: this.streams.length, pod, container, dir, fd: openSync(join(dir, "0.log"), "a"), liveBytes: 0, seq: 0, lastStamp: 0 });
      }
    }
    writeFileSync(opts.podsFile, podListJson(this.pods));
    this.ledger = opts.ledger ? this.streams.map(() => ({ firstWrite: new Uint32Array(1024), lastWrite: new Uint32Array(1024) })) : null;
  }

  /** Events written per stream (sequence numbers 0..n-1 exist). */
  written(): number[] {
    return this.streams.map((s) => s.seq);
  }

  /** The message event `seq` of stream `id` carries. */
  message(id: number, seq: number): string {
    return expectedMessage(this.seed, id, seq, this.messageBytes.min, this.messageBytes.max);
  }

  /** Writes `count` events spread at random over the streams, rotating whatever grows past its limit. */
  write(count: number): void {
    if (this.closed) throw new Error("writer closed");
    const per = new Array<number>(this.streams.length).fill(0);
    for (let i = 0; i < count; i++) per[Math.floor(this.rand() * this.streams.length)]!++;
    for (let i = 0; i < per.length; i++) if (per[i]) this.writeStream(this.streams[i]!, per[i]!);
  }

  /**
   * Writes `ratePerSecond` events a second until `total` have been written (or stop()); resolves then.
   * Each tick writes what the clock says is due, so a slow tick catches up. A write that fails (a full
   * disk) stops the writer and is kept in `failure`: the events it counted never reached a file, so a
   * run that checks delivery against them must fail rather than call them lost.
   */
  run(ratePerSecond: number, total: number, tickMs = 20): Promise<void> {
    const start = performance.now();
    const base = this.stats.events;
    return new Promise((resolve) => {
      const tick = () => {
        if (this.closed) return done();
        const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * ratePerSecond));
        const n = due - (this.stats.events - base);
        try {
          if (n > 0) this.write(n);
        } catch (e) {
          this.failure = e instanceof Error ? e : new Error(String(e));
          return done();
        }
        if (this.stats.events - base >= total) done();
      };
      const done = () => {
        if (this.timer) clearInterval(this.timer);
        this.timer = null;
        resolve();
      };
      this.timer = setInterval(tick, tickMs);
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.stop();
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams) closeSync(s.fd);
  }

  /**
   * Writes `count` events of one container in one write (a rotation cuts it in two). Each event is one
   * F line, or P, P, F fragments of one stream, possibly interleaved with a second split line of the
   * other stream; a line is never left unfinished at the end of the write, so a writer stalled by a
   * busy CPU cannot make the collector's partialFlushMs cut a line.
   */
  private writeStream(s: Stream, count: number): void {
    const out = { chunk: "" };
    for (let i = 0; i < count; i++) {
      const first = this.nextEvent(s);
      const lines = [first];
      if (first.split && i + 1 < count && this.interleaveEvery > 0 && this.rand() * this.interleaveEvery < 1) {
        const other = this.nextEvent(s);
        i++;
        lines.push({ ...other, stream: first.stream === "stdout" ? "stderr" : "stdout", split: other.msg.length > 8 });
        this.stats.interleaved++;
      }
      const fragments = this.interleave(lines.map((l) => this.fragments(l).map((text) => ({ text, seq: l.seq }))));
      // The line that reaches the rotation limit may be cut there: its head stays in the renamed file.
      if (fragments.length === 1 && this.rotationDue(s, out.chunk, fragments[0]!.text) && this.rotateInsideLineEvery > 0 && this.rand() * this.rotateInsideLineEvery < 1) {
        const cut = fragmentCuts(first.msg.length)[1]!;
        this.put(s, out, `${criTime()} ${first.stream} P ${first.msg.slice(0, cut)}\n`, first.seq, false, true);
        this.put(s, out, `${criTime()} ${first.stream} F ${first.msg.slice(cut)}\n`, first.seq, true);
        continue;
      }
      fragments.forEach((f, k) => this.put(s, out, f.text, f.seq, k > 0));
    }
    this.flush(s, out.chunk);
  }

  private nextEvent(s: Stream): { seq: number; msg: string; stream: "stdout" | "stderr"; split: boolean } {
    const seq = s.seq;
    const msg = this.message(s.id, s.seq++);
    const stream = this.stderrEvery > 0 && mix(this.seed, s.seq * 7 + s.id) % this.stderrEvery === 0 ? "stderr" : "stdout";
    this.stats.events++;
    const split = this.partialEvery > 0 && mix(s.id, s.seq ^ this.seed) % this.partialEvery === 0 && msg.length > 8;
    return { seq, msg, stream, split };
  }

  /** The physical lines of one event: one F line, or the runtime's P, P, F fragments of a long one. */
  private fragments(e: { msg: string; stream: string; split: boolean }): string[] {
    if (!e.split) return [`${criTime()} ${e.stream} F ${e.msg}\n`];
    const [third, , twoThirds] = fragmentCuts(e.msg.length);
    const cuts = [0, third!, twoThirds!, e.msg.length];
    return [0, 1, 2].map((k) => `${criTime()} ${e.stream} ${k < 2 ? "P" : "F"} ${e.msg.slice(cuts[k], cuts[k + 1])}\n`);
  }

  /** A random merge of the lines' fragments, each line's own order kept. */
  private interleave<T>(lines: T[][]): T[] {
    if (lines.length === 1) return lines[0]!;
    const [a, b] = lines as [T[], T[]];
    const merged: T[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      const takeA = j >= b.length || (i < a.length && (i === 0 || this.rand() < 0.5));
      merged.push(takeA ? a[i++]! : b[j++]!);
    }
    return merged;
  }

  private rotationDue(s: Stream, chunk: string, line: string): boolean {
    return s.liveBytes + chunk.length + line.length > this.rotateBytes && s.liveBytes + chunk.length > 0;
  }

  /**
   * Appends one physical line to the pending chunk, rotating first when it would pass the limit (never
   * with `noRotate`). `midLine`: a line is begun and not finished, so no late write may land here.
   */
  private put(s: Stream, out: { chunk: string }, line: string, seq: number, midLine: boolean, noRotate = false): void {
    if (!noRotate && this.rotationDue(s, out.chunk, line)) {
      this.flush(s, out.chunk);
      out.chunk = "";
      this.rotate(s, !midLine);
      if (midLine) this.stats.splitAcrossRotation++;
    }
    out.chunk += line;
    this.stats.lines++;
    this.record(s.id, seq);
  }

  /** One more physical line of event `seq` of stream `id`, in the order of writes (the ledger's). */
  private record(id: number, seq: number): void {
    const at = this.writes++;
    const l = this.ledger?.[id];
    if (!l) return;
    if (seq >= l.firstWrite.length) {
      let n = l.firstWrite.length;
      while (n <= seq) n *= 2;
      const first = new Uint32Array(n);
      first.set(l.firstWrite);
      const last = new Uint32Array(n);
      last.set(l.lastWrite);
      l.firstWrite = first;
      l.lastWrite = last;
    }
    if (l.firstWrite[seq] === 0) l.firstWrite[seq] = at + 1;
    l.lastWrite[seq] = at + 1;
  }

  private flush(s: Stream, text: string): void {
    if (!text) return;
    const bytes = Buffer.from(text);
    let off = 0;
    while (off < bytes.length) off += writeSync(s.fd, bytes, off, bytes.length - off);
    s.liveBytes += bytes.length;
    this.stats.bytes += bytes.length;
  }

  /** kubelet's rotation of one container log. */
  private rotate(s: Stream, allowLateWrite: boolean): void {
    const live = join(s.dir, "0.log");
    const sec = Math.max(Math.floor(Date.now() / 1000), s.lastStamp + 1); // kubelet stamps whole seconds
    s.lastStamp = sec;
    renameSync(live, `${live}.${stamp(sec)}`);
    // The runtime keeps writing to the renamed file until it reopens: one late event lands there.
    if (allowLateWrite && this.rand() < 0.5) {
      const seq = s.seq;
      const msg = this.message(s.id, s.seq++);
      this.stats.events++;
      this.stats.lines++;
      this.stats.lateWrites++;
      this.record(s.id, seq);
      const text = `${criTime()} stdout F ${msg}\n`;
      writeSync(s.fd, text);
      this.stats.bytes += Buffer.byteLength(text);
    }
    closeSync(s.fd);
    s.fd = openSync(live, "a");
    s.liveBytes = 0;
    this.stats.rotations++;
    // Older rotated files are compressed (all but the newest), then the oldest removed.
    const rotated = () => readdirSync(s.dir).filter((n) => n.startsWith("0.log.") && !n.endsWith(".tmp")).sort();
    const plain = rotated().filter((n) => !n.endsWith(".gz"));
    for (const n of plain.slice(0, -1)) {
      const tmp = join(s.dir, `${n}.gz.tmp`);
      writeFileSync(tmp, gzipSync(readFileSync(join(s.dir, n)), { level: 1 }));
      renameSync(tmp, join(s.dir, `${n}.gz`));
      unlinkSync(join(s.dir, n));
      this.stats.gzipped++;
    }
    const all = rotated();
    for (const n of all.slice(0, Math.max(0, all.length - (this.maxFiles - 1)))) {
      unlinkSync(join(s.dir, n));
      this.stats.deleted++;
    }
  }
}
