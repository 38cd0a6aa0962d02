// Chain micro-benchmark (issue 10): the per-event cost of transform → filter → reshape as the
// router runs it — the compiled encoder that splices a line's fields into pre-built JSON
// fragments, then UTF-8 encodes the record for the ring — against the object reference
// (reshape + JSON.stringify), and two bench-local prototypes that show what is left to gain:
// encoding a batch into one buffer (encodeInto) instead of one Uint8Array per record, and storing
// only the per-line suffix (timestamp, stream, message) when the file's constant prefix is kept once.
//
//   bun bench/chain.bench.ts [--events 200000] [--rounds 5]
import { ConfigSchema } from "../src/config/schema.ts";
import { PodCache } from "../src/metadata/cache.ts";
import type { PodMeta } from "../src/metadata/types.ts";
import { compileEncoder, reshape, transform, type Stream } from "../src/pipeline/chain.ts";
import { Router } from "../src/pipeline/router.ts";
import type { MergedLine } from "../src/source/partial.ts";
import type { SourceFileInfo } from "../src/source/source.ts";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const EVENTS = arg("events", 200_000);
const ROUNDS = arg("rounds", 5);
const BATCH = 512; // lines per emit: a 256 KiB read slice of ~250-byte CRI lines holds ~1000

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

/** 200-byte messages like the end-to-end benchmark's; every 10th a JSON log line (needs escapes), every 25th non-ASCII. */
function makeLines(n: number): MergedLine[] {
  const filler = "processed batch items worker status=ok elapsed request cache lookup commit offset shard retry=0 bytes ready step ".repeat(4);
  const out: MergedLine[] = [];
  for (let i = 0; i < n; i++) {
    let message = `seq=0:${i} ` + filler;
    if (i % 10 === 0) message = `{"level":"info","msg":"step ${i}","rows":${i * 7},"path":"C:\\\\tmp"} ` + filler;
    if (i % 25 === 0) message = `warning: ünïcödé ✓ ${i} ` + filler;
    message = message.slice(0, 200);
    const t = 1_700_000_000_000 + i;
    out.push({ timestamp: new Date(t).toISOString().replace("Z", "123456Z"), stream: (i % 16 === 15 ? "stderr" : "stdout") as Stream, message, truncated: false });
  }
  return out;
}

function bench(name: string, fn: () => number, events: number): { name: string; nsPerEvent: number; bytes: number } {
  fn(); // warm-up (JIT)
  const times: number[] = [];
  let bytes = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    bytes = fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const ms = times[times.length >> 1]!;
  return { name, nsPerEvent: (ms * 1e6) / events, bytes };
}

const lines = makeLines(EVENTS);
const id = transform(pod, "main", config.pipeline.fields);
const encoder = compileEncoder(id);
const te = new TextEncoder();
const results: Array<{ name: string; nsPerEvent: number; bytes: number }> = [];

results.push(
  bench("reference: reshape + JSON.stringify + TextEncoder", () => {
    let b = 0;
    for (const l of lines) b += te.encode(JSON.stringify(reshape(id, l))).length;
    return b;
  }, EVENTS),
);
results.push(
  bench("compiled encoder: string only", () => {
    let b = 0;
    for (const l of lines) b += encoder.encode(l.timestamp, l.stream, l.message)!.length;
    return b;
  }, EVENTS),
);
results.push(
  bench("compiled encoder + TextEncoder.encode (the router's per-event work)", () => {
    let b = 0;
    for (const l of lines) b += te.encode(encoder.encode(l.timestamp, l.stream, l.message)!).length;
    return b;
  }, EVENTS),
);

// The router itself, with a sink that only counts (no ring): encoder lookup, counters, payload array.
const cache = new PodCache({ deletionGraceSeconds: 60 });
cache.upsert(pod);
let appended = 0;
const router = new Router(config, cache, { notifyUnknownPod() {} }, {
  append: async (payloads) => {
    appended += payloads.length;
    return appended;
  },
  lastSeq: () => appended,
});
const file: SourceFileInfo = { id: "1:2", path: "/var/log/pods/x/main/0.log", namespace: "argo", podName: pod.name, podUid: pod.uid, container: "main", restart: 0, firstSeenAt: 0 };
const batches: MergedLine[][] = [];
for (let i = 0; i < lines.length; i += BATCH) batches.push(lines.slice(i, i + BATCH));
{
  // Router.emit is async; time it outside bench() with awaits.
  for (const b of batches) await router.emit(file, b);
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const before = router.counters.bytesAppended;
    const t = performance.now();
    for (const b of batches) await router.emit(file, b);
    times.push(performance.now() - t);
    if (r === ROUNDS - 1) results.push({ name: `Router.emit, ${BATCH} lines per call, counting sink`, nsPerEvent: 0, bytes: router.counters.bytesAppended - before });
  }
  times.sort((a, b) => a - b);
  results[results.length - 1]!.nsPerEvent = (times[times.length >> 1]! * 1e6) / EVENTS;
}

