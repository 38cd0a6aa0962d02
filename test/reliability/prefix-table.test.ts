// The prefix table across real restarts (docs/ring-format.md "Compact records"): the real collector
// stores each file's record prefix once, is SIGKILLed with records in the ring and lines still
// being written, and after the restart every line arrives (once, or again only as a bounded crash
// duplicate) as the full record, byte for byte what JSON.stringify of the record gives, with its
// own pod's identifiers. Then the table file is damaged between two runs: a clear error, the
// records that needed it dead-lettered (counted, never sent onto another prefix), new lines delivered.
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PREFIX_TABLE_FILE } from "../../src/buffer/prefix-table.ts";
import { writeSampleNode, type SampleNode } from "../../src/dev/sample-node.ts";
import { OUTPUT_FIELDS } from "../../src/pipeline/record.ts";
import { type CollectorProcess, waitFor } from "../support/collector-process.ts";
import { type Env, makeEnv, stop } from "./support.ts";

/** A messenger that keeps every accepted body as it came (the mock parses them), and can refuse. */
class RawMessenger {
  bodies: string[] = [];
  refuse = false;
  readonly server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      const body = await req.text();
      if (this.refuse) return new Response("busy", { status: 503 });
      this.bodies.push(body);
      return Response.json({ accepted: (JSON.parse(body) as unknown[]).length });
    },
  });
  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }
  records(): Array<{ raw: string; rec: Record<string, string> }> {
    const out: Array<{ raw: string; rec: Record<string, string> }> = [];
    for (const body of this.bodies) for (const rec of JSON.parse(body) as Array<Record<string, string>>) out.push({ raw: JSON.stringify(rec), rec });
    return out;
  }
}

let env: Env;
let node: SampleNode;
let raw: RawMessenger;
let config: string;
let running: CollectorProcess | null = null;
const dataDir = () => join(env.dir, "data");

beforeAll(async () => {
  env = await makeEnv("prefixes", (dir) => (node = writeSampleNode(dir, { seed: 31, linesPerContainer: 300 })));
  raw = new RawMessenger();
  config = env.config({ messenger: { baseUri: raw.url, batchMaxEvents: 200 }, buffer: { syncIntervalMs: 100 } });
});
afterEach(async () => {
  // A failed assertion must not leave a collector holding the data dir for the next test.
  if (running && running.proc.exitCode === null) await stop(running);
  running = null;
});
afterAll(async () => {
  raw.server.stop(true);
  await env.cleanup();
});

const counts = () => {
  const m = new Map<string, number>();
  for (const { rec } of raw.records()) m.set(rec.message as string, (m.get(rec.message as string) ?? 0) + 1);
  return m;
};

test("SIGKILL mid-stream with records in the ring: after the restart every line arrives as its full record, byte for byte", async () => {
  raw.refuse = true; // records wait in the ring
  const first = (running = env.start(config));
  expect(await env.ready()).toBe(true);
  expect(await waitFor(async () => (await env.status()).ring.records > 500, 20_000, 50)).toBe(true);
  await Bun.sleep(1500); // past the first reconciliation scan: checkpoints are being saved
  const waiting = await env.status();
  node.appendLines(100); // still being read when the kill comes
  first.proc.kill("SIGKILL");
  await first.exited;
  const table = JSON.parse(readFileSync(join(dataDir(), PREFIX_TABLE_FILE), "utf8"));
  expect(Object.keys(table.prefixes).length).toBeGreaterThan(0);

  raw.refuse = false;
  const second = (running = env.start(config));
  expect(await env.ready()).toBe(true);
  const allArrived = () => {
    const c = counts();
    return [...node.expectedMessages].every((m) => c.has(m));
  };
  expect(await waitFor(allArrived, 30_000, 200)).toBe(true);
  const st = await env.status();
  let fullBytes = 0;
  const got = raw.records();
  for (const { raw: text, rec } of got) {
    // The wire format is unchanged: keys in the contract's order, serialised as JSON.stringify does,
    // each record carrying its own pod and container (the message names them).
    expect(Object.keys(rec)).toEqual([...OUTPUT_FIELDS]);
    expect(rec.message as string).toContain(`${rec.podName}/${rec.containerName} line `);
    fullBytes += Buffer.byteLength(text);
  }
  for (const body of raw.bodies) expect(body).toBe(JSON.stringify(JSON.parse(body)));
  const c = counts();
  for (const [m, n] of c) {
    expect(node.expectedMessages.has(m)).toBe(true);
    expect(n).toBeLessThanOrEqual(2);
  }
  const dups = got.length - c.size;
  // Only what was appended since the last sync before the kill (nothing was acknowledged): the
  // lines written just before it, at most (crash-duplicates.test.ts asserts the tight bound).
  expect(dups).toBeLessThanOrEqual(200);
  // Stored compact: the records waiting in the ring took far fewer bytes (record headers included) than the full records.
  expect(waiting.ring.usedBytes / waiting.ring.records).toBeLessThan((fullBytes / got.length) * 0.6);
  expect(st.events.accountingImbalance).toBe(0);
  expect(await stop(second)).toBe(0);
}, 90_000);

test("a damaged prefix table: a clear error, the records that needed it dead-lettered (never sent onto another prefix), new lines delivered", async () => {
  raw.refuse = true;
  const first = (running = env.start(config));
  expect(await env.ready()).toBe(true);
  const waiting = node.appendLines(20);
  expect(await waitFor(async () => (await env.status()).ring.records >= waiting, 20_000, 50)).toBe(true);
  expect(await stop(first)).toBe(0);
  writeFileSync(join(dataDir(), PREFIX_TABLE_FILE), '{"format":1,"nextId":');
  const before = new Set(counts().keys());

  raw.refuse = false;
  const second = (running = env.start(config));
  expect(await env.ready()).toBe(true);
  expect(await waitFor(async () => (await env.status()).events.deadLettered >= waiting, 20_000, 100)).toBe(true);
  const added = node.appendLines(5);
  const fresh = () => [...node.expectedMessages].filter((m) => !before.has(m));
  const freshArrived = () => {
    const c = counts();
    return fresh().filter((m) => c.has(m)).length >= added;
  };
  expect(await waitFor(freshArrived, 20_000, 200)).toBe(true);
  const st = await env.status();
  expect(JSON.stringify(st.recentErrors)).toContain("prefix table is damaged");
  expect(st.prefixTable.unknownAtOpen).toBe(waiting);
  const metrics = await (await fetch(`http://127.0.0.1:${env.port}/metrics`)).text();
  const unknown = "pipekit_collector_prefix_table_unknown_records_total";
  expect(Number(new RegExp(`^${unknown} (\\d+)$`, "m").exec(metrics)?.[1])).toBe(waiting);
  expect(readdirSync(dataDir()).some((n) => n.startsWith(`${PREFIX_TABLE_FILE}.invalid-`))).toBe(true);
  const dl = readFileSync(join(dataDir(), "dead-letter.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  expect(dl.length).toBe(waiting);
  for (const d of dl) expect(d.answer).toContain("is not in the prefix table");
  // Every record that did arrive carries its own pod's identifiers.
  for (const { rec } of raw.records()) expect(rec.message as string).toContain(`${rec.podName}/${rec.containerName} line `);
  expect(existsSync(join(dataDir(), PREFIX_TABLE_FILE))).toBe(true);
  expect(st.events.accountingImbalance).toBe(0);
  expect(await stop(second)).toBe(0);
}, 90_000);
