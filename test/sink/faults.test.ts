// The real sender against the mock messenger over 127.0.0.1, one fault per test: every event
// arrives exactly once (or exactly the refused record is dead-lettered), and the sender reports
// the state an operator would look at.
import { afterEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { GzipWorker } from "../../src/platform/gzip-worker.ts";
import { REFUSAL_STREAK_LIMIT } from "../../src/sink/delivery.ts";
import { startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { API_KEY, bench, expectAcksCoverOnce, expectNoSecret, type Bench } from "./harness.ts";
import { makeRecord, waitFor } from "./helpers.ts";

// Real HTTP and real files on a shared 2-core machine: generous limits, the assertions are about behaviour.
setDefaultTimeout(30_000);

let b: Bench | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

const deadLetters = (dir: string) => {
  const p = join(dir, "data", "dead-letter.jsonl");
  return existsSync(p) ? readFileSync(p, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
};

describe("sender against the mock messenger", () => {
  test("30 % of requests answered 503: everything arrives once, retried, healthy at the end", async () => {
    b = await bench({ faults: { failRate: 0.3 }, messenger: { batchMaxEvents: 100 } });
    await b.append(0, 4000);
    await b.waitAcked(4000);
    b.expectExactlyOnce(4000);
    expectAcksCoverOnce(b.acks, 4000);
    const s = b.sender.stats();
    expect(s.requests["5xx"]).toBe(b.messenger.stats().byStatus["503"]!);
    expect(s.requests["5xx"]).toBeGreaterThan(0);
    expect(s.retries).toBe(s.requests["5xx"]);
    expect(s.eventsSent).toBe(4000);
    expect(s.requests["2xx"]).toBe(s.batchesSent);
    expect(s.healthReasons).toEqual([]);
    expect(s.failingSince).toBeNull();
    expect(s.lastSuccessAt).not.toBeNull();
    expect(s.bytesSentWire).toBe(b.messenger.stats().bytesReceivedWire);
    expect(s.latency.count).toBe(s.requests["2xx"] + s.requests["5xx"]);
  });

  for (const format of ["seconds", "date"] as const) {
    test(`429 with Retry-After as ${format}: no request before the messenger said, then all delivered`, async () => {
      b = await bench({ faults: { failNext: 1, failStatus: 429, retryAfterSeconds: 2, retryAfterFormat: format } });
      await b.append(0, 300);
      await b.waitAcked(300);
      b.expectExactlyOnce(300);
      const log = b.messenger.requestLog();
      expect(log[0]!.status).toBe(429);
      // Full-jitter backoff alone would retry within 20 ms; Retry-After: 2 s (as a date: 1-2 s, whole seconds).
      const gap = log[1]!.at - log[0]!.at;
      expect(gap).toBeGreaterThanOrEqual(format === "seconds" ? 1950 : 950);
      expect(gap).toBeLessThan(3000);
      // The pause held every batch, not just the refused one.
      expect(log.slice(1).every((e) => e.at - log[0]!.at >= (format === "seconds" ? 1950 : 950))).toBe(true);
      expect(b.sender.stats().requestsByStatus["429"]).toBe(1);
      expect(b.sender.stats().retries).toBe(1);
    });
  }

  test("413 above a size: batches bisected until they fit; a record too big alone is dead-lettered", async () => {
    b = await bench({ faults: { maxBodyBytes: 20_000 }, messenger: { batchMaxEvents: 1024, flushIntervalMs: 300 } });
    const huge = "H".repeat(25_000);
    await b.append(0, 1000, (i) => (i === 500 ? `line 500 ${huge}` : undefined));
    await b.waitAcked(1000);
    b.expectExactlyOnce(1000, [500]);
    const dl = deadLetters(b.dir);
    expect(dl.length).toBe(1);
    expect(dl[0].status).toBe(413);
    expect(dl[0].record).toEqual(makeRecord(500, `line 500 ${huge}`));
    expect(dl[0].answer).toContain("above 20000");
    const s = b.sender.stats();
    expect(s.deadLetteredEvents).toBe(1);
    expect(s.bisections).toBeGreaterThan(5);
    expect(s.requestsByStatus["413"]).toBeGreaterThan(5);
    expect(s.healthReasons).toEqual([]);
    expect(b.messenger.requestLog().filter((e) => e.status === 200).every((e) => e.events <= 45)).toBe(true);
  });

  test("400 for one poisoned record in a full batch: only it is dead-lettered, the other 1,023 delivered", async () => {
    b = await bench({ faults: { poisonMarker: "POISON" }, messenger: { batchMaxEvents: 1024, flushIntervalMs: 2000 }, start: false });
    await b.append(0, 1024, (i) => (i === 777 ? "line 777 POISON pill" : undefined));
    b.sender.start();
    await b.waitAcked(1024);
    b.expectExactlyOnce(1024, [777]);
    const dl = deadLetters(b.dir);
    expect(dl.map((d) => d.record)).toEqual([makeRecord(777, "line 777 POISON pill")]);
    expect(dl[0].status).toBe(400);
    expect(dl[0].seq).toBe(778);
    expect(dl[0].answer).toContain("poisoned record");
    const s = b.sender.stats();
    expect(s.bisections).toBe(10); // log2(1024) splits isolate one record
    expect(s.deadLetteredEvents).toBe(1);
    expect(s.eventsSent).toBe(1023);
    expect(s.requests["4xx"]).toBe(11);
    expectAcksCoverOnce(b.acks, 1024);
  });

  test("400 for everything (a broken messenger or proxy): a few dead letters, then the data is held, not emptied", async () => {
    b = await bench({ faults: { forceStatus: 400 }, messenger: { batchMaxEvents: 100, retryMaxBackoffMs: 100 }, start: false });
    await b.append(0, 100);
    b.sender.start();
    await waitFor(() => b!.sender.stats().healthReasons.some((r) => r.startsWith("messenger refuses every record")), 10_000, "held");
    await new Promise((r) => setTimeout(r, 300));
    expect(b.sender.stats().deadLetteredEvents).toBe(REFUSAL_STREAK_LIMIT);
    expect(b.ring.readSeq()).toBe(REFUSAL_STREAK_LIMIT + 1); // the dead-lettered prefix, nothing more
    b.messenger.setFaults({});
    await b.waitAcked(100);
    const refused = Array.from({ length: REFUSAL_STREAK_LIMIT }, (_, i) => i);
    b.expectExactlyOnce(100, refused);
    expect(deadLetters(b.dir).map((d) => d.record)).toEqual(refused.map((i) => makeRecord(i)));
    expect(b.sender.stats().healthReasons).toEqual([]);
  });

  test("401 while the key file holds an old key, then fixed: nothing lost, health flips back, key never logged", async () => {
    const keyFile = "/tmp/pk-sink-key-" + process.pid;
    writeFileSync(keyFile, "pk_old_key_123456\n");
    b = await bench({ messenger: { apiKeyFile: keyFile, apiKey: null, retryMaxBackoffMs: 150 } });
    await b.append(0, 500);
    await waitFor(() => b!.sender.stats().healthReasons.includes("messenger rejected the API key"), 5000, "key rejected");
    const during = b.sender.stats();
    expect(during.requests["4xx"]).toBeGreaterThan(0);
    expect(during.eventsSent).toBe(0);
    expect(b.ring.readSeq()).toBe(1); // nothing acknowledged, nothing dropped
    expect(JSON.stringify(during)).not.toContain("pk_old_key_123456");
    writeFileSync(keyFile, API_KEY + "\n"); // the secret is rotated on disk
    await b.waitAcked(500);
    b.expectExactlyOnce(500);
    expect(b.sender.stats().healthReasons).toEqual([]);
    expect(b.sender.stats().deadLetteredEvents).toBe(0);
    expectNoSecret(b.logs, "pk_old_key_123456", API_KEY);
    expect(JSON.stringify(b.sender.stats())).not.toContain(API_KEY);
  });

  test("403 (rejected key) and SIGHUP reload: held, then delivered after reloadApiKey()", async () => {
    const keyFile = "/tmp/pk-sink-key403-" + process.pid;
    writeFileSync(keyFile, API_KEY);
    b = await bench({ faults: { rejectKeys: 403 }, messenger: { apiKeyFile: keyFile, retryMaxBackoffMs: 100 } });
    await b.append(0, 200);
    await waitFor(() => b!.sender.stats().healthReasons.includes("messenger rejected the API key"), 5000, "key rejected");
    b.messenger.setFaults({});
    b.sender.reloadApiKey();
    await b.waitAcked(200);
    b.expectExactlyOnce(200);
    expect(b.sender.stats().healthReasons).toEqual([]);
  });

  test("404 for a while: data held, pipeline unhealthy, delivered once the URL answers", async () => {
    b = await bench({ faults: { forceStatus: 404 }, messenger: { retryMaxBackoffMs: 100 } });
    await b.append(0, 600);
    await waitFor(() => b!.sender.stats().healthReasons.includes("messenger URL not found"), 5000, "URL not found");
    await new Promise((r) => setTimeout(r, 300));
    expect(b.messenger.stats().byStatus["404"]).toBeGreaterThan(1); // retried, not dropped
    expect(b.ring.readSeq()).toBe(1);
    expect(b.sender.stats().lastError).toContain("HTTP 404");
    b.messenger.setFaults({});
    await b.waitAcked(600);
    b.expectExactlyOnce(600);
    expect(b.sender.stats().healthReasons).toEqual([]);
    expect(deadLetters(b.dir)).toEqual([]);
  });

  test("501 and other unknown refusals are held and reported, never dropped", async () => {
    b = await bench({ faults: { forceStatus: 501 }, messenger: { retryMaxBackoffMs: 100 } });
    await b.append(0, 100);
    await waitFor(() => b!.sender.stats().healthReasons.some((r) => r.includes("HTTP 501")), 5000, "501 reported");
    expect(b.ring.readSeq()).toBe(1);
    b.messenger.setFaults({});
    await b.waitAcked(100);
    b.expectExactlyOnce(100);
    expect(b.sender.stats().healthReasons).toEqual([]);
  });

  test("answers in reverse order: acks arrive out of order, the ring still advances contiguously", async () => {
    b = await bench({ faults: { reorderWindow: 4, latencyMs: 5 }, messenger: { batchMaxEvents: 100, concurrency: 4 }, start: false });
    await b.append(0, 4000);
    b.sender.start();
    await b.waitAcked(4000);
    b.expectExactlyOnce(4000);
    expectAcksCoverOnce(b.acks, 4000);
    const outOfOrder = b.acks.some(([first], i) => i > 0 && first < b!.acks[i - 1]![0]);
    expect(outOfOrder).toBe(true);
    expect(b.messenger.stats().reorderedAnswers).toBeGreaterThan(0);
    expect(b.ring.readSeq()).toBe(4001);
  });

  test("a hanging request: the others continue; the hung batch is retried after the timeout", async () => {
    b = await bench({ faults: { hangNext: 1 }, messenger: { batchMaxEvents: 100, concurrency: 4, timeoutMs: 2000 }, start: false });
    await b.append(0, 2000);
    const t0 = Date.now();
    b.sender.start();
    await b.waitAcked(2000, 15_000);
    b.expectExactlyOnce(2000);
    // The hung batch (the ring's prefix, seq 1-100) was acknowledged last, after its timeout;
    // the 19 others went through meanwhile on the remaining request slots.
    expect(b.acks.at(-1)).toEqual([1, 100]);
    expect(b.acks.length).toBe(20);
    const log = b.messenger.requestLog();
    const lastAccepted = log.filter((e) => e.status === 200).at(-1)!;
    expect(lastAccepted.at - t0).toBeGreaterThanOrEqual(1900);
    expect(log.filter((e) => e.status === 200 && e.at - t0 < 1900).length).toBe(19);
    const s = b.sender.stats();
    expect(s.requestsByStatus.timeout).toBe(1);
    expect(s.requests.error).toBe(1);
    expect(s.retries).toBe(1);
    expect(s.inFlight).toBe(0);
  });

  test("messenger down at start, up later: connection errors retried, then everything delivered", async () => {
    b = await bench({ messengerDown: true, messenger: { retryMaxBackoffMs: 100 } });
    await b.append(0, 700);
    await waitFor(() => b!.sender.stats().requests.error >= 3, 5000, "connection errors");
    const down = b.sender.stats();
    expect(down.requestsByStatus.connection).toBeGreaterThanOrEqual(3);
    expect(down.failingSince).not.toBeNull();
    expect(down.lastError).not.toBeNull();
    expect(down.lastSuccessAt).toBeNull();
    const port = Number(new URL(b.config.baseUri!).port);
    b.messenger = await startMockMessenger({ apiKey: API_KEY, port });
    await b.waitAcked(700);
    b.expectExactlyOnce(700);
    expect(b.sender.stats().failingSince).toBeNull();
  });

  for (const worker of [false, true]) {
    test(`gzip on${worker ? ", on a worker" : ""}: Content-Encoding gzip, fewer bytes on the wire, everything once`, async () => {
      b = await bench({ faults: { requireGzip: true }, messenger: { compression: "gzip", batchMaxEvents: 200 }, deps: worker ? { gzipper: (level) => new GzipWorker(level) } : {} });
      await b.append(0, 2000);
      await b.waitAcked(2000);
      b.expectExactlyOnce(2000);
      const s = b.sender.stats();
      const m = b.messenger.stats();
      expect(m.gzipRequests).toBe(m.requests);
      expect(s.bytesSentWire).toBe(m.bytesReceivedWire);
      expect(s.bytesSentRaw).toBe(m.bytesReceivedRaw);
      expect(s.bytesSentWire * 3).toBeLessThan(s.bytesSentRaw);
    });
  }

  test("garbage and gzip-encoded answer bodies do not confuse the sender", async () => {
    b = await bench({ faults: { garbageBody: true, gzipAnswers: true, failRate: 0.3 }, messenger: { batchMaxEvents: 100 } });
    await b.append(0, 1000);
    await b.waitAcked(1000);
    b.expectExactlyOnce(1000);
    expect(b.sender.stats().healthReasons).toEqual([]);
  });
});
