// The sender's own behaviour beyond faults: batching limits, the flush interval, bounds on what
// it holds, drain and stop, TLS, and secrets.
import { afterEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/config/load.ts";
import { ConfigSchema } from "../../src/config/schema.ts";
import { serve } from "../../src/platform/serve.ts";
import { createSender } from "../../src/sink/sender.ts";
import { startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { API_KEY, bench, captureLogger, expectNoSecret, type Bench, type LogLine } from "./harness.ts";
import { waitFor } from "./helpers.ts";
import { openTestRing } from "./ring.ts";

// Real HTTP and real files on a shared 2-core machine: generous limits, the assertions are about behaviour.
setDefaultTimeout(30_000);

let b: Bench | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

describe("batching", () => {
  test("at most batchMaxEvents records and batchMaxBytes bytes a request", async () => {
    b = await bench({ messenger: { batchMaxEvents: 300, batchMaxBytes: "64KB" }, start: false });
    await b.append(0, 3000);
    b.sender.start();
    await b.waitAcked(3000);
    b.expectExactlyOnce(3000);
    const sizes = b.messenger.requestLog().map((e) => e.events);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(300);
    // ~490-byte records: 64 KB holds ~130 of them, so the byte cap is what limits here.
    expect(Math.max(...sizes)).toBeGreaterThan(100);
    const s = b.sender.stats();
    expect(s.bytesSentRaw / s.batchesSent).toBeLessThanOrEqual(64_000);
    expect(b.messenger.stats().bytesReceivedRaw).toBe(s.bytesSentRaw);
  });

  test("a batch that is not full leaves flushIntervalMs after its first record, not before", async () => {
    b = await bench({ messenger: { flushIntervalMs: 600 } });
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await b.append(0, 5);
    await new Promise((r) => setTimeout(r, 100));
    await b.append(5, 10); // joins the same batch: its deadline counts from the first record
    await b.waitAcked(10, 3000);
    const log = b.messenger.requestLog();
    expect(log.map((e) => e.events)).toEqual([10]);
    expect(log[0]!.at - t0).toBeGreaterThanOrEqual(580);
    expect(log[0]!.at - t0).toBeLessThan(1500);
  });

  test("a full batch leaves at once", async () => {
    b = await bench({ messenger: { flushIntervalMs: 10_000, batchMaxEvents: 50 } });
    const t0 = Date.now();
    await b.append(0, 100);
    await b.waitAcked(100, 3000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(b.messenger.requestLog().map((e) => e.events)).toEqual([50, 50]);
  });
});

describe("bounds", () => {
  test("with the messenger refusing, batches held are bounded and waiting batches hold no request slot", async () => {
    b = await bench({ faults: { failRate: 1 }, messenger: { batchMaxEvents: 10, concurrency: 2, retryInitialBackoffMs: 200, retryMaxBackoffMs: 400 } });
    await b.append(0, 1000);
    await waitFor(() => b!.sender.stats().outstanding === 8, 3000, "outstanding batches at the bound");
    let maxOutstanding = 0;
    // More batches waiting out a backoff than there are request slots: a waiting batch holds no slot.
    let sawMoreWaitingThanSlots = false;
    for (let i = 0; i < 40; i++) {
      const s = b.sender.stats();
      maxOutstanding = Math.max(maxOutstanding, s.outstanding);
      expect(s.inFlight).toBeLessThanOrEqual(2);
      if (s.waiting > 2) sawMoreWaitingThanSlots = true;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(maxOutstanding).toBe(8); // concurrency × 4
    expect(b.sender.stats()).toMatchObject({ outstandingLimit: 8, atOutstandingLimit: true });
    expect(sawMoreWaitingThanSlots).toBe(true);
    expect(b.messenger.stats().maxInFlight).toBeLessThanOrEqual(2);
    expect(b.ring.readSeq()).toBe(1);
    b.messenger.setFaults({});
    await b.waitAcked(1000, 10_000);
    b.expectExactlyOnce(1000);
  });
});

describe("drain and stop", () => {
  test("drain delivers what the ring holds without waiting for the flush interval", async () => {
    b = await bench({ messenger: { flushIntervalMs: 30_000, batchMaxEvents: 400 } });
    await b.append(0, 1000); // the last 200 would wait 30 s for company
    const t0 = Date.now();
    const { complete } = await b.sender.drain(10_000);
    expect(complete).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(b.ring.readSeq()).toBe(1001);
    b.expectExactlyOnce(1000);
  });

  test("drain with the messenger down gives up at the deadline; nothing is acknowledged", async () => {
    b = await bench({ messengerDown: true, messenger: { retryMaxBackoffMs: 100 } });
    await b.append(0, 500);
    const t0 = Date.now();
    const { complete } = await b.sender.drain(Date.now() + 600); // an absolute deadline
    const took = Date.now() - t0;
    expect(complete).toBe(false);
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(3000);
    expect(b.ring.readSeq()).toBe(1);
    expect(b.acks).toEqual([]);
    const s = b.sender.stats();
    expect(s.inFlight + s.waiting + s.outstanding).toBe(0);
    b.messenger = await startMockMessenger({ apiKey: API_KEY }); // for close()
  });

  test("stop aborts a hung request at once; the batch stays in the ring for the next start", async () => {
    b = await bench({ faults: { hangNext: 100 }, messenger: { timeoutMs: 60_000 } });
    await b.append(0, 50);
    await waitFor(() => b!.messenger.stats().hanging >= 1, 3000, "a hung request");
    const t0 = Date.now();
    await b.sender.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(b.ring.readSeq()).toBe(1);
    expect(b.acks).toEqual([]);
  });
});

describe("configuration, TLS and secrets", () => {
  test("no baseUri is a clear error", () => {
    const config = ConfigSchema.parse({}).messenger;
    expect(() =>
      createSender({ ring: { readRanges: () => null, waitForData: () => new Promise(() => {}), ack: () => {} }, config, dataDir: "/tmp" }),
    ).toThrow(/messenger.baseUri is not set/);
  });

  test("an unreadable caFile is a clear error", () => {
    const config = ConfigSchema.parse({ messenger: { baseUri: "https://127.0.0.1:1", caFile: "/nonexistent/ca.pem" } }).messenger;
    expect(() => createSender({ ring: { readRanges: () => null, waitForData: () => new Promise(() => {}), ack: () => {} }, config, dataDir: "/tmp" })).toThrow(
      /caFile \/nonexistent\/ca.pem cannot be read: ENOENT/,
    );
  });

  test("no API key at all: reported, and the data held through the messenger's 401s", async () => {
    b = await bench({ messenger: { apiKey: null, retryMaxBackoffMs: 50 } });
    await b.append(0, 20);
    await waitFor(() => b!.sender.stats().healthReasons.includes("messenger rejected the API key"), 5000, "401s");
    expect(b.sender.stats().healthReasons.some((r) => r.startsWith("no messenger API key configured"))).toBe(true);
    expect(b.ring.readSeq()).toBe(1);
  });

  test("a key that cannot go into an HTTP header refuses the sender, naming where it came from and never the key", () => {
    const dir = mkdtempSync(join(tmpdir(), "pk-badkey-"));
    const idle = { readRanges: () => null, waitForData: () => new Promise<void>(() => {}), ack: () => {} };
    const refusal = (messenger: Record<string, unknown>): Error => {
      const config = ConfigSchema.parse({ messenger: { baseUri: "http://127.0.0.1:9", ...messenger } }).messenger;
      try {
        createSender({ ring: idle, config, dataDir: dir, log: captureLogger([]) });
      } catch (err) {
        return err as Error;
      }
      throw new Error("the sender was made");
    };
    try {
      const keyFile = join(dir, "api-key");
      for (const [key, what] of [
        ["pk_first_line\npk_second_line", "a line break"],
        ["pk_carriage\rreturn_key", "a line break"],
        ["pk_bell\u0007_key_value", "a control character"],
        ["pk_n\u00e4me_key_value", "a non-ASCII character"],
        ["pk_emoji_\u{1F511}_key_value", "a non-ASCII character"],
      ] as const) {
        writeFileSync(keyFile, key + "\n");
        const fromFile = refusal({ apiKeyFile: keyFile });
        expect(fromFile).toBeInstanceOf(ConfigError);
        expect(fromFile.message).toContain(`messenger.apiKeyFile ${keyFile}`);
        expect(fromFile.message).toContain(what);
        const fromConfig = refusal({ apiKey: key });
        expect(fromConfig).toBeInstanceOf(ConfigError);
        expect(fromConfig.message).toContain("messenger.apiKey (or PIPEKIT_API_KEY)");
        expect(fromConfig.message).toContain(what);
        for (const part of key.split(/[^a-z_]+/)) if (part.length >= 4) expect(fromFile.message + fromConfig.message).not.toContain(part);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a re-read key file whose key cannot be sent keeps the previous key and logs an error without the key", async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), "pk-rekey-")), "api-key");
    writeFileSync(keyFile, API_KEY + "\n");
    b = await bench({ messenger: { apiKeyFile: keyFile, apiKey: null } });
    await b.append(0, 50);
    await b.waitAcked(50);
    writeFileSync(keyFile, "pk_rotated\nbroken_half_of_it\n");
    b.sender.reloadApiKey();
    const errors = b.logs.filter((l) => l.level === "error");
    expect(errors.map((l) => l.msg)).toEqual(["messenger API key file holds a key that cannot be sent; keeping the previous key"]);
    expect(errors[0]!.fields.file).toBe(keyFile);
    await b.append(50, 100);
    await b.waitAcked(100); // still sent with the previous key, which the messenger accepts
    b.expectExactlyOnce(100);
    expect(b.sender.stats().healthReasons).toEqual([]);
    expectNoSecret(b.logs, "pk_rotated", "broken_half_of_it", API_KEY);
    rmSync(join(keyFile, ".."), { recursive: true, force: true });
  });

  test("a dead letter that cannot be written keeps its record in the ring and says why", async () => {
    b = await bench({ faults: { poisonMarker: "POISON" }, messenger: { retryMaxBackoffMs: 50 }, start: false });
    writeFileSync(join(b.dir, "not-a-dir"), "");
    const logs: LogLine[] = [];
    const s = createSender({ ring: b.ring, config: b.config, dataDir: join(b.dir, "not-a-dir", "data"), log: captureLogger(logs) });
    await b.append(0, 10, (i) => (i === 4 ? "line 4 POISON" : undefined));
    s.start();
    await waitFor(() => s.stats().healthReasons.some((r) => r.startsWith("cannot write the dead-letter file")), 5000, "dead-letter failure");
    await b.waitAcked(4, 3000);
    await new Promise((r) => setTimeout(r, 200));
    expect(b.ring.readSeq()).toBe(5); // records 0-3 delivered; the refused record 4 is kept, so the ring stops there
    expect(s.stats().deadLetteredEvents).toBe(0);
    await s.stop();
  });

  test("TLS: verified against caFile; refused without it; insecureSkipTlsVerify works and warns", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pk-tls-"));
    const proc = Bun.spawnSync([
      "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
      "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ]);
    expect(proc.exitCode).toBe(0);
    const cert = readFileSync(join(dir, "cert.pem"), "utf8");
    const key = readFileSync(join(dir, "key.pem"), "utf8");
    const m = await startMockMessenger({ apiKey: API_KEY, tls: { cert, key } });
    const ring = await openTestRing(join(dir, "data"), 8 * 1024 * 1024);
    const enc = new TextEncoder();
    const rec = (i: number) => enc.encode(JSON.stringify({ orgUUID: "o", runUUID: "r", pipeUUID: "p", nodeID: "n", podName: "pod", containerName: "c", timestamp: `t${i}`, stream: "stdout", message: `m${i}` }));
    const run = async (extra: Record<string, unknown>, seqs: [number, number]) => {
      const logs: LogLine[] = [];
      const config = ConfigSchema.parse({ messenger: { baseUri: m.url, apiKey: API_KEY, flushIntervalMs: 20, retryInitialBackoffMs: 20, retryMaxBackoffMs: 50, ...extra } }).messenger;
      const s = createSender({ ring, config, dataDir: join(dir, "data"), log: captureLogger(logs) });
      await ring.append([rec(seqs[0]), rec(seqs[1])]);
      s.start();
      return { s, logs };
    };
    try {
      expect(m.url.startsWith("https://")).toBe(true);
      // 1. Without the CA the certificate is not trusted: connection errors, retried, nothing acked.
      const untrusted = await run({}, [1, 2]);
      await waitFor(() => untrusted.s.stats().requests.error >= 2, 5000, "TLS failures");
      expect(untrusted.s.stats().lastError).toMatch(/certificate|self.signed|verify|TLS|SSL/i);
      expect(m.stats().requests).toBe(0);
      await untrusted.s.stop();
      // 2. With caFile the same server is trusted (the unacked records are handed out again only on reopen,
      //    so this sender delivers two new ones).
      const trusted = await run({ caFile: join(dir, "cert.pem") }, [3, 4]);
      await waitFor(() => m.stats().eventsReceived >= 2, 5000, "delivery over verified TLS");
      await trusted.s.stop();
      // 3. insecureSkipTlsVerify: works, with a warning at start.
      const insecure = await run({ insecureSkipTlsVerify: true }, [5, 6]);
      await waitFor(() => m.stats().eventsReceived >= 4, 5000, "delivery without verification");
      expect(insecure.logs.some((l) => l.level === "warn" && l.msg.includes("insecureSkipTlsVerify"))).toBe(true);
      await insecure.s.stop();
      expect(m.received().map((r) => r.message)).toEqual(["m3", "m4", "m5", "m6"]);
    } finally {
      await m.stop();
      await ring.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the API key and URL credentials never appear in logs, stats or errors, even when the messenger echoes the key", async () => {
    b = await bench({ start: false });
    // A messenger whose error page echoes the request's key back.
    const echo = serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => new Response(`bad key ${req.headers.get("x-pipekit-api-key")}`, { status: 503 }),
    });
    const logs: LogLine[] = [];
    const ring = b.ring;
    const config = ConfigSchema.parse({ messenger: { baseUri: `http://user:hunter2pass@127.0.0.1:${echo.port}`, apiKey: API_KEY, retryInitialBackoffMs: 5, retryMaxBackoffMs: 20 } }).messenger;
    const s = createSender({ ring, config, dataDir: b.dir, log: captureLogger(logs) });
    s.start();
    await b.append(0, 10);
    await waitFor(() => s.stats().requests["5xx"] >= 6, 5000, "echoed errors");
    await s.stop();
    await echo.stop();
    const st = s.stats();
    expect(st.lastError).toContain("bad key [redacted]");
    expectNoSecret(logs, API_KEY, "hunter2pass");
    expect(JSON.stringify(st)).not.toContain(API_KEY);
    expect(logs.some((l) => l.level === "warn")).toBe(true); // it did log, and safely
  });
});
