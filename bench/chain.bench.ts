// Chain micro-benchmark (issues 10, 20): the per-event cost of turning CRI and docker json-file
// bytes into ring records.
//
// - "reader + router": what the collector's source turn and Router.emit do for a 256 KiB read slice
//   (split, parse, merge, transform → filter → reshape, encode into the packed buffer handed to the
//   ring's appendPacked, here a sink that only counts) — the byte path (LineBatch) against the string
//   path (the reader with fastPath: false: decode, merge, JSON string, UTF-8 encode).
// - "encode only": one record from a parsed line — RecordEncoder.writeBytes from the line's bytes
//   against encode() + TextEncoder.encode (the router before the byte path).
// Three line mixes: typical (10 % JSON lines needing escapes, 4 % non-ASCII), every line a JSON line
// (every record escapes), every line with an invalid UTF-8 byte (the byte path's fallback).
// Plus the object reference (reshape + JSON.stringify) and a prototype of what proposal 4 (the
// file's constant prefix stored once) would leave per record.
//
//   bun bench/chain.bench.ts [--events 200000] [--rounds 5]
import type { PackedRecords } from "../src/buffer/types.ts";
import { ConfigSchema } from "../src/config/schema.ts";
import { PodCache } from "../src/metadata/cache.ts";
import type { PodMeta } from "../src/metadata/types.ts";
import { compileEncoder, reshape, type Stream, transform } from "../src/pipeline/chain.ts";
import { RecordBuffer } from "../src/pipeline/packed.ts";
import { Router } from "../src/pipeline/router.ts";
import { parseCriLine, scanCriLine } from "../src/source/line-format.ts";
import { LineBatch } from "../src/source/line-batch.ts";
import { LineReader, type LineReaderCounters } from "../src/source/line-reader.ts";
import { PartialMerger } from "../src/source/partial.ts";
import type { MergedLine } from "../src/source/types.ts";
import type { SourceFileInfo } from "../src/source/types.ts";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const EVENTS = arg("events", 200_000);
const ROUNDS = arg("rounds", 5);
const SLICE = 256 * 1024; // the source's read slice

const config = ConfigSchema.parse({});
const pod: PodMeta = {
  uid: "7f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b",
  namespace: "argo",
  name: "ci-build-7xk2p-compile-3012345678",
  labels: {
    "workflows.argoproj.io/workflow": "ci-build-7xk2p",
    "workflows.pipekit.io/org_uuid": "0b6f3c52-8f6e-4a0f-bb0e-3e5d7b9c1a44",
    "workflows.pipekit.io/run_uuid": "74676beb-e289-4bb4-a616-d011a835681b",
    "workflows.pipekit.io/pipe_uuid": "11111111-2222-4333-8444-555555555555",
  },
  annotations: { "workflows.argoproj.io/node-id": "ci-build-7xk2p-3012345678" },
};
const te = new TextEncoder();

type Mix = "typical" | "all JSON (escapes)" | "all invalid UTF-8 (fallback)";

/** 200-byte messages like the end-to-end benchmark's. */
function makeLines(n: number, mix: Mix): MergedLine[] {
  const filler = "processed batch items worker status=ok elapsed request cache lookup commit offset shard retry=0 bytes ready step ".repeat(4);
  const json = (i: number) => `{"level":"info","msg":"step ${i}","rows":${i * 7},"path":"C:\\\\tmp"} ` + filler;
  const out: MergedLine[] = [];
  for (let i = 0; i < n; i++) {
    let message = `seq=0:${i} ` + filler;
    if (mix === "all JSON (escapes)" || (mix === "typical" && i % 10 === 0)) message = json(i);
    if (mix === "typical" && i % 25 === 0) message = `warning: ünïcödé ✓ ${i} ` + filler;
    message = message.slice(0, 200);
    const t = 1_700_000_000_000 + i;
    out.push({ timestamp: new Date(t).toISOString().replace("Z", "123456Z"), stream: (i % 16 === 15 ? "stderr" : "stdout") as Stream, message, truncated: false });
  }
  return out;
}

