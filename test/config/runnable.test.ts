// What `run` needs that the config alone shows: a messenger, a key, and a ring that holds the
// largest record a line can make — checked against the real encoder and the real ring.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRing } from "../../src/buffer/ring.ts";
import { parseConfig } from "../../src/config/load.ts";
import { largestRecordSpan, RECORD_ENVELOPE_BOUND, JSON_ESCAPE_GROWTH, ringTooSmall, runnableProblems } from "../../src/config/runnable.ts";
import { compileEncoder } from "../../src/pipeline/chain.ts";
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

/** The longest record a line of `maxLineBytes` can make, as the ring stores it. */
function worstRecord(maxLineBytes: number): Uint8Array {
  // Kubernetes' limits: a pod name of 253 characters, a container name of 63, label values of 63.
  const label = "u".repeat(63);
  const encoder = compileEncoder({ orgUUID: label, runUUID: label, pipeUUID: label, nodeID: "n".repeat(253 + 12), podName: "p".repeat(253), containerName: "c".repeat(63) });
  // Control characters only: each byte becomes \u00XX.
  const record = encoder.encode("2026-11-24T19:02:13.123456789+00:00", "stderr", "\u0001".repeat(maxLineBytes));
  return new TextEncoder().encode(record!);
}

describe("the ring must hold the largest record", () => {
  test("the bound holds for the worst line the encoder can get", () => {
    for (const maxLineBytes of [1024, 64 * 1024, 1 << 20]) {
      const record = worstRecord(maxLineBytes);
      expect(record.length).toBeGreaterThan(JSON_ESCAPE_GROWTH * maxLineBytes); // the escaping is real
      expect(record.length).toBeLessThanOrEqual(JSON_ESCAPE_GROWTH * maxLineBytes + RECORD_ENVELOPE_BOUND);
    }
  });

  test("the defaults fit; 1MiB of ring with 1MiB lines does not, and the message names both keys and what would fit", () => {
    expect(ringTooSmall(parseConfig({}))).toBeNull();
    const problem = ringTooSmall(parseConfig({ buffer: { maxBytes: "1MiB" } }));
    expect(problem).toStartWith("buffer.maxBytes: 1048576 bytes (1MiB) cannot hold one record of the longest line source.maxLineBytes allows (1048576 bytes (1MiB)");
    expect(problem).toEndWith("raise buffer.maxBytes to 7MiB or more, or lower source.maxLineBytes to 167KiB or less");
    expect(runnableProblems(parseConfig({ ...runnable, buffer: { maxBytes: "1MiB" } }))).toEqual([problem!]);
    // Long lines need a ring to match.
    expect(ringTooSmall(parseConfig({ buffer: { maxBytes: "64MB" }, source: { maxLineBytes: "16MiB" } }))).toContain("raise buffer.maxBytes to 97MiB or more");
  });

  test("what the message suggests is what a real ring takes: the worst record fits; a record over the ring is refused by it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ring-fit-"));
    dirs.push(dir);
    const problem = ringTooSmall(parseConfig({ buffer: { maxBytes: "1MiB" } }))!;
    const [, raise, lower] = /to (\d+)MiB or more, or lower source\.maxLineBytes to (\d+)KiB/.exec(problem)!;
    // A bigger ring for the default lines.
    const big = parseConfig({ buffer: { maxBytes: `${raise}MiB` } });
    expect(ringTooSmall(big)).toBeNull();
    const ring = await openRing({ dir: join(dir, "big"), capacityBytes: big.buffer.maxBytes, syncIntervalMs: 1000 });
    try {
      expect(await appendPayloads(ring, [worstRecord(big.source.maxLineBytes)])).toBe(1);
    } finally {
      await ring.close();
    }
    // The same 1 MiB ring with shorter lines; and the check is not loose: a line 1 KiB longer is refused.
    const short = parseConfig({ buffer: { maxBytes: "1MiB" }, source: { maxLineBytes: `${lower}KiB` } });
    expect(ringTooSmall(short)).toBeNull();
    expect(ringTooSmall(parseConfig({ buffer: { maxBytes: "1MiB" }, source: { maxLineBytes: `${Number(lower) + 1}KiB` } }))).not.toBeNull();
    const small = await openRing({ dir: join(dir, "small"), capacityBytes: short.buffer.maxBytes, syncIntervalMs: 1000 });
    try {
      expect(await appendPayloads(small, [worstRecord(short.source.maxLineBytes)])).toBe(1);
      // What the check guards against: a record over the ring's size is refused by the ring.
      const over = new Uint8Array(largestRecordSpan(short.source.maxLineBytes) + 8 * 1024 * 1024);
      await expect(appendPayloads(small, [over])).rejects.toThrow(/cannot fit/);
    } finally {
      await small.close();
    }
  });
});
