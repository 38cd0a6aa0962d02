// Ring files damaged between two runs of the real process (issue 9, corpus: "a torn ring file, a ring
// file of random bytes"): the collector starts, never delivers a corrupt record, delivers the rest,
// and counts what the damage destroyed — so that lost = counted, exactly.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DATA_OFFSET } from "../../src/buffer/format.ts";
import { PipekitRecordSchema } from "../../src/pipeline/record.ts";
import { prng, type SampleNode, writeSampleNode } from "../../src/dev/sample-node.ts";
import { waitFor } from "../support/collector-process.ts";
import { type Env, makeEnv, stop } from "./support.ts";

let env: Env;
let node: SampleNode;
let config: string;

beforeAll(async () => {
  env = await makeEnv("ringdamage", (dir) => (node = writeSampleNode(dir, { seed: 21, linesPerContainer: 200 })));
  config = env.config({ buffer: { maxBytes: "4MiB", syncIntervalMs: 100 }, source: { maxLineBytes: "64KiB" } });
});
afterAll(() => env.cleanup());

const ringPath = () => join(env.dir, "data", "ring.dat");
const counts = () => {
  const m = new Map<string, number>();
  for (const r of env.messenger.received()) m.set(r.message, (m.get(r.message) ?? 0) + 1);
  return m;
};

test("a torn ring file (cut inside its records after a crash): starts, delivers what is intact, counts exactly what was cut", async () => {
  // Run 1: the messenger refuses everything, so every record waits in the ring; then SIGKILL.
  env.messenger.setFaults({ forceStatus: 503 });
  const first = env.start(config);
  expect(await env.ready()).toBe(true);
  const expected = node.expectedMessages.size;
  expect(
    await waitFor(async () => {
      const s = await env.status();
      return s.events.appended >= expected && s.ring.durableSeq >= s.ring.nextSeq - 1;
    }, 20_000, 100),
  ).toBe(true);
  await Bun.sleep(300); // checkpoints follow the durable report
  const before = await env.status();
  expect(before.ring.records).toBe(expected);
  first.proc.kill("SIGKILL");
  await first.exited;

  // Tear it: the file ends in the middle of its records.
  const size = statSync(ringPath()).size;
  const cutAt = DATA_OFFSET + Math.floor(before.ring.usedBytes * 0.6) + 7;
  truncateSync(ringPath(), cutAt);

  // Run 2: a healthy messenger.
  env.messenger.setFaults({});
  const second = env.start(config);
  expect(await env.ready()).toBe(true);
  let after = await env.status();
  await waitFor(async () => {
    after = await env.status();
    return after.ring.records === 0 && counts().size > 0;
  }, 20_000, 100);
  await Bun.sleep(500);
  after = await env.status();
  const got = counts();
  const cut = (after.ring.recoveryCutRecords ?? 0) + after.ring.recoverySkippedRecords;
  expect(statSync(ringPath()).size).toBe(size); // the file regains its size
  expect(second.proc.exitCode).toBeNull();
  expect(cut).toBeGreaterThan(0);
  // /metrics says the same as /status, where operators alert on it.
  const metrics = await (await fetch(`http://127.0.0.1:${env.port}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(metrics)?.[1]);
  expect(metric("pipekit_collector_ring_recovery_skipped_records_total")).toBe(after.ring.recoverySkippedRecords);
  expect(metric("pipekit_collector_ring_recovery_cut_bytes_total")).toBe(after.ring.recoveryCutBytes);
  expect(after.ring.recoverySkippedRecords + after.ring.recoveryCutBytes).toBeGreaterThan(0);
  // Lost = counted: what arrived plus what the recovery reports cut is everything that was in the ring.
  expect(got.size + cut).toBe(expected);
  for (const [m, n] of got) {
    expect(node.expectedMessages.has(m)).toBe(true);
    expect(n).toBe(1);
  }
  for (const r of env.messenger.received()) expect(PipekitRecordSchema.safeParse(r).success).toBe(true);
  expect(await stop(second)).toBe(0);
}, 60_000);

test("a ring file of random bytes: moved aside (kept for inspection), an empty ring starts, new lines arrive, nothing corrupt", async () => {
  const size = statSync(ringPath()).size;
  const rand = prng(5);
  const junk = new Uint8Array(size);
  for (let i = 0; i < size; i++) junk[i] = Math.floor(rand() * 256);
  writeFileSync(ringPath(), junk);
  const known = new Set(counts().keys());
  const added = node.appendLines(25);
  expect(added).toBeGreaterThan(0);
  const c = env.start(config);
  expect(await env.ready()).toBe(true);
  const fresh = [...node.expectedMessages].filter((m) => !known.has(m));
  // Fresh lines: everything appended now, plus what the torn ring lost in the first test is not expected again.
  expect(await waitFor(() => fresh.slice(-added).every((m) => counts().has(m)), 20_000, 100)).toBe(true);
  const st = await env.status();
  expect(c.proc.exitCode).toBeNull();
  expect(readdirSync(join(env.dir, "data")).some((n) => n.startsWith("ring.dat.invalid-"))).toBe(true);
  expect(JSON.stringify(st.recentErrors)).toContain("moved it aside");
  // Counted, not only logged: the moved-aside file's size is on /metrics.
  expect(st.ring.recoveryMovedAsideFiles).toBe(1);
  const metrics = await (await fetch(`http://127.0.0.1:${env.port}/metrics`)).text();
  const name = "pipekit_collector_ring_moved_aside_bytes_total";
  expect(metrics).toMatch(new RegExp(`^${name} ${size}$`, "m"));
  for (const r of env.messenger.received()) expect(PipekitRecordSchema.safeParse(r).success).toBe(true);
  for (const [, n] of counts()) expect(n).toBe(1);
  expect(await stop(c)).toBe(0);
}, 60_000);
