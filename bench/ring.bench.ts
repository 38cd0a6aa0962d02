// Ring micro-benchmark (issue 3): append, then read + ack, of 300-byte records through a mapped
// ring file, in batches as the source and the sink use it. Prints MB/s each way, the anonymous
// memory (RssAnon) the process holds, and the mapped file pages (RssFile).
//
//   bun bench/ring.bench.ts [--mb 500] [--rounds 6] [--gc-every-mb 32] [--copy]
//
// --copy splices each read batch into a fresh JSON-array body, as the sink does, so the benchmark
// also shows the garbage a real consumer makes; --gc-every-mb 0 turns the ring's paced collection
// off to show what anonymous memory does without it.
// Payload bytes are what is counted (the JSON records), not the 24-byte record headers.
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRing } from "../src/buffer/ring.ts";
import { appendPayloads, readPayloads } from "../test/support/ring-payloads.ts";
import { GcPacing } from "../src/buffer/gc-pacer.ts";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const capacityMB = arg("mb", 500);
const rounds = arg("rounds", 6);
const gcEveryMB = arg("gc-every-mb", 32);
const RECORD = 300;
const BATCH = 1024;

function mem(): { anonMB: number; fileMB: number } {
  const s = readFileSync("/proc/self/status", "utf8");
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? 0);
  return { anonMB: get("RssAnon") / 1024, fileMB: (get("RssFile") + get("RssShmem")) / 1024 };
}
const copy = process.argv.includes("--copy");
let bodies = 0;
/** The sink's splice: `[` p0 `,` p1 ... `]` into one new buffer. */
function splice(ps: Uint8Array[], bytes: number): Uint8Array {
  const body = new Uint8Array(bytes + ps.length + 1);
  let o = 0;
  body[o++] = 0x5b;
  for (let i = 0; i < ps.length; i++) {
    if (i) body[o++] = 0x2c;
    body.set(ps[i]!, o);
    o += ps[i]!.length;
  }
  body[o] = 0x5d;
  return body;
}

// Pre-built payloads: JSON records of exactly 300 bytes, as the reshape stage hands them over.
const enc = new TextEncoder();
const payloads: Uint8Array[] = [];
for (let i = 0; i < BATCH; i++) {
  const head = `{"orgUUID":"o","runUUID":"r","pipeUUID":"p","nodeID":"n","podName":"pod-${i}","containerName":"main","timestamp":"2026-11-25T09:00:00.000000000Z","stream":"stdout","message":"`;
  const tail = `"}`;
  payloads.push(enc.encode(head + "x".repeat(RECORD - head.length - tail.length) + tail));
}

const dir = mkdtempSync(join(tmpdir(), "ring-bench-"));
const ring = await openRing({ dir, capacityBytes: capacityMB * 1e6, syncIntervalMs: 1000, traffic: new GcPacing({ everyBytes: gcEveryMB * (1 << 20) }) });
const D = ring.stats().capacityBytes;
const perRound = Math.floor((D * 0.8) / (RECORD + 24) / BATCH) * BATCH; // fill ~80 % per round

console.log(`ring ${capacityMB} MB, ${RECORD}-byte records, batches of ${BATCH}, ${perRound} records per round, gc every ${gcEveryMB || "never"} MiB${copy ? ", sink-like copies" : ""}`);
const m0 = mem();
console.log(`start: anon ${m0.anonMB.toFixed(0)} MB, file-backed ${m0.fileMB.toFixed(0)} MB`);
let peakAnon = m0.anonMB;
const appendRates: number[] = [];
const readRates: number[] = [];
for (let r = 0; r < rounds; r++) {
  let t = performance.now();
  for (let n = 0; n < perRound; n += BATCH) await appendPayloads(ring, payloads);
  const appendMs = performance.now() - t;
  peakAnon = Math.max(peakAnon, mem().anonMB);
  t = performance.now();
  let got = 0;
  let sum = 0;
  for (;;) {
    const b = readPayloads(ring, BATCH, 4e6);
    if (!b) break;
    // Touch the data as the sink does when splicing (sum a byte per record).
    if (copy) {
      const body = splice(b.payloads, b.bytes);
      sum += body[1]! * b.payloads.length;
      bodies++;
    } else for (let i = 0; i < b.payloads.length; i++) sum += b.payloads[i]![0]!;
    got += b.payloads.length;
    ring.ack(b.firstSeq, b.payloads.length);
  }
  const readMs = performance.now() - t;
  if (got !== perRound || sum !== perRound * 123) throw new Error(`read ${got} of ${perRound}`);
  await ring.sync();
  const m = mem();
  peakAnon = Math.max(peakAnon, m.anonMB);
  const mb = (perRound * RECORD) / 1e6;
  appendRates.push(mb / (appendMs / 1000));
  readRates.push(mb / (readMs / 1000));
  console.log(
    `round ${r + 1}: append ${(mb / (appendMs / 1000)).toFixed(0)} MB/s, read+ack ${(mb / (readMs / 1000)).toFixed(0)} MB/s, ` +
      `anon ${m.anonMB.toFixed(0)} MB, file-backed ${m.fileMB.toFixed(0)} MB, last sync ${ring.stats().lastSyncMs.toFixed(1)} ms`,
  );
}
// Recovery time: reopen a ring holding ~80 % of its capacity (every record's CRC is checked).
for (let n = 0; n < perRound; n += BATCH) await appendPayloads(ring, payloads);
await ring.close();
let t = performance.now();
const reopened = await openRing({ dir, capacityBytes: capacityMB * 1e6, syncIntervalMs: 1000, traffic: new GcPacing() });
const openMs = performance.now() - t;
const held = reopened.stats().records;
await reopened.close();
console.log(`reopen with ${held} records (${((held * RECORD) / 1e6).toFixed(0)} MB) to scan: ${openMs.toFixed(0)} ms`);
rmSync(dir, { recursive: true, force: true });
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
void bodies;
console.log(`median: append ${median(appendRates).toFixed(0)} MB/s, read+ack ${median(readRates).toFixed(0)} MB/s; peak anon ${peakAnon.toFixed(0)} MB`);
