// Small writes arriving close together are read together (source.ts READ_COALESCE_MS): a turn per
// write cost an fstat, a read and a ring write each, at 20 k lines/s most of the collector's CPU.
import { expect, test } from "bun:test";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cri, harnessPerTest, podDir, waitFor } from "./harness.ts";

const harness = harnessPerTest();

test("40 single-line writes 2 ms apart are handed on in a few slices, all of them, in order", async () => {
  const h = harness();
  const path = join(podDir(h.root, "uid-trickle"), "0.log");
  writeFileSync(path, cri("first"));
  h.start();
  expect(await waitFor(() => h.received.length === 1, 5000)).toBe(true);
  const emitsBefore = h.emits;
  const wakeupsBefore = h.source.counters.wakeups;
  for (let i = 0; i < 40; i++) {
    appendFileSync(path, cri(`line ${i}`));
    await Bun.sleep(2);
  }
  expect(await waitFor(() => h.received.length === 41, 5000)).toBe(true);
  expect(h.messages().slice(1)).toEqual(Array.from({ length: 40 }, (_, i) => `line ${i}`));
  const emits = h.emits - emitsBefore;
  // Reading each write as it came gave ~40 slices; waiting 50 ms after a wake-up gives a few.
  expect(emits).toBeGreaterThan(0);
  expect(emits).toBeLessThanOrEqual(8);
  expect(h.source.counters.wakeups - wakeupsBefore).toBeLessThanOrEqual(8);
});
