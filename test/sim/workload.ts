// The simulated node's workload: pods whose containers write CRI log lines, and the kubelet that
// rotates their files (rename, a few late writes into the renamed file before the runtime reopens,
// gzip of older rotated files, deletion beyond five), restarts containers and removes pod
// directories. Every line carries its id; the ledger remembers what each one must become.
import { gzipSync } from "node:zlib";
import type { PodMeta } from "../../src/metadata/types.ts";
import type { Rng } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";
import type { SimFs } from "./sim-fs.ts";

export const ROOT = "/var/log/pods";

/** What a pod's lines must become: delivered (selected, labelled), filtered, or never read (not selected). */
export type PodKind = "argo" | "argo-unlabelled" | "other" | "unknown";

export interface SimPod {
  uid: string;
  namespace: string;
  name: string;
  kind: PodKind;
  meta: PodMeta;
  /** When its metadata reaches the cache (ms; Infinity: never). */
  metaAt: number;
  deleted: boolean;
  /** When its metadata left the API server (ms; Infinity: never). */
  deletedAt: number;
}

export interface WrittenLine {
  id: number;
  pod: SimPod;
  container: string;
  restart: number;
  stream: "stdout" | "stderr";
  /** The timestamp of its first fragment, as written. */
  timestamp: string;
  /** The content's bytes (all fragments). */
  content: Uint8Array;
  /** What the record's message must be (invalid UTF-8 replaced). */
  message: string;
  /** Whether its last fragment (F) was written: a line whose writer died is flushed after a timeout. */
  complete: boolean;
  /** Inodes its fragments went to (a line can span a rotation), as numbers (reused) and as files (SimFs.fileOf: unique). */
  inodes: number[];
  files: number[];
  /**
   * Byte offsets in `content` where a fragment began partialFlushMs or more after the one before (a
   * busy CPU delays writers too): the collector may have flushed the line there, as documented.
   */
  pausedAt: number[];
  /** Whether a collector process was running when it was written, and when (virtual ms). */
  writtenWhileUp: boolean;
  writtenAt: number;
  /**
   * Its first and last fragment's places in the order of all physical writes (a container's files
   * are read in that order): while a split line is between the two, it is pending.
   */
  firstWrite: number;
  lastWrite: number;
}

export interface WorkloadOptions {
  pods: number;
  /** Lines to write per container instance, roughly. */
  linesPerContainer: number;
  /** Rotate a live file beyond this many bytes. */
  rotateBytes: number;
  /** The runtime splits lines longer than this into P fragments. */
  splitBytes: number;
  /** Probability a line is long (split into fragments). */
  longLineChance: number;
  /** Probability a line is far longer than maxLineBytes. */
  hugeLineBytes: number;
  hugeLineChance: number;
  /** Mean pause between a container's writes (ms). */
  writeIntervalMs: number;
  /**
   * The longest pause inside a line being written fragment by fragment: below source.partialFlushMs,
   * so that a line the collector cuts is its bug, not a writer that stalled mid-line.
   */
  maxFragmentGapMs: number;
  /**
   * source.partialFlushMs: a busy CPU delays the writer too, and a fragment written this long after
   * the one before may find its line flushed already (WrittenLine.pausedAt).
   */
  partialFlushMs: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const ALPHABET = enc.encode('abcdefghijklmnopqrstuvwxyz0123456789 -_:,."\\{}[]/\t');
const MULTIBYTE = ["é", "ß", "€", "✓", "日本", "😀"].map((s) => enc.encode(s));

interface ContainerState {
  pod: SimPod;
  name: string;
  restart: number;
  dir: string;
  livePath: string;
  /** The inode the runtime writes to (the renamed file until it reopens). */
  ino: number;
  writtenLines: number;
  /** A line being written fragment by fragment, per stream. */
  pending: Map<"stdout" | "stderr", { line: WrittenLine; rest: Uint8Array; lastAt: number }>;
  /** Rotated files, oldest first. */
  rotated: string[];
  /** Renamed but the runtime has not reopened yet. */
  reopenPending: boolean;
  done: boolean;
}

export class Workload {
  readonly pods: SimPod[] = [];
  readonly lines: WrittenLine[] = [];
  readonly byId = new Map<number, WrittenLine>();
  /** The .gz the kubelet made of a rotated file (by SimFs file ids): its content lives on there. */
  readonly gzOf = new Map<number, number>();
  readonly stats = { rotations: 0, gzipped: 0, deletedRotated: 0, restarts: 0, abandoned: 0, garbage: 0, podsRemoved: 0, bytes: 0 };
  private readonly containers: ContainerState[] = [];
  /** Restarts scheduled and not started yet, per pod. */
  private readonly restartsScheduled = new Map<SimPod, number>();
  private nextId = 1;
  private tsCounter = 0;
  private writes = 0;
  private stamps = 0;
  private active = 0;
  /** Whether a collector process is running (set by the simulation). */
  collectorUp: () => boolean = () => true;
  /** Metadata changes for the simulated provider: (uid, meta or null for deletion). */
  onMetadata: (uid: string, meta: PodMeta | null) => void = () => {};

