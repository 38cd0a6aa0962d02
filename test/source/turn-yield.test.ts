// A turn over many busy files takes tens of milliseconds; the loop yields to the event loop within it
// (reading-loop.ts TURN_STRETCH_MS), so that the sink's answers and the gzip worker's results are
// handled while a backlog is read rather than once per turn.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { criLines, expectedMessages, harnessPerTest, podDir, waitFor } from "./harness.ts";

const harness = harnessPerTest();

test("the event loop runs between files of a long turn, and every line still arrives once, in order", async () => {
  const h = harness();
  const files = 10;
  for (let i = 0; i < files; i++) writeFileSync(join(podDir(h.root, `uid-${i}`), "0.log"), criLines(`p${i}-`, 0, 50));
  // Each emit costs 8 ms of CPU without yielding: the first turn (one slice of each file) takes 80 ms.
  h.emitBusyMs = 8;
  const order: string[] = [];
  let marked = false;
  h.onEmit = (path) => {
    order.push(path);
    // Queued behind the first file's emit: runs at the loop's first yield to the event loop.
    if (!marked) {
      marked = true;
      setImmediate(() => order.push("event loop"));
    }
  };
  h.start();
  expect(await waitFor(() => h.received.length === files * 50, 10_000)).toBe(true);
  const at = order.indexOf("event loop");
  expect(at).toBeGreaterThan(0);
  // Before the fix the first turn read all ten files before anything else ran.
  expect(at).toBeLessThan(files);
  for (let i = 0; i < files; i++) expect(h.messages((r) => r.podUid === `uid-${i}`)).toEqual(expectedMessages(`p${i}-`, 0, 50));
});
