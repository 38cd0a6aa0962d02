// Property-based tests (issue 9, part 5) beyond what test/source and test/buffer already have:
// - the CRI and docker parsers never throw on any bytes, at any slice, and return only well-formed
//   fragments; what a runtime writes round-trips, including lines it splits into P/F fragments at
//   arbitrary byte positions (containerd splits on bytes, not characters) and feeds of any chunking;
// - the ring opens after any damage anywhere in its file (both header copies included, on a ring that
//   has wrapped so that stale previous-lap records exist) and never hands out a record that was not
//   appended with that sequence number; it stays usable afterwards.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRing } from "../../src/buffer/ring.ts";
import { parseCriLine, parseDockerLine } from "../../src/source/line-format.ts";
import { LineReader, type LineReaderCounters } from "../../src/source/line-reader.ts";
import { PartialMerger } from "../../src/source/partial.ts";
import type { MergedLine } from "../../src/source/types.ts";
import { appendPayloads, readPayloads } from "../support/ring-payloads.ts";

const enc = new TextEncoder();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// Content a program may print: any Unicode (well-formed), tabs, CR inside, quotes, but no newline.
const content = fc.string({ unit: "grapheme", maxLength: 200 }).map((s) => s.replace(/\n/g, " "));
const stream = fc.constantFrom("stdout" as const, "stderr" as const);
const timestamp = fc
  .tuple(fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true }), fc.integer({ min: 0, max: 999_999 }))
  .map(([d, ns]) => d.toISOString().replace(/\.(\d{3})Z$/, (_, ms) => `.${ms}${String(ns).padStart(6, "0")}Z`));

function check(frag: ReturnType<typeof parseCriLine>): void {
  if (frag === null) return;
  expect(frag.stream === "stdout" || frag.stream === "stderr").toBe(true);
  expect(typeof frag.timestamp).toBe("string");
  expect(typeof frag.content).toBe("string");
  expect(typeof frag.partial).toBe("boolean");
}

