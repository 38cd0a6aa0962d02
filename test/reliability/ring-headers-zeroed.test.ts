// Issue 17, defect 4: both ring headers zeroed (8 KiB of zeros at the start of ring.dat) between two
// runs of the real process. The records behind them are intact, checksummed and numbered: the
// collector rebuilds a header from them and delivers every one; only the unreadable headers are
// set aside (docs/ring-format.md, Recovery step 1).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DATA_OFFSET } from "../../src/buffer/format.ts";
import { PipekitRecordSchema } from "../../src/pipeline/record.ts";
import { type SampleNode, writeSampleNode } from "../../src/dev/sample-node.ts";
import { waitFor } from "../support/collector-process.ts";
import { type Env, makeEnv, stop } from "./support.ts";

let env: Env;
let node: SampleNode;
let config: string;

beforeAll(async () => {
  env = await makeEnv("ringheaders", (dir) => (node = writeSampleNode(dir, { seed: 17, linesPerContainer: 900 })));
  config = env.config({ buffer: { maxBytes: "16MiB", syncIntervalMs: 100 }, source: { maxLineBytes: "64KiB" } });
});
afterAll(() => env.cleanup());

test("8 KiB of zeros over both ring headers after a SIGKILL: the header is rebuilt from the records and every record in the ring arrives, once", async () => {
  const dataDir = join(env.dir, "data");
  const ringPath = join(dataDir, "ring.dat");
  // Run 1: the messenger refuses everything, so every record stays in the ring; then SIGKILL.
  env.messenger.setFaults({ forceStatus: 503 });
  const first = env.start(config);
  expect(await env.ready()).toBe(true);
  const expected = node.expectedMessages.size;
  expect(expected).toBeGreaterThan(8000);
  expect(
    await waitFor(async () => {
      const s = await env.status();
      return s.events.appended >= expected && s.ring.durableSeq >= s.ring.nextSeq - 1;
    }, 30_000, 100),
  ).toBe(true);
  await Bun.sleep(300); // checkpoints follow the durable report
  const before = await env.status();
  expect(before.ring.records).toBe(expected);
  expect(env.messenger.received().length).toBe(0);
  first.proc.kill("SIGKILL");
  await first.exited;

  const fd = openSync(ringPath, "r+");
  writeSync(fd, new Uint8Array(DATA_OFFSET), 0, DATA_OFFSET, 0);
  closeSync(fd);

  // Run 2: a healthy messenger.
  env.messenger.setFaults({});
  const second = env.start(config);
  expect(await env.ready()).toBe(true);
  const counts = () => {
    const m = new Map<string, number>();
    for (const r of env.messenger.received()) m.set(r.message, (m.get(r.message) ?? 0) + 1);
    return m;
  };
  expect(await waitFor(() => counts().size >= expected, 30_000, 100)).toBe(true);
  await Bun.sleep(500); // anything more (a duplicate) would arrive now
  const got = counts();
  expect(got.size).toBe(expected);
  for (const [m, n] of got) {
    expect(node.expectedMessages.has(m)).toBe(true);
    expect(n).toBe(1); // none had been acknowledged: none comes twice
  }
  for (const r of env.messenger.received()) expect(PipekitRecordSchema.safeParse(r).success).toBe(true);

  const st = await env.status();
  expect(second.proc.exitCode).toBeNull();
  expect(st.ring.records).toBe(0);
  expect(st.ring.recoverySkippedRecords).toBe(0);
  expect(st.ring.recoveryMovedAsideFiles).toBe(1);
  expect(st.ring.recoveryMovedAsideBytes).toBe(DATA_OFFSET); // the headers, not the file
  expect(JSON.stringify(st.recentErrors)).toContain("rebuilt the header");
  const aside = readdirSync(dataDir).filter((n) => n.startsWith("ring.dat.invalid-"));
  expect(aside).toEqual([expect.stringMatching(/\.headers$/)]);
  expect(statSync(join(dataDir, aside[0]!)).size).toBe(DATA_OFFSET);
  expect(await stop(second)).toBe(0);
}, 90_000);