/** The lines as docker's json-file driver writes them (Go's escaping: <, >, & as \u escapes too). */
function dockerLine(l: MergedLine): string {
  const log = JSON.stringify(`${l.message}\n`).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  return `{"log":${log},"stream":"${l.stream}","time":"${l.timestamp}"}\n`;
}

/** The lines as a CRI (or docker) file; the fallback mix gets one invalid byte (0xFF) in each message. */
function criFile(lines: MergedLine[], mix: Mix, docker = false): { bytes: Uint8Array; starts: number[] } {
  const parts: Uint8Array[] = [];
  for (const l of lines) {
    const line = te.encode(docker ? dockerLine(l) : `${l.timestamp} ${l.stream} F ${l.message}\n`);
    if (mix === "all invalid UTF-8 (fallback)") line[docker ? 40 : line.length - 20] = 0xff; // in the message
    parts.push(line);
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  const starts: number[] = [];
  let at = 0;
  for (const p of parts) {
    starts.push(at);
    bytes.set(p, at);
    at += p.length;
  }
  starts.push(at);
  return { bytes, starts };
}

interface Result {
  name: string;
  nsPerEvent: number;
  bytes: number;
}

function median(times: number[]): number {
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

function bench(name: string, fn: () => number): Result {
  fn(); // warm-up (JIT)
  const times: number[] = [];
  let bytes = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    bytes = fn();
    times.push(performance.now() - t);
  }
  return { name, nsPerEvent: (median(times) * 1e6) / EVENTS, bytes };
}

async function benchAsync(name: string, fn: () => Promise<number>): Promise<Result> {
  await fn();
  const times: number[] = [];
  let bytes = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    bytes = await fn();
    times.push(performance.now() - t);
  }
  return { name, nsPerEvent: (median(times) * 1e6) / EVENTS, bytes };
}

const id = transform(pod, "main", config.pipeline.fields);
const encoder = compileEncoder(id);
const cache = new PodCache({ deletionGraceSeconds: 60 });
cache.upsert(pod);
const file: SourceFileInfo = { id: "1:2", path: "/var/log/pods/x/main/0.log", namespace: "argo", podName: pod.name, podUid: pod.uid, container: "main", restart: 0, firstSeenAt: 0 };
let appended = 0;
const countingSink = {
  appendPacked: async (r: PackedRecords) => {
    appended += r.count;
    return appended;
  },
  lastSeq: () => appended,
  maxRecordBytes: () => 1 << 30,
};

/** The source turn + Router.emit over the whole file in read slices (copied into one reused buffer, as the source does). */
async function readerAndRouter(bytes: Uint8Array, fast: boolean): Promise<number> {
  const router = new Router(config, cache, { notifyUnknownPod() {} }, countingSink);
  const counters: LineReaderCounters = { linesRead: 0, linesMalformed: 0, linesTruncated: 0 };
  const reader = new LineReader({ partialKey: "uid/main/0", fileId: "f1", format: "auto", maxLineBytes: 1 << 20, merger: new PartialMerger(1 << 20), counters, fastPath: fast }, 0);
  const readBuf = new Uint8Array(SLICE);
  const batch = new LineBatch(); // one per source, cleared per slice, as the source does
  for (let o = 0; o < bytes.length; o += SLICE) {
    const n = Math.min(SLICE, bytes.length - o);
    readBuf.set(bytes.subarray(o, o + n));
    batch.clear();
    reader.feed(readBuf.subarray(0, n), 0, batch); // fastPath false: every line merged and decoded
    await router.emit(file, batch);
  }
  if (router.counters.eventsAppended !== EVENTS) throw new Error(`appended ${router.counters.eventsAppended} of ${EVENTS}`);
  return router.counters.bytesAppended;
}

