// The benchmark's node generator: a /var/log/pods tree of CRI (or docker json-file) log files (one file per stream),
// the PodList that describes the pods (for the static metadata provider), and messages that carry
// a stream number and a sequence number, so that the counting sink can tell missing events from
// duplicates. Deterministic by seed: the same seed writes the same bytes (apart from the live
// writer's wall-clock timestamps).
//
// Every message is exactly `messageBytes` long and starts with `seq=<stream>:<n> `; the rest is
// filler drawn from a fixed word list. Files are named
// <root>/<namespace>_<pod>_<uid>/<container>/0.log as the kubelet names them.
import { closeSync, fsyncSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { argoPod, podListJson, prng, type SamplePod } from "../../src/dev/sample-node.ts";

export interface NodePlan {
  root: string;
  podsFile: string;
  pods: SamplePod[];
  /** One entry per log file; the index is the stream number carried in every message. */
  streams: Array<{ pod: SamplePod; container: string; path: string }>;
  messageBytes: number;
  seed: number;
  /** How lines are written: containerd's CRI format, or docker's json-file driver. */
  format: LogFormat;
}

export type LogFormat = "cri" | "docker";

export interface PlanOptions {
  dir: string;
  pods: number;
  containersPerPod?: number;
  messageBytes?: number;
  seed?: number;
  format?: LogFormat;
}

const WORDS = ["processed", "batch", "items", "worker", "status=ok", "elapsed", "request", "cache", "lookup", "commit", "offset", "shard", "retry=0", "bytes", "ready", "step"];

/** Creates the pods (all selected, every Pipekit label present), their directories and the PodList. */
export function planNode(o: PlanOptions): NodePlan {
  const seed = o.seed ?? 1;
  const rand = prng(seed);
  const root = join(o.dir, "pods");
  const containers = ["main", "wait", "init"].slice(0, o.containersPerPod ?? 1);
  const pods: SamplePod[] = [];
  const streams: NodePlan["streams"] = [];
  for (let p = 0; p < o.pods; p++) {
    const pod = argoPod(rand, `bench-wf-${seed}-${p % 7}`, `step${p}`, containers);
    pods.push(pod);
    for (const c of containers) {
      const d = join(root, `${pod.namespace}_${pod.name}_${pod.uid}`, c);
      mkdirSync(d, { recursive: true });
      streams.push({ pod, container: c, path: join(d, "0.log") });
    }
  }
  const podsFile = join(o.dir, "podlist.json");
  writeFileSync(podsFile, podListJson(pods, "bench-node"));
  return { root, podsFile, pods, streams, messageBytes: o.messageBytes ?? 200, seed, format: o.format ?? "cri" };
}

/**
 * Filler for messages: deterministic per seed, 256 KiB of words, numbers and hex ids, so that
 * a batch compresses about as well as real application logs (gzip level 1: ~4x), not 40x.
 */
function filler(seed: number, length: number): string {
  const rand = prng(seed ^ 0x5eed);
  const parts: string[] = [];
  let n = 0;
  while (n < Math.max(length, 256 * 1024) + 64) {
    const r = rand();
    const w = r < 0.55 ? WORDS[Math.floor(rand() * WORDS.length)]! : r < 0.8 ? String(Math.floor(rand() * 1e6)) : Math.floor(rand() * 2 ** 32).toString(16).padStart(8, "0");
    parts.push(w);
    n += w.length + 1;
  }
  return parts.join(" ");
}

/** Builds CRI lines for one stream; reuses one filler string, sliced per message. */
export class LineMaker {
  private readonly fill: string;
  constructor(private readonly plan: NodePlan) {
    this.fill = filler(plan.seed, plan.messageBytes + 1024);
  }

  /** The message of event n of stream s: exactly messageBytes bytes (ASCII). */
  message(stream: number, n: number): string {
    const head = `seq=${stream}:${n} `;
    const off = ((n * 2654435761) >>> 0) % (this.fill.length - this.plan.messageBytes);
    return head + this.fill.slice(off, off + Math.max(0, this.plan.messageBytes - head.length));
  }

  /**
   * One line (every 16th on stderr so both streams are exercised): CRI (`F`), or docker json-file
   * (`{"log":"…\n","stream":…,"time":…}`; the messages need no escapes but the newline).
   */
  line(timestamp: string, stream: number, n: number): string {
    const s = n % 16 === 15 ? "stderr" : "stdout";
    if (this.plan.format === "docker") return `{"log":"${this.message(stream, n)}\\n","stream":"${s}","time":"${timestamp}"}\n`;
    return `${timestamp} ${s} F ${this.message(stream, n)}\n`;
  }
}

/** An RFC 3339 timestamp with nanoseconds, as containerd writes it. */
export function criTimestamp(epochMs: number, nanosWithinMs = 0): string {
  const iso = new Date(Math.floor(epochMs)).toISOString(); // 2026-11-25T10:00:00.123Z
  const sub = String(Math.floor((epochMs % 1) * 1e6) + nanosWithinMs).padStart(6, "0").slice(0, 6);
  return `${iso.slice(0, 23)}${sub}Z`;
}

/**
 * Writes `perStream` events to every stream's file (created or appended), starting at sequence
 * number `from`. Timestamps advance a microsecond per line from a fixed epoch (deterministic).
 * Returns the bytes written.
 */
export function writeBacklog(plan: NodePlan, perStream: number, from = 0): number {
  const maker = new LineMaker(plan);
  const base = Date.UTC(2026, 10, 25, 10, 0, 0);
  let bytes = 0;
  const CHUNK = 4096;
  plan.streams.forEach((s, idx) => {
    const fd = openSync(s.path, "a");
    try {
      for (let start = from; start < from + perStream; start += CHUNK) {
        let text = "";
        const end = Math.min(from + perStream, start + CHUNK);
        for (let n = start; n < end; n++) text += maker.line(criTimestamp(base + n / 1000), idx, n);
        const buf = Buffer.from(text);
        writeSync(fd, buf);
        bytes += buf.length;
      }
      // On disk before the collector starts ("files present at start"): otherwise the kernel's
      // writeback of these hundreds of MB runs during the measured run, on the same two cores
      // and the same disk as the collector's ring syncs (the first run after generating was the
      // slowest of three, e.g. 325 k vs 405 and 417 k events/s).
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
  return bytes;
}

/**
 * Writes events round-robin over the streams at a fixed rate (events/s) for a duration, with
 * wall-clock timestamps, in ticks of `tickMs`; or as fast as it can when rate is Infinity.
 * Resolves with the events written per stream.
 */
export async function writeLive(
  plan: NodePlan,
  opts: { rate: number; seconds?: number; total?: number; from?: number; tickMs?: number },
): Promise<{ perStream: number[]; bytes: number; seconds: number }> {
  const maker = new LineMaker(plan);
  const fds = plan.streams.map((s) => openSync(s.path, "a"));
  const next = plan.streams.map(() => opts.from ?? 0);
  const started = performance.now();
  const total = opts.total ?? Math.round(opts.rate * (opts.seconds ?? 0));
  const tickMs = opts.tickMs ?? 10;
  let written = 0;
  let bytes = 0;
  let stream = 0;
  const texts: string[] = plan.streams.map(() => "");
  const flush = () => {
    for (let i = 0; i < fds.length; i++) {
      if (texts[i]) {
        const buf = Buffer.from(texts[i]!);
        writeSync(fds[i]!, buf);
        bytes += buf.length;
        texts[i] = "";
      }
    }
  };
  try {
    while (written < total) {
      const elapsed = performance.now() - started;
      const due = Number.isFinite(opts.rate) ? Math.min(total, Math.floor((elapsed / 1000) * opts.rate)) : Math.min(total, written + 50_000);
      const nowMs = performance.timeOrigin + performance.now();
      for (; written < due; written++) {
        const n = next[stream]!++;
        texts[stream] += maker.line(criTimestamp(nowMs), stream, n);
        stream = (stream + 1) % fds.length;
      }
      flush();
      if (written < total) await Bun.sleep(Number.isFinite(opts.rate) ? tickMs : 0);
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  return { perStream: next.map((n) => n - (opts.from ?? 0)), bytes, seconds: (performance.now() - started) / 1000 };
}
