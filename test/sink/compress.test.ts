// gzip off the main thread (issue 20): the worker reads bodies and writes results in shared memory in
// place, its results are exactly gzip of the body, and whatever happens to it (closed, failed, never
// started) a body is still compressed — in the calling thread — or the sender is told it is stopping.
import { afterEach, describe, expect, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import { GzipWorker, GzipWorkerClosed } from "../../src/platform/gzip-worker.ts";
import type { Gzipper } from "../../src/platform/types.ts";
import { BatchBuffer, gzipBound, sliceBody } from "../../src/sink/batch.ts";
import { BodyCompressor } from "../../src/sink/compress.ts";
import { captureLogger, type LogLine } from "./harness.ts";
import { payload } from "./helpers.ts";

function sharedBytes(n: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new SharedArrayBuffer(n)) as unknown as Uint8Array<ArrayBuffer>;
}

/** Bytes that compress a little and differ per seed. */
function sample(n: number, seed: number, into: Uint8Array<ArrayBuffer> = new Uint8Array(n)): Uint8Array<ArrayBuffer> {
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    into[i] = 0x20 + ((x >> 16) % 40);
  }
  return into;
}

/** A batch of n records in a buffer like the sender's (shared memory when `shared`). */
function batchOf(n: number, shared: boolean): BatchBuffer {
  const records = Array.from({ length: n }, (_, i) => payload(i));
  const b = new BatchBuffer(64 * 1024, n, shared).reset(1);
  b.add(records);
  return b.finish();
}

let worker: GzipWorker | null = null;
afterEach(() => {
  worker?.close();
  worker = null;
});

describe("the gzip worker", () => {
  test("gzips a shared body in place into shared memory; many jobs at once each get their own result", async () => {
    worker = new GzipWorker(1);
    const jobs = Array.from({ length: 12 }, (_, i) => {
      const input = sample(20_000 + i * 997, i + 1, sharedBytes(20_000 + i * 997));
      const output = sharedBytes(gzipBound(input.length));
      return { input, output, result: worker!.gzip(input, output) };
    });
    for (const j of jobs) {
      const out = await j.result;
      expect(out.buffer).toBe(j.output.buffer as ArrayBuffer); // written where it was asked to be
      expect(new Uint8Array(gunzipSync(out))).toEqual(new Uint8Array(j.input));
      expect(out.length).toBeLessThan(j.input.length);
    }
  });

  test("a result larger than the memory given, or no memory given, comes in fresh memory; unshared input is copied", async () => {
    worker = new GzipWorker(1);
    const input = sample(50_000, 9);
    const small = sharedBytes(100);
    const a = await worker.gzip(input, small);
    expect(a.buffer).not.toBe(small.buffer as ArrayBuffer);
    expect(new Uint8Array(gunzipSync(a))).toEqual(input);
    expect([...small].every((b) => b === 0)).toBe(true); // nothing half-written there
    const b = await worker.gzip(input, null);
    expect(new Uint8Array(gunzipSync(b))).toEqual(input);
  });

  test("closed: jobs in progress and later ones reject with GzipWorkerClosed", async () => {
    worker = new GzipWorker(1);
    const big = sample(4_000_000, 3, sharedBytes(4_000_000));
    const pending = worker.gzip(big, null);
    worker.close();
    await expect(pending).rejects.toBeInstanceOf(GzipWorkerClosed);
    await expect(worker.gzip(big, null)).rejects.toBeInstanceOf(GzipWorkerClosed);
  });
});

describe("the body compressor", () => {
  const logs: LogLine[] = [];
  afterEach(() => {
    logs.length = 0;
  });

  test("with the worker: a whole batch's result lives in the batch's wire memory, a part's in fresh memory", async () => {
    const c = new BodyCompressor(captureLogger(logs), (level) => (worker = new GzipWorker(level)));
    const b = batchOf(300, true);
    const whole = await c.compress(b, b.body);
    expect(whole!.buffer).toBe(b.wireMemory(0).buffer);
    expect(new Uint8Array(gunzipSync(whole!))).toEqual(new Uint8Array(b.body));
    const part = sliceBody(b, 10, 20);
    const p = await c.compress(b, part);
    expect(p!.buffer).not.toBe(b.wireMemory(0).buffer);
    expect(new Uint8Array(gunzipSync(p!))).toEqual(part);
    expect(logs).toEqual([]);
    c.close();
    expect(await c.compress(b, b.body)).toBeNull(); // stopping
  });

  test("without a worker (the simulation), in the calling thread; the result the same bytes as the worker's", async () => {
    const inThread = new BodyCompressor(captureLogger(logs));
    const viaWorker = new BodyCompressor(captureLogger(logs), (level) => (worker = new GzipWorker(level)));
    const b = batchOf(200, false);
    const x = await inThread.compress(b, b.body);
    expect(x!.buffer).toBe(b.wireMemory(0).buffer); // pooled memory here too
    const shared = batchOf(200, true);
    const y = await viaWorker.compress(shared, shared.body);
    expect(new Uint8Array(gunzipSync(x!))).toEqual(new Uint8Array(b.body));
    expect(new Uint8Array(y!)).toEqual(new Uint8Array(x!));
    viaWorker.close();
  });

  test("a worker that fails or cannot start: one warning, then every body compressed in the calling thread", async () => {
    let made = 0;
    const failing: Gzipper = { gzip: () => Promise.reject(new GzipWorkerClosed("gzip worker failed: killed")), close() {} };
    const c = new BodyCompressor(captureLogger(logs), () => {
      made++;
      return failing;
    });
    const b = batchOf(50, true);
    const results = await Promise.all([c.compress(b, b.body), c.compress(b, sliceBody(b, 0, 10)), c.compress(b, sliceBody(b, 10, 50))]);
    expect(new Uint8Array(gunzipSync(results[0]!))).toEqual(new Uint8Array(b.body));
    expect(new Uint8Array(gunzipSync(results[1]!))).toEqual(sliceBody(b, 0, 10));
    expect(made).toBe(1);
    expect(logs.filter((l) => l.level === "warn").map((l) => l.msg)).toEqual(["gzip worker unavailable; compressing request bodies on the main thread"]);

    const cannot = new BodyCompressor(captureLogger(logs), () => {
      throw new Error("no workers here");
    });
    const r = await cannot.compress(b, b.body);
    expect(new Uint8Array(gunzipSync(r!))).toEqual(new Uint8Array(b.body));
    expect(logs.filter((l) => l.level === "warn")).toHaveLength(2);
  });

  test("closing while a body is being compressed: that compression resolves null, nothing is logged", async () => {
    const c = new BodyCompressor(captureLogger(logs), (level) => (worker = new GzipWorker(level)));
    const big = new BatchBuffer(8 << 20, 1, true).reset(1);
    big.add([sample(6_000_000, 5)]);
    big.finish();
    const pending = c.compress(big, big.body);
    c.close();
    expect(await pending).toBeNull();
    expect(logs).toEqual([]);
  });
});