  constructor(
    private readonly fs: SimFs,
    private readonly clock: Scheduler,
    private readonly rng: Rng,
    private readonly opts: WorkloadOptions,
  ) {}

  /** The files under a rotated name now (a .gz as the file it was made of: the one its lines went to). */
  rotatedFilesNow(): number[] {
    const plainOf = new Map([...this.gzOf].map(([plain, gz]) => [gz, plain]));
    const inodes = this.containers.flatMap((c) => c.rotated.map((path) => this.fs.inoAt(path)));
    return inodes.filter((ino): ino is number => ino !== null).map((ino) => plainOf.get(this.fs.fileOf(ino)) ?? this.fs.fileOf(ino));
  }

  /** Whether every container has written all it will write. */
  get finished(): boolean {
    return this.active === 0;
  }

  start(): void {
    this.fs.mkdirp(ROOT);
    for (let p = 0; p < this.opts.pods; p++) {
      const startAt = this.rng.chance(0.5) ? 0 : this.rng.int(0, 4000);
      this.clock.after(startAt, () => this.startPod(p));
      this.active++;
    }
  }

  private startPod(index: number): void {
    this.active--;
    const kinds: PodKind[] = ["argo", "argo", "argo", "argo", "argo-unlabelled", "other", "unknown"];
    const kind = index === 0 ? "argo" : this.rng.pick(kinds);
    const uid = `0000${index}-${this.rng.int(1000, 9999)}-sim`;
    const name = `wf-${index}-step-${this.rng.int(100, 999)}`;
    const labels: Record<string, string> = {};
    if (kind === "argo" || kind === "argo-unlabelled" || kind === "unknown") {
      labels["workflows.argoproj.io/workflow"] = `wf-${index}`;
      labels["workflows.pipekit.io/org_uuid"] = `org-${index}`;
      labels["workflows.pipekit.io/pipe_uuid"] = `pipe-${index}`;
      if (kind !== "argo-unlabelled") labels["workflows.pipekit.io/run_uuid"] = `run-${index}`;
    }
    const meta: PodMeta = Object.freeze({
      uid,
      namespace: "argo",
      name,
      labels: Object.freeze(labels),
      annotations: Object.freeze({ "workflows.argoproj.io/node-id": `node-${index}` }),
    });
    const pod: SimPod = { uid, namespace: "argo", name, kind, meta, metaAt: Number.POSITIVE_INFINITY, deleted: false, deletedAt: Number.POSITIVE_INFINITY };
    this.pods.push(pod);
    if (kind !== "unknown") {
      // Metadata usually arrives first; sometimes a moment after the files (the file is held).
      const delay = this.rng.chance(0.7) ? 0 : this.rng.int(0, 3000);
      pod.metaAt = this.clock.peek() + delay;
      this.clock.after(delay, () => this.onMetadata(uid, meta));
    }
    const names = ["main", "wait", "init"].slice(0, this.rng.int(1, 3));
    for (const c of names) this.startContainer(pod, c, 0);
  }

