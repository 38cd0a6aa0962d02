// Pooled batch bodies (issue 10): a buffer is reused only once nothing can read its batch any
// more, a reused buffer carries exactly its own batch's bytes (whole, retried, bisected, gzipped),
// and the pool never holds more buffers than the sender's outstanding bound.
import { afterEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { BatchBuffer, BatchPool, bodySize, recordBytes, sliceBody, spliceBatch } from "../../src/sink/batch.ts";
import { GzipWorker } from "../../src/platform/gzip-worker.ts";
import { serve, type Served } from "../../src/platform/serve.ts";
import { bench, type Bench } from "./harness.ts";
import { encoder, payload, waitFor } from "./helpers.ts";

setDefaultTimeout(30_000);
const dec = new TextDecoder();

/** The record indices ("line N ...") of a JSON array body. */
function indices(text: string): number[] {
  return (JSON.parse(text) as Array<{ message: string }>).map((r) => Number(/^line (\d+)/.exec(r.message)![1]));
}

/** The exact body the sender must send for records i in [from, to): `[` p_from `,` ... `]`. */
function expectedBody(from: number, to: number, poison?: (i: number) => string | undefined): string {
  const parts: string[] = [];
  for (let i = from; i < to; i++) parts.push(dec.decode(payload(i, poison?.(i))));
  return `[${parts.join(",")}]`;
}

describe("batch buffers", () => {
  test("a reused buffer holds exactly the new batch: nothing of a longer earlier batch shows", () => {
    const pool = new BatchPool(1, bodySize(50, 50 * 600), 50);
    const a = pool.take(1);
    a.add(Array.from({ length: 40 }, (_, i) => payload(i, `long message ${"y".repeat(300)} ${i}`)));
    a.finish();
    const longBody = dec.decode(a.body);
    pool.give(a);
    const b = pool.take(100);
    expect(b).toBe(a); // the same memory, reused
    const recs = [100, 101, 102].map((i) => payload(i));
    b.add(recs.slice(0, 2));
    b.add(recs.slice(2)); // batches fill from several ring reads
    b.finish();
    expect(dec.decode(b.body)).toBe(expectedBody(100, 103));
    expect(b.body.length).toBe(bodySize(3, recs.reduce((n, p) => n + p.length, 0)));
    expect(longBody.length).toBeGreaterThan(b.body.length);
    expect(b.firstSeq).toBe(100);
    expect(b.count).toBe(3);
    expect(dec.decode(recordBytes(b, 2))).toBe(dec.decode(recs[2]!));
    expect(dec.decode(sliceBody(b, 1, 3))).toBe(expectedBody(101, 103));
    expect(sliceBody(b, 0, 3)).toBe(b.body);
  });

  test("an oversize batch gets memory of its own for that batch only; the pool keeps its standard buffer", () => {
    const pool = new BatchPool(1, 256, 4);
    const big = encoder.encode(JSON.stringify({ message: "z".repeat(5000) }));
    const b = pool.take(1);
    b.add([big]);
    b.finish();
    expect(b.pooledMemory).toBe(false);
    expect(dec.decode(b.body)).toBe(`[${dec.decode(big)}]`);
    pool.give(b);
    const again = pool.take(2);
    expect(again.pooledMemory).toBe(true);
    // More records than the buffer was sized for (never from the sender, whose reads are capped) still come out right.
    const many = Array.from({ length: 9 }, (_, i) => payload(i));
    again.add(many);
    again.finish();
    expect(dec.decode(again.body)).toBe(expectedBody(0, 9));
    expect(JSON.parse(dec.decode(sliceBody(again, 3, 9))).map((r: { message: string }) => r.message)).toEqual(
      many.slice(3).map((p) => JSON.parse(dec.decode(p)).message),
    );
  });

  test("the pool is bounded: one more buffer than the limit is a bug, as is returning one twice", () => {
    const pool = new BatchPool(3, 1024, 8);
    const taken = [pool.take(1), pool.take(2), pool.take(3)];
    expect(new Set(taken).size).toBe(3);
    expect(() => pool.take(4)).toThrow(/batch pool exhausted: 3 of 3/);
    pool.give(taken[1]!);
    expect(() => pool.give(taken[1]!)).toThrow(/returned twice/);
    expect(pool.take(5)).toBe(taken[1]!);
    expect(pool.stats()).toEqual({ created: 3, inUse: 3, free: 0, limit: 3 });
    for (const b of taken) pool.give(b);
    for (let i = 0; i < 100; i++) pool.give(pool.take(i));
    expect(pool.stats()).toEqual({ created: 3, inUse: 0, free: 3, limit: 3 });
  });

  test("keepWire copies the encoded body into memory the buffer reuses", () => {
    const b = new BatchBuffer(1024, 4).reset(1);
    const first = b.keepWire(Uint8Array.of(1, 2, 3, 4, 5));
    const second = b.keepWire(Uint8Array.of(9, 8));
    expect([...second]).toEqual([9, 8]);
    expect(second.buffer).toBe(first.buffer);
    expect(spliceBatch(1, []).body.length).toBe(2); // the unpooled form still gives "[]" for nothing
  });
});

describe("Bun's fetch and the body's memory", () => {
  // The sender reuses a body's memory only after every request for its batch settled, and never
  // changes it while a request is in flight. This checks the stronger property the design relies on
  // to be safe even against an aborted request: fetch copies a Uint8Array body before it returns.
  test("fetch copies a Uint8Array body before it returns: overwriting it at once changes nothing sent", async () => {
    const size = 32 << 20; // far more than the socket buffers hold, so fetch cannot have written it all
    let received: Uint8Array | null = null;
    const server: Served = serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => {
        await new Promise((r) => setTimeout(r, 100));
        received = new Uint8Array(await req.arrayBuffer());
        return new Response("ok");
      },
    });
    try {
      const body = new Uint8Array(size).fill(0x61);
      const pending = fetch(`http://127.0.0.1:${server.port}/`, { method: "POST", body });
      body.fill(0x62); // synchronously, before the HTTP client could have sent much
      expect((await pending).status).toBe(200);
      const got = received as Uint8Array | null;
      expect(got?.length).toBe(size);
      let changed = 0;
      for (let i = 0; i < got!.length; i += 4096) if (got![i] !== 0x61) changed++;
      expect(changed).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

/** A messenger that records every request body (refused ones too) and answers by a script. */
interface Recorder {
  url: string;
  bodies: string[];
  stop(): Promise<void>;
}

function recordingMessenger(answer: (records: number[], attempt: number) => Promise<number> | number): Recorder {
  const bodies: string[] = [];
  const attempts = new Map<string, number>();
  const server = serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      const wire = new Uint8Array(await req.arrayBuffer());
      const raw = req.headers.get("content-encoding") === "gzip" ? new Uint8Array(gunzipSync(wire)) : wire;
      const text = dec.decode(raw);
      bodies.push(text);
      let records: number[];
      try {
        records = indices(text);
      } catch {
        return new Response('{"error":"not a JSON array of records"}', { status: 400 });
      }
      const key = `${records[0]}-${records.length}`;
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      const status = await answer(records, attempt);
      return new Response(status === 200 ? "" : `{"error":"scripted ${status}"}`, { status });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, bodies, stop: () => server.stop() };
}

describe("the sender's pooled bodies on the wire", () => {
  let b: Bench | undefined;
  let rec: Recorder | undefined;
  afterEach(async () => {
    await b?.close();
    await rec?.stop();
    b = rec = undefined;
  });

  for (const [compression, gzipper] of [["none", undefined], ["gzip", undefined], ["gzip", (level: number) => new GzipWorker(level)]] as const) {
    const how = gzipper ? `${compression} on a worker` : compression;
    test(`every request, retried and bisected ones included, carries exactly its records' bytes (${how})`, async () => {
      const N = 700;
      const POISON = 333;
      const poison = (i: number) => (i === POISON ? `line ${i} POISON` : undefined);
      let seed = 7;
      const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
      rec = recordingMessenger(async (records, attempt) => {
        // Answers at varied delays, so batches finish out of order and buffers are reused meanwhile.
        await new Promise((r) => setTimeout(r, Math.floor(random() * 15)));
        if (records.includes(POISON)) return 400;
        if (attempt === 1 && random() < 0.4) return 503;
        return 200;
      });
      b = await bench({
        start: false,
        messenger: { baseUri: rec.url, batchMaxEvents: 16, concurrency: 3, flushIntervalMs: 20, retryInitialBackoffMs: 5, retryMaxBackoffMs: 30, compression },
        deps: gzipper ? { gzipper } : {},
      });
      await b.append(0, N, poison);
      b.sender.start();
      await b.waitAcked(N, 20_000);
      const st = b.sender.stats();
      expect(st.deadLetteredEvents).toBe(1);
      expect(st.bisections).toBeGreaterThanOrEqual(4); // 16 → 8 → 4 → 2 → 1
      expect(st.retries).toBeGreaterThan(5);
      // Every body ever sent: exactly the consecutive records it claims, byte for byte.
      let wrong = 0;
      const delivered = new Set<number>();
      for (const text of rec.bodies) {
        let idx: number[];
        try {
          idx = indices(text);
        } catch {
          wrong++;
          continue;
        }
        if (text !== expectedBody(idx[0]!, idx[0]! + idx.length, poison)) wrong++;
        for (const i of idx) delivered.add(i);
      }
      expect(wrong).toBe(0);
      expect(delivered.size).toBe(N);
      expect(rec.bodies.length).toBeGreaterThan(N / 16);
      // The pool stayed within the outstanding bound (3 × 4) however many batches went through it.
      expect(st.bodyBuffers).toBeGreaterThan(0);
      expect(st.bodyBuffers).toBeLessThanOrEqual(st.outstandingLimit);
      expect(st.bodyBuffersInUse).toBe(st.outstanding);
    });
  }

  test("with the messenger refusing, buffers in use track the outstanding batches and never pass the bound", async () => {
    b = await bench({ faults: { failRate: 1 }, messenger: { batchMaxEvents: 10, concurrency: 2, retryInitialBackoffMs: 100, retryMaxBackoffMs: 200 } });
    await b.append(0, 500);
    await waitFor(() => b!.sender.stats().outstanding === 8, 3000, "outstanding batches at the bound");
    for (let i = 0; i < 20; i++) {
      const s = b.sender.stats();
      expect(s.bodyBuffers).toBe(8);
      expect(s.bodyBuffersInUse).toBe(s.outstanding);
      await new Promise((r) => setTimeout(r, 10));
    }
    b.messenger.setFaults({});
    await b.waitAcked(500, 10_000);
    b.expectExactlyOnce(500);
    const s = b.sender.stats();
    expect(s.bodyBuffers).toBe(8);
    await b.sender.stop();
    expect(b.sender.stats().bodyBuffersInUse).toBe(0);
  });

  test("stop while requests are in flight returns every buffer; the records stay in the ring", async () => {
    b = await bench({ faults: { hangNext: 100 }, messenger: { timeoutMs: 60_000, batchMaxEvents: 10 } });
    await b.append(0, 200);
    await waitFor(() => b!.messenger.stats().hanging >= 4, 3000, "hung requests");
    expect(b.sender.stats().bodyBuffersInUse).toBeGreaterThan(0);
    await b.sender.stop();
    const s = b.sender.stats();
    expect(s.bodyBuffersInUse).toBe(0);
    expect(s.inFlight).toBe(0);
    expect(b.ring.readSeq()).toBe(1);
  });

  test("requests reuse their connections (keep-alive with fetch, as with ky before)", async () => {
    let connections = 0;
    let requests = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        requests++;
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    server.on("connection", () => connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      b = await bench({ start: false, messenger: { baseUri: `http://127.0.0.1:${port}`, batchMaxEvents: 10, concurrency: 2 } });
      await b.append(0, 600);
      b.sender.start();
      await b.waitAcked(600, 10_000);
      expect(requests).toBe(60);
      expect(connections).toBeGreaterThan(0);
      expect(connections).toBeLessThanOrEqual(4); // two request slots; never one connection per request
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
