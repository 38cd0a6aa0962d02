// What `run` needs that the config alone shows: a messenger, a key, and a ring that holds the record
// of the longest line; a record that JSON escaping makes larger than the ring has its message cut to
// fit, and is counted. Checked against the real encoder, the real router and the real ring.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRing } from "../../src/buffer/ring.ts";
import { parseConfig } from "../../src/config/load.ts";
import { largestRecordSpan, RECORD_ENVELOPE_BOUND, ringTooSmall, runnableProblems } from "../../src/cli/runnable.ts";
import { PodCache } from "../../src/metadata/cache.ts";
import { compileEncoder } from "../../src/pipeline/chain.ts";
import { PipekitRecordSchema } from "../../src/pipeline/record.ts";
import { Router } from "../../src/pipeline/router.ts";
import { LineBatch } from "../../src/source/line-batch.ts";
import { appendPayloads } from "../support/ring-payloads.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const runnable = { messenger: { baseUri: "http://m.example", apiKey: "k" } };

test("run needs a messenger and a key", () => {
  expect(runnableProblems(parseConfig({}))).toEqual([
    "messenger.baseUri: required (or set PIPEKIT_MESSENGER_BASE_URI)",
    "messenger.apiKey: required (set PIPEKIT_API_KEY, messenger.apiKey or messenger.apiKeyFile)",
  ]);
  expect(runnableProblems(parseConfig({ messenger: { baseUri: "http://x" } }))).toEqual([expect.stringContaining("messenger.apiKey: required")]);
  expect(runnableProblems(parseConfig({ messenger: { baseUri: "http://x", apiKeyFile: "/k" } }))).toEqual([]);
  expect(runnableProblems(parseConfig(runnable))).toEqual([]);
});

const LABEL = "u".repeat(63);
// Kubernetes' limits: a pod name of 253 characters, a container name of 63, label values of 63.
const WORST_IDS = { orgUUID: LABEL, runUUID: LABEL, pipeUUID: LABEL, nodeID: "n".repeat(253 + 12), podName: "p".repeat(253), containerName: "c".repeat(63) };

/** The record of a line of `message` with the largest identifiers, as the ring stores it. */
function worstRecord(message: string): Uint8Array {
  return new TextEncoder().encode(compileEncoder(WORST_IDS).encode("2026-11-24T19:02:13.123456789+00:00", "stderr", message)!);
}