  private startContainer(pod: SimPod, name: string, restart: number): void {
    const dir = `${ROOT}/${pod.namespace}_${pod.name}_${pod.uid}/${name}`;
    this.fs.mkdirp(dir);
    const livePath = `${dir}/${restart}.log`;
    const ino = this.fs.create(livePath);
    this.fs.hold(ino);
    const c: ContainerState = { pod, name, restart, dir, livePath, ino, writtenLines: 0, pending: new Map(), rotated: [], reopenPending: false, done: false };
    this.containers.push(c);
    this.active++;
    this.scheduleWrite(c);
  }

  private scheduleWrite(c: ContainerState): void {
    let pause = this.rng.chance(0.1) ? this.rng.int(0, this.opts.writeIntervalMs * 20) : this.rng.int(0, this.opts.writeIntervalMs * 2);
    if (c.pending.size > 0) pause = Math.min(pause, this.opts.maxFragmentGapMs);
    this.clock.after(pause, () => this.writeBurst(c));
  }

  private writeBurst(c: ContainerState): void {
    // Every line begun gets a fragment each burst: the pause inside a line stays under maxFragmentGapMs.
    for (const [stream, p] of [...c.pending]) this.writeFragment(c, stream, p);
    const n = this.rng.int(1, 12);
    for (let i = 0; i < n && (c.writtenLines < this.opts.linesPerContainer || c.pending.size > 0); i++) this.writeStep(c);
    if (c.reopenPending && this.rng.chance(0.6)) this.reopen(c);
    if (c.writtenLines >= this.opts.linesPerContainer && c.pending.size === 0) return this.finishContainer(c);
    this.scheduleWrite(c);
  }

  /** One physical line: the next fragment of a pending line, or a new line (or garbage). */
  private writeStep(c: ContainerState): void {
    let stream: "stdout" | "stderr" = this.rng.chance(0.8) ? "stdout" : "stderr";
    // Past its last line, a container only finishes the lines it has begun.
    if (c.writtenLines >= this.opts.linesPerContainer) stream = c.pending.has("stdout") ? "stdout" : "stderr";
    const pending = c.pending.get(stream);
    if (pending) return this.writeFragment(c, stream, pending);
    if (this.rng.chance(0.004)) {
      this.stats.garbage++;
      return this.writePhysical(c, this.garbage());
    }
    const line = this.newLine(c, stream);
    c.writtenLines++;
    const rest = line.content;
    if (rest.length <= this.opts.splitBytes) {
      this.writeFragmentBytes(c, line, rest, false);
      line.complete = true;
      return;
    }
    c.pending.set(stream, { line, rest, lastAt: this.clock.peek() });
    this.writeFragment(c, stream, c.pending.get(stream)!);
  }

  private writeFragment(c: ContainerState, stream: "stdout" | "stderr", p: { line: WrittenLine; rest: Uint8Array; lastAt: number }): void {
    const now = this.clock.peek();
    if (now - p.lastAt >= this.opts.partialFlushMs) p.line.pausedAt.push(p.line.content.length - p.rest.length);
    p.lastAt = now;
    // Runtimes split on bytes, wherever that falls (inside a UTF-8 character too); a huge line in
    // 16 KiB pieces, as containerd does (smaller ones would only cost time).
    const size = p.line.content.length > 64 * 1024 ? 16 * 1024 : this.rng.int(1, this.opts.splitBytes);
    const last = size >= p.rest.length;
    const piece = last ? p.rest : p.rest.subarray(0, size);
    this.writeFragmentBytes(c, p.line, piece, !last);
    if (last) {
      p.line.complete = true;
      c.pending.delete(stream);
    } else p.rest = p.rest.subarray(size);
  }

  private writeFragmentBytes(c: ContainerState, line: WrittenLine, piece: Uint8Array, partial: boolean): void {
    const ts = line.inodes.length === 0 ? line.timestamp : this.timestamp();
    const head = enc.encode(`${ts} ${line.stream} ${partial ? "P" : "F"} `);
    const bytes = new Uint8Array(head.length + piece.length + 1);
    bytes.set(head, 0);
    bytes.set(piece, head.length);
    bytes[bytes.length - 1] = 0x0a;
    if (!line.inodes.includes(c.ino)) line.inodes.push(c.ino);
    const file = this.fs.fileOf(c.ino);
    if (!line.files.includes(file)) line.files.push(file);
    if (line.firstWrite < 0) line.firstWrite = this.writes;
    line.lastWrite = this.writes;
    this.writePhysical(c, bytes);
  }