// Prototype A: one buffer per batch (encodeInto), records as subarray views: no per-record allocation.
const scratch = new Uint8Array(BATCH * 1024);
results.push(
  bench("prototype: encoder string + encodeInto one buffer per batch", () => {
    let b = 0;
    for (const batch of batches) {
      let at = 0;
      for (const l of batch) {
        const r = te.encodeInto(encoder.encode(l.timestamp, l.stream, l.message)!, scratch.subarray(at));
        at += r.written;
      }
      b += at;
    }
    return b;
  }, EVENTS),
);

// Prototype B: the file's constant prefix stored once; each record holds only its own fields.
const suffixMid = { stdout: `","stream":"stdout","message":`, stderr: `","stream":"stderr","message":` };
results.push(
  bench("prototype: per-line suffix only (prefix stored once per file)", () => {
    let b = 0;
    for (const batch of batches) {
      let at = 0;
      for (const l of batch) {
        const r = te.encodeInto(`"${l.timestamp}${suffixMid[l.stream]}${JSON.stringify(l.message)}}`, scratch.subarray(at));
        at += r.written;
      }
      b += at;
    }
    return b;
  }, EVENTS),
);

// Prototype C: bytes in, bytes out. The CRI line's timestamp and content are copied from the
// read slice into the record (pre-encoded head and middles), with no string at all, when the
// content needs no JSON escape (no byte < 0x20, '"' or '\\'; UTF-8 validated when a byte ≥ 0x80
// is seen); any other line takes the string path (decode + JSON.stringify). The reference point
// for this is the source's parse (decode) + the router's encode + TextEncoder, measured first.
const criText = lines.map((l) => `${l.timestamp} ${l.stream} F ${l.message}\n`).join("");
const criBytes = te.encode(criText);
const starts: number[] = [];
for (let i = 0, at = 0; i < lines.length; i++) {
  starts.push(at);
  at = criBytes.indexOf(0x0a, at) + 1;
}
starts.push(criBytes.length);
const { parseCriLine } = await import("../src/source/line-format.ts");
results.push(
  bench("current: parseCriLine (decode) + encoder + TextEncoder.encode", () => {
    let b = 0;
    for (let i = 0; i < lines.length; i++) {
      const f = parseCriLine(criBytes, starts[i]!, starts[i + 1]! - 1)!;
      b += te.encode(encoder.encode(f.timestamp, f.stream, f.content)!).length;
    }
    return b;
  }, EVENTS),
);
const headBytes = te.encode(`{"orgUUID":${JSON.stringify(id.orgUUID)},"runUUID":${JSON.stringify(id.runUUID)},"pipeUUID":${JSON.stringify(id.pipeUUID)},"nodeID":${JSON.stringify(id.nodeID)},"podName":${JSON.stringify(id.podName)},"containerName":${JSON.stringify(id.containerName)},"timestamp":"`);
const midOut = te.encode(`","stream":"stdout","message":"`);
const midErr = te.encode(`","stream":"stderr","message":"`);
const strict = new TextDecoder("utf-8", { fatal: true });
const td = new TextDecoder();
function plainJson(bytes: Uint8Array, from: number, to: number): boolean {
  let high = false;
  for (let i = from; i < to; i++) {
    const c = bytes[i]!;
    if (c < 0x20 || c === 0x22 || c === 0x5c) return false;
    if (c >= 0x80) high = true;
  }
  if (high) {
    try {
      strict.decode(bytes.subarray(from, to));
    } catch {
      return false;
    }
  }
  return true;
}
results.push(
  bench("prototype: byte-level CRI → record (copy, no strings), one buffer per batch", () => {
    let b = 0;
    let at = 0;
    for (let i = 0; i < lines.length; i++) {
      if (at > scratch.length - 4096) (b += at), (at = 0);
      const start = starts[i]!;
      const end = starts[i + 1]! - 1;
      const s1 = criBytes.indexOf(0x20, start);
      const s2 = criBytes.indexOf(0x20, s1 + 1);
      const cs = criBytes.indexOf(0x20, s2 + 1) + 1;
      scratch.set(headBytes, at);
      at += headBytes.length;
      scratch.set(criBytes.subarray(start, s1), at);
      at += s1 - start;
      const mid = criBytes[s1 + 4] === 0x6f ? midOut : midErr;
      if (plainJson(criBytes, cs, end)) {
        scratch.set(mid, at);
        at += mid.length;
        scratch.set(criBytes.subarray(cs, end), at);
        at += end - cs;
        scratch[at++] = 0x22;
      } else {
        scratch.set(mid.subarray(0, mid.length - 1), at);
        at += mid.length - 1;
        at += te.encodeInto(JSON.stringify(td.decode(criBytes.subarray(cs, end))), scratch.subarray(at)).written;
      }
      scratch[at++] = 0x7d;
    }
    return b + at;
  }, EVENTS),
);

console.log(`chain micro-benchmark: ${EVENTS} events of 200-byte messages (10 % JSON needing escapes, 4 % non-ASCII), median of ${ROUNDS} rounds, Bun ${Bun.version}`);
for (const r of results) {
  const perEvent = r.bytes / EVENTS;
  console.log(`${r.name.padEnd(72)} ${r.nsPerEvent.toFixed(0).padStart(6)} ns/event  ${(1e9 / r.nsPerEvent / 1e6).toFixed(2).padStart(5)} M ev/s  ${perEvent.toFixed(0)} B/record`);
}