describe("the ring must hold the record of the longest line", () => {
  test("the envelope bound holds for the largest identifiers", () => {
    for (const maxLineBytes of [1024, 64 * 1024, 1 << 20]) {
      const record = worstRecord("x".repeat(maxLineBytes));
      expect(record.length).toBeGreaterThan(maxLineBytes + 900); // the identifiers are real
      expect(record.length).toBeLessThanOrEqual(maxLineBytes + RECORD_ENVELOPE_BOUND);
    }
  });

  test("the defaults fit; 1MiB of ring with 1MiB lines does not, and the message names both keys and what would fit", () => {
    expect(ringTooSmall(parseConfig({}))).toBeNull();
    const problem = ringTooSmall(parseConfig({ buffer: { maxBytes: "1MiB" } }));
    expect(problem).toStartWith("buffer.maxBytes: 1048576 bytes (1MiB) cannot hold one record of the longest line source.maxLineBytes allows (1048576 bytes (1MiB)");
    expect(problem).toEndWith("raise buffer.maxBytes to 2MiB or more, or lower source.maxLineBytes to 1007KiB or less");
    expect(runnableProblems(parseConfig({ ...runnable, buffer: { maxBytes: "1MiB" } }))).toEqual([problem!]);
    expect(ringTooSmall(parseConfig({ buffer: { maxBytes: "16MB" }, source: { maxLineBytes: "16MiB" } }))).toContain("raise buffer.maxBytes to 17MiB or more");
  });

  test("what the message suggests is what a real ring takes; the ring says the largest record it holds", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ring-fit-"));
    dirs.push(dir);
    const problem = ringTooSmall(parseConfig({ buffer: { maxBytes: "1MiB" } }))!;
    const [, raise, lower] = /to (\d+)MiB or more, or lower source\.maxLineBytes to (\d+)KiB/.exec(problem)!;
    const big = parseConfig({ buffer: { maxBytes: `${raise}MiB` } });
    expect(ringTooSmall(big)).toBeNull();
    const ring = await openRing({ dir: join(dir, "big"), capacityBytes: big.buffer.maxBytes, syncIntervalMs: 1000 });
    try {
      expect(await appendPayloads(ring, [worstRecord("x".repeat(big.source.maxLineBytes))])).toBe(1);
    } finally {
      await ring.close();
    }
    // The same 1 MiB ring with shorter lines; and the check is not loose: a line 1 KiB longer is refused.
    const short = parseConfig({ buffer: { maxBytes: "1MiB" }, source: { maxLineBytes: `${lower}KiB` } });
    expect(ringTooSmall(short)).toBeNull();
    expect(ringTooSmall(parseConfig({ buffer: { maxBytes: "1MiB" }, source: { maxLineBytes: `${Number(lower) + 1}KiB` } }))).not.toBeNull();
    const small = await openRing({ dir: join(dir, "small"), capacityBytes: short.buffer.maxBytes, syncIntervalMs: 1000 });
    try {
      expect(await appendPayloads(small, [worstRecord("x".repeat(short.source.maxLineBytes))])).toBe(1);
      expect(largestRecordSpan(short.source.maxLineBytes)).toBeLessThanOrEqual(small.maxRecordBytes() + 24);
    } finally {
      await small.close();
    }
    // The largest record the ring says it holds is what an empty ring takes, and one byte more is refused.
    const empty = await openRing({ dir: join(dir, "empty"), capacityBytes: short.buffer.maxBytes, syncIntervalMs: 1000 });
    try {
      const max = empty.maxRecordBytes();
      await expect(appendPayloads(empty, [new Uint8Array(max + 1)])).rejects.toThrow(/cannot fit/);
      expect(await appendPayloads(empty, [new Uint8Array(max).fill(0x61)])).toBe(1);
    } finally {
      await empty.close();
    }
  });

  test("a line JSON escaping makes larger than the ring: its record is cut to fit, counted, and still a valid record", async () => {
    const cache = new PodCache({ deletionGraceSeconds: 60 });
    cache.upsert({ uid: "u1", namespace: "argo", name: "p", labels: { "workflows.argoproj.io/workflow": "w", "workflows.pipekit.io/org_uuid": "o", "workflows.pipekit.io/run_uuid": "r", "workflows.pipekit.io/pipe_uuid": "pp" }, annotations: { "workflows.argoproj.io/node-id": "n" } });
    const records: string[] = [];
    const maxRecordBytes = 4096;
    const sink = {
      appendPacked: async (r: { bytes: Uint8Array; ends: Uint32Array; count: number }) => {
        for (let i = 0; i < r.count; i++) records.push(new TextDecoder().decode(r.bytes.slice(i === 0 ? 0 : r.ends[i - 1], r.ends[i])));
        return records.length;
      },
      lastSeq: () => records.length,
      maxRecordBytes: () => maxRecordBytes,
    };
    const router = new Router(parseConfig({}), cache, { notifyUnknownPod() {} }, sink);
    const file = { id: "1:1", path: "/p", podUid: "u1", namespace: "argo", podName: "p", container: "main", restart: 0, firstSeenAt: 0 };
    const controls = "\u0001".repeat(3000); // 3,000 bytes of line, 18,000 once escaped
    const fine = "plain";
    const emoji = "😀".repeat(1500); // 6,000 bytes, not escaped, a surrogate pair per character
    await router.emit(file, LineBatch.of(...[controls, fine, emoji].map((message) => ({ timestamp: "2026-12-06T00:00:00Z", stream: "stdout" as const, message, truncated: false }))));
    expect(records).toHaveLength(3);
    expect(router.counters.recordsCut).toBe(2);
    expect(router.counters.eventsAppended).toBe(3);
    const parsed = records.map((r) => PipekitRecordSchema.parse(JSON.parse(r)));
    expect(parsed[1]!.message).toBe(fine);
    for (const i of [0, 2]) {
      const original = [controls, fine, emoji][i]!;
      expect(new TextEncoder().encode(records[i]!).length).toBeLessThanOrEqual(maxRecordBytes);
      expect(original.startsWith(parsed[i]!.message)).toBe(true);
      expect(parsed[i]!.message.length).toBeGreaterThan(0);
      // The longest prefix that fits: one more character would not.
      const next = original.slice(0, parsed[i]!.message.length + (i === 2 ? 2 : 1));
      const longer = compileEncoder({ orgUUID: "o", runUUID: "r", pipeUUID: "pp", nodeID: "n", podName: "p", containerName: "main" }).encode("2026-12-06T00:00:00Z", "stdout", next)!;
      expect(new TextEncoder().encode(longer).length).toBeGreaterThan(maxRecordBytes);
    }
  });
});