  private writePhysical(c: ContainerState, bytes: Uint8Array): void {
    this.writes++;
    this.fs.append(c.ino, bytes, c.reopenPending ? null : c.livePath);
    this.stats.bytes += bytes.length;
    if (!c.reopenPending && this.fs.sizeOf(c.ino) >= this.opts.rotateBytes) this.rotate(c);
  }

  private newLine(c: ContainerState, stream: "stdout" | "stderr"): WrittenLine {
    const id = this.nextId++;
    const content = this.content(id);
    const line: WrittenLine = {
      id,
      pod: c.pod,
      container: c.name,
      restart: c.restart,
      stream,
      timestamp: this.timestamp(),
      content,
      message: dec.decode(content),
      complete: false,
      inodes: [],
      files: [],
      pausedAt: [],
      writtenWhileUp: this.collectorUp(),
      writtenAt: this.clock.peek(),
      firstWrite: -1,
      lastWrite: -1,
    };
    this.lines.push(line);
    this.byId.set(id, line);
    return line;
  }

  /** `L<id>;` then text: mostly ASCII, some multi-byte characters, JSON specials, now and then invalid UTF-8. */
  private content(id: number): Uint8Array {
    const o = this.opts;
    let len = this.rng.int(0, 160);
    if (this.rng.chance(o.longLineChance)) len = this.rng.int(o.splitBytes, o.splitBytes * 6);
    if (this.rng.chance(o.hugeLineChance)) len = o.hugeLineBytes + this.rng.int(0, 4096);
    const head = enc.encode(`L${id};`);
    const out = new Uint8Array(head.length + len + 8);
    out.set(head, 0);
    let at = head.length;
    const invalid = this.rng.chance(0.02);
    while (at < head.length + len) {
      const r = this.rng.float();
      if (r < 0.03) {
        const m = this.rng.pick(MULTIBYTE);
        out.set(m, at);
        at += m.length;
      } else if (invalid && r < 0.05) out[at++] = this.rng.pick([0xff, 0xc3, 0x80, 0xe2, 0xf0]);
      else out[at++] = ALPHABET[this.rng.int(0, ALPHABET.length - 1)] as number;
    }
    return out.subarray(0, at);
  }

  private garbage(): Uint8Array {
    const n = this.rng.int(1, 60);
    const out = new Uint8Array(n + 1);
    for (let i = 0; i < n; i++) {
      let b = this.rng.int(0, 255);
      if (b === 0x0a) b = 0x01;
      out[i] = b;
    }
    out[0] = 0x7f; // never a valid CRI timestamp nor a JSON object
    out[n] = 0x0a;
    return out;
  }

  private timestamp(): string {
    const t = this.clock.peek();
    const ns = String(++this.tsCounter % 1_000_000_000).padStart(9, "0");
    return `${new Date(t).toISOString().slice(0, 19)}.${ns}Z`;
  }

  /**
   * The kubelet acts now, whatever else is in progress: rotates a running container's live file, or
   * compresses and prunes its rotated files. Which, and whose, is drawn from `rng`; what a rotation
   * then schedules draws from the workload's stream, as any rotation does.
   */
  kubeletNow(rng: Rng): void {
    const running = this.containers.filter((c) => !c.done && this.fs.exists(c.livePath));
    if (running.length === 0) return;
    const c = rng.pick(running);
    if (rng.chance(0.5)) this.rotate(c);
    else this.compressAndPrune(c);
  }

