import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bodySize, payloadBudget, recordBytes, sliceBody, spliceBatch, splitRange } from "../../src/sink/batch.ts";
import { classifyStatus, fullJitterBackoff, parseRetryAfter, retryDelay, RETRY_AFTER_CAP_MS } from "../../src/sink/policy.ts";
import { DeadLetterFile, formatDeadLetter } from "../../src/sink/dead-letter.ts";
import { Histogram } from "../../src/sink/histogram.ts";
import { makeRecord, payload } from "./helpers.ts";

const dec = new TextDecoder();

describe("batch splicing", () => {
  test("the body is the JSON array of the payloads, byte for byte", () => {
    const payloads = [1, 2, 3].map((i) => payload(i));
    const b = spliceBatch(7, payloads);
    expect(JSON.parse(dec.decode(b.body))).toEqual([makeRecord(1), makeRecord(2), makeRecord(3)]);
    expect(b.body.length).toBe(bodySize(3, payloads.reduce((n, p) => n + p.length, 0)));
    expect(dec.decode(recordBytes(b, 1))).toBe(JSON.stringify(makeRecord(2)));
    expect(JSON.parse(dec.decode(sliceBody(b, 1, 3)))).toEqual([makeRecord(2), makeRecord(3)]);
    expect(sliceBody(b, 0, 3)).toBe(b.body);
    expect(dec.decode(spliceBatch(1, []).body)).toBe("[]");
  });

  test("any slice of any batch is valid JSON holding exactly those records (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 30 }), fc.nat(), fc.nat(), (msgs, x, y) => {
        const recs = msgs.map((m, i) => ({ ...makeRecord(i), message: m }));
        const b = spliceBatch(1, recs.map((r) => new TextEncoder().encode(JSON.stringify(r))));
        const from = x % recs.length;
        const to = from + 1 + (y % (recs.length - from));
        expect(JSON.parse(dec.decode(sliceBody(b, from, to)))).toEqual(recs.slice(from, to));
      }),
    );
  });

  test("payload budget keeps the body within the cap", () => {
    expect(payloadBudget(1024, 4_000_000)).toBe(4_000_000 - 1025);
    expect(bodySize(1024, payloadBudget(1024, 4_000_000))).toBe(4_000_000);
    expect(payloadBudget(1024, 1024)).toBe(512); // tiny caps keep half for payloads
  });

  test("bisection halves cover the range exactly and always shrink", () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.integer({ min: 2, max: 2048 }), (from, n) => {
        const [[a, m], [m2, z]] = splitRange(from, from + n);
        expect(a).toBe(from);
        expect(m).toBe(m2);
        expect(z).toBe(from + n);
        expect(m - a).toBeGreaterThan(0);
        expect(z - m2).toBeGreaterThan(0);
      }),
    );
    expect(() => splitRange(3, 4)).toThrow();
    // A poisoned record among 1024 is isolated in log2(1024) = 10 splits.
    let range: [number, number] = [0, 1024];
    let splits = 0;
    while (range[1] - range[0] > 1) {
      const [lo, hi] = splitRange(range[0], range[1]);
      range = 777 < lo[1] ? lo : hi;
      splits++;
    }
    expect(range).toEqual([777, 778]);
    expect(splits).toBe(10);
  });
});

describe("delivery policy", () => {
  test("status classification", () => {
    for (const s of [200, 201, 202, 204, 299]) expect(classifyStatus(s)).toBe("ok");
    for (const s of [408, 429, 500, 502, 503, 504, 599]) expect(classifyStatus(s)).toBe("retry");
    for (const s of [400, 413, 422]) expect(classifyStatus(s)).toBe("split");
    for (const s of [401, 403]) expect(classifyStatus(s)).toBe("auth");
    for (const s of [404, 405]) expect(classifyStatus(s)).toBe("url");
    for (const s of [501, 409, 410, 415, 418, 451, 302, 100]) expect(classifyStatus(s)).toBe("unexpected");
  });

  test("full-jitter backoff: uniform below min(max, initial * 2^attempt)", () => {
    expect(fullJitterBackoff(0, 1000, 30000, () => 0.999999)).toBe(999);
    expect(fullJitterBackoff(3, 1000, 30000, () => 0.5)).toBe(4000);
    expect(fullJitterBackoff(10, 1000, 30000, () => 0.5)).toBe(15000);
    expect(fullJitterBackoff(2000, 1000, 30000, () => 0.999999)).toBe(29999);
    expect(fullJitterBackoff(5, 1000, 30000, () => 0)).toBe(0);
    fc.assert(
      fc.property(fc.nat(100), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 0, max: 100000 }), (att, init, extra) => {
        const d = fullJitterBackoff(att, init, init + extra);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(init + extra);
      }),
    );
  });

  test("Retry-After as seconds or HTTP date", () => {
    const now = Date.parse("2026-11-25T10:00:00Z");
    expect(parseRetryAfter("3", now)).toBe(3000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Wed, 25 Nov 2026 10:00:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("Wed, 25 Nov 2026 09:00:00 GMT", now)).toBe(0);
    for (const bad of [null, undefined, "", "-1", "1.5", "soon"]) expect(parseRetryAfter(bad, now)).toBeNull();
    expect(retryDelay(0, 3000, 1000, 60000)).toBe(3000);
    expect(retryDelay(0, 10 * 3600_000, 1000, 60000)).toBe(RETRY_AFTER_CAP_MS);
    expect(retryDelay(4, null, 1000, 60000, () => 0.5)).toBe(8000);
  });
});

describe("dead-letter file", () => {
  test("lines carry status, answer and the record; rotation keeps both files within the cap", () => {
    const dir = mkdtempSync(join(tmpdir(), "pk-dl-"));
    try {
      const dl = new DeadLetterFile(dir, 4096);
      for (let i = 0; i < 20; i++) dl.write({ seq: i + 1, status: 400, answer: '{"error":"bad"}', record: payload(i), time: 0 });
      const lines = readFileSync(dl.path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
      expect(lines.at(-1)).toEqual({ time: "1970-01-01T00:00:00.000Z", seq: 20, status: 400, answer: '{"error":"bad"}', record: makeRecord(19) });
      expect(existsSync(dl.rotatedPath)).toBe(true);
      const total = readFileSync(dl.path).length + readFileSync(dl.rotatedPath).length;
      expect(total).toBeLessThanOrEqual(4096);
      expect(dl.stats().written).toBe(20);
      expect(dl.stats().rotations).toBeGreaterThan(0);
      // A record too large for half the cap is kept truncated, with its size.
      const big = formatDeadLetter({ seq: 1, status: 413, answer: "", record: payload(1, "y".repeat(5000)), time: 0 }, 2048);
      expect(big.length).toBeLessThanOrEqual(2048);
      expect(JSON.parse(big).recordBytes).toBeGreaterThan(5000);
      // A record that is not JSON is kept as text.
      expect(JSON.parse(formatDeadLetter({ seq: 1, status: 400, answer: "", record: new TextEncoder().encode("{oops"), time: 0 }, 2048)).recordText).toBe("{oops");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("latency histogram is cumulative", () => {
  const h = new Histogram([0.1, 1]);
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  expect(h.snapshot()).toEqual({ boundsSeconds: [0.1, 1], cumulativeCounts: [1, 2], count: 3, sumSeconds: 5.55 });
});
