// Child process for the crash and durability-ordering tests. Appends records under load while a
// consumer reads and acks them out of order (so the ring laps and reuses space), and reports on
// stdout, with write(2) at once:
//   ready <lastSeq>      after opening (recovery done)
//   appending <a> <b>    before append() of records a..b (so none of them is in the file earlier)
//   appended <seq>       after append() resolved for records up to seq
//   durable <seq>        from onDurable: records up to seq are on disk
//   acking <a> <n>       before ack() of records a..a+n-1 (a header may record them from then on)
// Usage: bun crash-writer.ts <dir> <capacityBytes> <syncIntervalMs> [runMs]
import { writeSync } from "node:fs";
import { lockDataDir } from "../../src/buffer/lock.ts";
import { openRing } from "../../src/buffer/ring.ts";
import { expectedPayload } from "./crash-payload.ts";
import { appendPayloads, readPayloads } from "../support/ring-payloads.ts";

const [dir, capArg, syncArg, runArg] = process.argv.slice(2);
const say = (s: string) => writeSync(1, s + "\n");

lockDataDir(dir!);
const ring = await openRing({ dir: dir!, capacityBytes: Number(capArg), syncIntervalMs: Number(syncArg) });
ring.onDurable((seq) => say(`durable ${seq}`));
say(`ready ${ring.lastSeq()}`);

let stop = false;
let producerDone = false;
if (runArg) setTimeout(() => (stop = true), Number(runArg));

// Consumer: hold up to a few batches "in flight", acknowledge them in random order.
const inflight: Array<[number, number]> = [];
const consumer = (async () => {
  // Runs until the producer is done: a producer waiting on a full ring needs acks to finish.
  while (!producerDone) {
    const b = readPayloads(ring, 1 + Math.floor(Math.random() * 64), 64 * 1024);
    if (b) inflight.push([b.firstSeq, b.payloads.length]);
    if (inflight.length > 4 || (!b && inflight.length)) {
      const i = Math.floor(Math.random() * inflight.length);
      const [first, count] = inflight.splice(i, 1)[0]!;
      say(`acking ${first} ${count}`);
      ring.ack(first, count);
    }
    if (!b) await Promise.race([ring.waitForData(), Bun.sleep(2)]);
    else if (Math.random() < 0.3) await Bun.sleep(0);
  }
})();

// Producer.
while (!stop) {
  const n = 1 + Math.floor(Math.random() * 40);
  const first = ring.lastSeq() + 1;
  const batch: Uint8Array[] = [];
  for (let i = 0; i < n; i++) batch.push(expectedPayload(first + i));
  say(`appending ${first} ${first + n - 1}`);
  const last = await appendPayloads(ring, batch);
  if (last !== first + n - 1) throw new Error(`append returned ${last}, expected ${first + n - 1}`);
  say(`appended ${last}`);
  if (Math.random() < 0.2) await Bun.sleep(0);
}
producerDone = true;
await consumer;
await ring.close();
say("closed");
process.exit(0);