describe("parsers never throw", () => {
  test("CRI: any bytes, any slice", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const start = bytes.length ? a % (bytes.length + 1) : 0;
        const end = start + (bytes.length - start ? b % (bytes.length - start + 1) : 0);
        check(parseCriLine(bytes, start, end));
        check(parseCriLine(bytes, 0, bytes.length));
      }),
      { numRuns: 3000 },
    );
  });

  test("CRI: near-valid lines (a valid line with bytes changed, cut or inserted)", () => {
    fc.assert(
      fc.property(timestamp, stream, fc.boolean(), content, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), (ts, st, partial, c, edits, cut) => {
        const bytes = enc.encode(`${ts} ${st} ${partial ? "P" : "F"} ${c}`);
        for (const [at, v] of edits) if (bytes.length) bytes[at % bytes.length] = v;
        check(parseCriLine(bytes, 0, bytes.length ? cut % (bytes.length + 1) : 0));
      }),
      { numRuns: 3000 },
    );
  });

  test("docker: any bytes, any JSON value, any object with odd field types", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => check(parseDockerLine(bytes, 0, bytes.length))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const b = enc.encode(JSON.stringify(v) ?? "null");
        check(parseDockerLine(b, 0, b.length));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.record({ log: fc.anything(), stream: fc.oneof(stream, fc.anything()), time: fc.anything() }, { requiredKeys: [] }), (o) => {
        let s: string;
        try {
          s = JSON.stringify(o) ?? "";
        } catch {
          return; // BigInt and the like: not a line anyone can write
        }
        const b = enc.encode(s);
        check(parseDockerLine(b, 0, b.length));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("what a writer produces round-trips", () => {
  test("CRI: timestamp, stream, P/F, tags and content come back as written", () => {
    fc.assert(
      fc.property(timestamp, stream, fc.boolean(), fc.option(fc.stringMatching(/^[a-z0-9,]{1,10}$/), { nil: undefined }), content, (ts, st, partial, tags, c) => {
        const line = enc.encode(`${ts} ${st} ${partial ? "P" : "F"}${tags ? `:${tags}` : ""} ${c}`);
        expect(parseCriLine(line, 0, line.length)).toEqual({ timestamp: ts, stream: st, partial, content: c });
      }),
      { numRuns: 2000 },
    );
  });

  test("docker: log, stream and time come back; a log without a trailing newline is partial", () => {
    fc.assert(
      fc.property(timestamp, stream, fc.boolean(), content, (ts, st, partial, c) => {
        const line = enc.encode(JSON.stringify({ log: partial ? c : `${c}\n`, stream: st, time: ts }));
        expect(parseDockerLine(line, 0, line.length)).toEqual({ timestamp: ts, stream: st, partial, content: c });
      }),
      { numRuns: 2000 },
    );
  });

  /**
   * Lines written as the runtime writes them: content cut into P fragments and a final F, then the
   * whole fed to a LineReader in chunks of the given sizes; every line must merge back exactly.
   * `charBoundaries`: cuts fall between characters only (else anywhere between bytes, as containerd does).
   */
  const roundTrip = (charBoundaries: boolean) => {
    const line = fc.record({ ts: timestamp, st: stream, c: content, cuts: fc.array(fc.nat(), { maxLength: 3 }) });
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }), (lines, chunkSizes) => {
        const parts: Uint8Array[] = [];
        for (const l of lines) {
          const body = enc.encode(l.c);
          // Byte offsets where a character starts (every offset when cutting anywhere).
          const allowed: number[] = [];
          if (charBoundaries) {
            let off = 0;
            for (const ch of l.c) allowed.push((off += enc.encode(ch).length));
          } else for (let i = 1; i <= body.length; i++) allowed.push(i);
          const cuts = [...new Set(l.cuts.map((x) => (allowed.length ? allowed[x % allowed.length]! : 0)))].filter((x) => x > 0 && x < body.length).sort((a, b) => a - b);
          let from = 0;
          for (const at of [...cuts, body.length]) {
            const tag = at === body.length ? "F" : "P";
            parts.push(enc.encode(`${l.ts} ${l.st} ${tag} `), body.subarray(from, at), enc.encode("\n"));
            from = at;
          }
        }
        const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) all.set(p, (o += p.length) - p.length);
        const counters: LineReaderCounters = { linesRead: 0, linesMalformed: 0, linesTruncated: 0 };
        const r = new LineReader({ partialKey: "u/main/0", fileId: "1:1", format: "auto", maxLineBytes: 1 << 20, merger: new PartialMerger(1 << 20), counters }, 0);
        const out: MergedLine[] = [];
        let pos = 0;
        for (let i = 0; pos < all.length; i++) {
          const n = chunkSizes[i % chunkSizes.length]!;
          r.feed(all.subarray(pos, pos + n), 0, out);
          pos += n;
        }
        expect(counters.linesMalformed).toBe(0);
        expect(out.map((m) => ({ message: m.message, stream: m.stream, timestamp: m.timestamp }))).toEqual(lines.map((l) => ({ message: l.c, stream: l.st, timestamp: l.ts })));
      }),
      { numRuns: 500 },
    );
  };

  test("CRI through the reader: lines split into P/F between characters, fed in any chunks, merge back exactly", () => roundTrip(true));

  // containerd splits long lines into 16 KiB fragments on bytes, so a multi-byte character can
  // straddle a P/F boundary. This property found that such a character came out as two U+FFFD
  // (content "\u00a0" cut after its first byte); see test/reliability/utf8-split.test.ts.
  test("CRI through the reader: lines split by the runtime at any byte position (inside a character) merge back exactly", () => roundTrip(false));
});