  /** kubelet: rename the live file; the runtime keeps writing to it until it reopens. */
  private rotate(c: ContainerState): void {
    if (!this.fs.exists(c.livePath)) return; // its pod's directory was removed already
    const stamp = this.stamp();
    const rotatedPath = `${c.livePath}.${stamp}`;
    this.fs.rename(c.livePath, rotatedPath);
    c.rotated.push(rotatedPath);
    c.reopenPending = true;
    this.stats.rotations++;
    // The runtime reopens when the kubelet asks it to, within a second (a few late writes meanwhile).
    if (this.rng.chance(0.5)) this.reopen(c);
    else this.clock.after(this.rng.int(0, 1000), () => this.reopen(c));
    this.clock.after(this.rng.int(0, 2000), () => this.compressAndPrune(c));
  }

  private reopen(c: ContainerState): void {
    if (!c.reopenPending) return;
    c.reopenPending = false;
    if (!this.fs.exists(c.dir)) return; // its pod's directory was removed: it writes on into the renamed file
    this.fs.unhold(c.ino);
    c.ino = this.fs.create(c.livePath);
    this.fs.hold(c.ino);
  }

  /** kubelet: gzip every rotated file but the newest, delete beyond four rotated files. */
  private compressAndPrune(c: ContainerState): void {
    for (let i = 0; i < c.rotated.length - 1; i++) {
      const path = c.rotated[i] as string;
      if (path.endsWith(".gz") || !this.fs.exists(path)) continue;
      const gz = `${path}.gz`;
      const plain = this.fs.fileOf(this.fs.inoAt(path) as number);
      const gzIno = this.fs.writeWhole(gz, new Uint8Array(gzipSync(this.fs.readFile(path), { level: 1 }))); // level 1: the reader takes any level, and it is the cheapest
      this.gzOf.set(plain, this.fs.fileOf(gzIno));
      this.fs.unlink(path);
      c.rotated[i] = gz;
      this.stats.gzipped++;
    }
    while (c.rotated.length > 4) {
      const oldest = c.rotated.shift() as string;
      if (this.fs.exists(oldest)) this.fs.unlink(oldest);
      this.stats.deletedRotated++;
    }
  }

  private finishContainer(c: ContainerState): void {
    c.done = true;
    this.reopen(c);
    this.fs.unhold(c.ino); // the container exited: the runtime closes its file
    this.active--;
    if (c.restart < 2 && this.rng.chance(0.15)) {
      // The container restarts: a new file `<restart+1>.log`; now and then its last line was cut short.
      this.stats.restarts++;
      this.active++;
      this.restartsScheduled.set(c.pod, (this.restartsScheduled.get(c.pod) ?? 0) + 1);
      this.clock.after(this.rng.int(10, 1000), () => {
        this.active--;
        this.restartsScheduled.set(c.pod, (this.restartsScheduled.get(c.pod) ?? 1) - 1);
        this.startContainer(c.pod, c.name, c.restart + 1);
      });
    }
    if (this.containers.filter((o) => o.pod === c.pod).every((o) => o.done) && !this.hasRestartPending(c.pod)) {
      this.clock.after(this.rng.int(2000, 30_000), () => this.removePod(c.pod));
    }
  }

  private hasRestartPending(pod: SimPod): boolean {
    return this.containers.some((o) => o.pod === pod && !o.done);
  }

  /** The pod is deleted: its metadata goes, and later its log directory. */
  private removePod(pod: SimPod): void {
    if (pod.deleted || this.hasRestartPending(pod)) return;
    const removeTreeAfter = this.rng.int(1000, 20_000); // drawn first: a skipped removal shifts no later draw
    // A restart scheduled and not started yet: the kubelet deletes a pod, and later its log directory,
    // only once every container has exited for good (the restarted one's end removes it).
    if ((this.restartsScheduled.get(pod) ?? 0) > 0) return;
    pod.deleted = true;
    pod.deletedAt = this.clock.peek();
    this.stats.podsRemoved++;
    this.onMetadata(pod.uid, null);
    this.clock.after(removeTreeAfter, () => this.fs.removeTree(`${ROOT}/${pod.namespace}_${pod.name}_${pod.uid}`));
  }

  private stamp(): string {
    const d = new Date(this.clock.peek() + ++this.stamps * 1000);
    const p = (n: number) => String(n).padStart(2, "0");
    return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  }
}