const results: Result[] = [];
const sections: Array<{ mix: Mix; results: Result[] }> = [];
for (const mix of ["typical", "all JSON (escapes)", "all invalid UTF-8 (fallback)"] as Mix[]) {
  const lines = makeLines(EVENTS, mix);
  const { bytes, starts } = criFile(lines, mix);
  const rs: Result[] = [];
  rs.push(await benchAsync("reader + router: byte path (LineBatch → writeBytes)", () => readerAndRouter(bytes, true)));
  rs.push(await benchAsync("reader + router: string path (fastPath: false)", () => readerAndRouter(bytes, false)));
  const docker = criFile(lines, mix, true).bytes;
  rs.push(await benchAsync("docker json-file, reader + router: byte path (escaped ranges)", () => readerAndRouter(docker, true)));
  rs.push(await benchAsync("docker json-file, reader + router: string path (fastPath: false)", () => readerAndRouter(docker, false)));
  const fields = { tsEnd: 0, stderr: false, partial: false, contentStart: 0 };
  const out = new RecordBuffer();
  rs.push(
    bench("scan + encode only: writeBytes into one buffer", () => {
      let b = 0;
      out.clear();
      for (let i = 0; i < EVENTS; i++) {
        const s = starts[i]!;
        const e = starts[i + 1]! - 1;
        scanCriLine(bytes, s, e, fields);
        if (!encoder.writeBytes(bytes, s, fields.tsEnd, fields.stderr, fields.contentStart, e, out)) {
          const f = parseCriLine(bytes, s, e)!;
          out.writeString(encoder.encode(f.timestamp, f.stream, f.content)!);
          out.end();
        }
        if (out.at > 512 * 1024) (b += out.at), out.clear();
      }
      return b + out.at;
    }),
  );
  rs.push(
    bench("parse + encode only: parseCriLine + encode + TextEncoder.encode (before)", () => {
      let b = 0;
      for (let i = 0; i < EVENTS; i++) {
        const f = parseCriLine(bytes, starts[i]!, starts[i + 1]! - 1)!;
        b += te.encode(encoder.encode(f.timestamp, f.stream, f.content)!).length;
      }
      return b;
    }),
  );
  if (mix === "typical") {
    rs.push(
      bench("reference: reshape + JSON.stringify + TextEncoder", () => {
        let b = 0;
        for (const l of lines) b += te.encode(JSON.stringify(reshape(id, l))).length;
        return b;
      }),
    );
    // Proposal 4: the file's constant prefix stored once; each record holds only its own fields.
    const scratch = new Uint8Array(1 << 20);
    const suffixMid = { stdout: `","stream":"stdout","message":`, stderr: `","stream":"stderr","message":` };
    rs.push(
      bench("prototype: per-line suffix only (prefix stored once per file)", () => {
        let b = 0;
        let at = 0;
        for (const l of lines) {
          if (at > scratch.length - 4096) (b += at), (at = 0);
          at += te.encodeInto(`"${l.timestamp}${suffixMid[l.stream]}${JSON.stringify(l.message)}}`, scratch.subarray(at)).written;
        }
        return b + at;
      }),
    );
  }
  sections.push({ mix, results: rs });
  results.push(...rs);
}

console.log(`chain micro-benchmark: ${EVENTS} CRI (and docker) lines of 200-byte messages, median of ${ROUNDS} rounds, Bun ${Bun.version}`);
for (const { mix, results: rs } of sections) {
  console.log(`-- ${mix}${mix === "typical" ? " (10 % JSON needing escapes, 4 % non-ASCII)" : ""}`);
  for (const r of rs) {
    console.log(`${r.name.padEnd(76)} ${r.nsPerEvent.toFixed(0).padStart(6)} ns/event  ${(1e9 / r.nsPerEvent / 1e6).toFixed(2).padStart(5)} M ev/s  ${(r.bytes / EVENTS).toFixed(0)} B/record`);
  }
}