describe("ring recovery after any damage", () => {
  const CAP = 64 * 1024;
  const payload = (seq: number, size: number) => enc.encode(`{"seq":${seq},"pad":"${"abcdefghij".repeat(60).slice(0, size)}"}`);

  /** A step that does not finish in 5 s fails the property with its name (instead of hanging the test). */
  const within = <T>(p: Promise<T>, what: string): Promise<T> =>
    Promise.race([p, Bun.sleep(5000).then(() => Promise.reject(new Error(`${what}: still waiting after 5 s`)))]);

  type Damage =
    | { kind: "flip"; at: number; bit: number }
    | { kind: "bytes"; at: number; bytes: Uint8Array }
    | { kind: "zero"; at: number; len: number }
    | { kind: "truncate"; at: number };
  const damage: fc.Arbitrary<Damage> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("flip" as const), at: fc.double({ min: 0, max: 0.9999, noNaN: true }).map((x) => x), bit: fc.integer({ min: 0, max: 7 }) }) as fc.Arbitrary<Damage> },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("bytes" as const), at: fc.double({ min: 0, max: 0.9999, noNaN: true }), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) as fc.Arbitrary<Damage> },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("zero" as const), at: fc.double({ min: 0, max: 0.9999, noNaN: true }), len: fc.integer({ min: 1, max: 4096 }) }) as fc.Arbitrary<Damage> },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.double({ min: 0, max: 0.9999, noNaN: true }) }) as fc.Arbitrary<Damage> },
  );
  // Damage near the start of the file (the two header copies) is drawn more often.
  const headerHeavy = (d: Damage): Damage => ("at" in d && d.kind !== "truncate" && d.at < 0.3 ? { ...d, at: d.at / 30 } : d);

  let wrapped = 0;
  test("opens, hands out only genuine records in increasing order, and keeps working", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 600 }), { minLength: 150, maxLength: 500 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(damage.map(headerHeavy), { minLength: 0, maxLength: 6 }),
        async (sizes, ackFraction, damages) => {
          const dir = mkdtempSync(join(tmpdir(), "pipekit-ringfuzz-"));
          dirs.push(dir);
          const sent = new Map<number, Uint8Array>();
          let ackedUpTo = 0;
          {
            const ring = await openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 });
            // Append, then ack a prefix, several times over, so that the ring wraps and stale records remain.
            for (let i = 0; i < sizes.length; ) {
              const batch = sizes.slice(i, i + 20);
              const room = ring.stats().capacityBytes - ring.stats().usedBytes; // the data region (the file minus its headers)
              if (batch.reduce((a, s) => a + s + 64, 0) > room / 2 - 1024) {
                // Hand everything out, then acknowledge the older part of what is unacknowledged.
                while (readPayloads(ring, 1 << 20, 1 << 30)) {}
                const outstanding = ring.lastSeq() - ackedUpTo;
                const n = Math.max(1, Math.floor(outstanding * (0.5 + ackFraction / 2)));
                ring.ack(ackedUpTo + 1, n);
                ackedUpTo += n;
                await ring.sync();
                continue;
              }
              const payloads = batch.map((s, k) => payload(ring.lastSeq() + 1 + k, s));
              const last = await within(appendPayloads(ring, payloads), "append before the damage");
              payloads.forEach((p, k) => sent.set(last - payloads.length + 1 + k, p));
              i += batch.length;
            }
            await ring.close();
          }
          const totalBytes = [...sent.values()].reduce((a, p) => a + p.length, 0);
          if (totalBytes > CAP) wrapped++;
          const path = join(dir, "ring.dat");
          const size = statSync(path).size;
          for (const d of damages) {
            const buf = readFileSync(path);
            if (d.kind === "truncate") {
              truncateSync(path, Math.floor(d.at * buf.length));
              continue;
            }
            const at = Math.floor(d.at * buf.length);
            if (at >= buf.length) continue;
            if (d.kind === "flip") buf[at] = buf[at]! ^ (1 << d.bit);
            else if (d.kind === "bytes") buf.set(d.bytes.subarray(0, buf.length - at), at);
            else buf.fill(0, at, Math.min(buf.length, at + d.len));
            writeFileSync(path, buf);
          }
          const ring = await within(openRing({ dir, capacityBytes: CAP, syncIntervalMs: 60_000 }), "open after the damage");
          const got: number[] = [];
          try {
            let lastSeq = 0;
            for (;;) {
              const b = readPayloads(ring, 1000, 1 << 30);
              if (!b) break;
              b.payloads.forEach((p, k) => {
                const seq = b.firstSeq + k;
                const want = sent.get(seq);
                expect(want === undefined ? `seq ${seq} never appended` : Buffer.from(p).equals(Buffer.from(want)) ? "genuine" : `seq ${seq} differs`).toBe("genuine");
                expect(seq).toBeGreaterThan(lastSeq);
                lastSeq = seq;
                got.push(seq);
              });
              ring.ack(b.firstSeq, b.payloads.length);
            }
            // Without damage (the control), every unacknowledged record comes back.
            if (damages.length === 0) expect(got).toEqual([...sent.keys()].filter((q) => q > ackedUpTo));
            // Still usable: what is appended now comes back intact.
            const fresh = [enc.encode('{"after":"damage"}'), enc.encode('{"and":"more"}')];
            const last = await within(appendPayloads(ring, fresh), "append after the damage");
            const b = readPayloads(ring, 10, 1 << 30);
            expect(b?.firstSeq).toBe(last - 1);
            expect(b?.payloads.map((p) => Buffer.from(p).toString())).toEqual(['{"after":"damage"}', '{"and":"more"}']);
            expect(statSync(path).size).toBe(size); // a cut file regains its size
          } finally {
            await ring.close();
          }
        },
      ),
      { numRuns: 60 },
    );
    expect(wrapped).toBeGreaterThan(10); // the scenario really wraps the ring (stale previous-lap records exist)
  }, 120_000);
});
