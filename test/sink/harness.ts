// The sink's test bench: the real sender, a ring file in a temp dir, the mock messenger over
// 127.0.0.1, and a logger that captures lines (to check what the collector says and never says).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "bun:test";
import { ConfigSchema, type Config } from "../../src/config/schema.ts";
import type { Logger, LogFields } from "../../src/log.ts";
import { createSender, type Sender, type SenderDeps } from "../../src/sink/sender.ts";
import { startMockMessenger, type MessengerFaults, type MockMessenger } from "../../src/dev/mock-messenger.ts";
import { indexOf, payload, waitFor } from "./helpers.ts";
import { openTestRing, type TestRing } from "./ring.ts";

export const API_KEY = "pk_test_9f8e7d6c5b4a";

export interface LogLine {
  level: string;
  msg: string;
  fields: LogFields;
}

export function captureLogger(lines: LogLine[], base: LogFields = {}): Logger {
  const at = (level: string) => (msg: string, fields?: LogFields) => lines.push({ level, msg, fields: { ...base, ...fields } });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: (f) => captureLogger(lines, { ...base, ...f }) };
}

export interface Bench {
  dir: string;
  ring: TestRing;
  messenger: MockMessenger;
  sender: Sender;
  logs: LogLine[];
  /** Seqs acknowledged, in the order the sender acknowledged them. */
  acks: Array<[number, number]>;
  config: Config["messenger"];
  /** Appends records "line i" for i in [from, to). */
  append(from: number, to: number, poison?: (i: number) => string | undefined): Promise<void>;
  /** Waits until the ring's read position passed `count` records (all acknowledged, contiguously). */
  waitAcked(count: number, timeoutMs?: number): Promise<void>;
  /** Every index in [0, n) received exactly once, except `missing`. */
  expectExactlyOnce(n: number, missing?: number[]): void;
  close(): Promise<void>;
}

export interface BenchOptions {
  faults?: MessengerFaults;
  messenger?: Record<string, unknown>;
  /** Start the messenger later (the caller calls startMessenger). */
  messengerDown?: boolean;
  messengerPort?: number;
  apiKey?: string;
  ringBytes?: number;
  deps?: Partial<SenderDeps>;
  start?: boolean;
}

export async function freePort(): Promise<number> {
  const m = await startMockMessenger({ apiKey: "x" });
  const port = m.port;
  await m.stop();
  return port;
}

export async function bench(o: BenchOptions = {}): Promise<Bench> {
  const dir = mkdtempSync(join(tmpdir(), "pk-sink-"));
  const ring = await openTestRing(join(dir, "data"), o.ringBytes ?? 64 * 1024 * 1024);
  const port = o.messengerPort ?? (o.messengerDown ? await freePort() : 0);
  const messenger = o.messengerDown
    ? (null as unknown as MockMessenger)
    : await startMockMessenger({ apiKey: o.apiKey ?? API_KEY, port, faults: o.faults });
  const baseUri = o.messengerDown ? `http://127.0.0.1:${port}` : messenger.url;
  const config = ConfigSchema.parse({
    messenger: {
      baseUri,
      apiKey: API_KEY,
      retryInitialBackoffMs: 20,
      retryMaxBackoffMs: 200,
      flushIntervalMs: 50,
      timeoutMs: 5000,
      ...o.messenger,
    },
  }).messenger;
  const logs: LogLine[] = [];
  const acks: Array<[number, number]> = [];
  const ackingRing = {
    read: ring.read.bind(ring),
    readRanges: ring.readRanges.bind(ring),
    waitForData: ring.waitForData.bind(ring),
    ack: (first: number, count: number) => {
      acks.push([first, count]);
      ring.ack(first, count);
    },
  };
  const sender = createSender({ ring: ackingRing, config, dataDir: join(dir, "data"), log: captureLogger(logs), ...o.deps });
  if (o.start !== false) sender.start();
  const b: Bench = {
    dir,
    ring,
    messenger,
    sender,
    logs,
    acks,
    config,
    async append(from, to, poison) {
      const batch: Uint8Array[] = [];
      for (let i = from; i < to; i++) {
        batch.push(payload(i, poison?.(i)));
        if (batch.length === 512) await ring.append(batch.splice(0));
      }
      if (batch.length) await ring.append(batch);
    },
    async waitAcked(count, timeoutMs = 20_000) {
      await waitFor(() => ring.readSeq() >= count + 1, timeoutMs, `${count} records acknowledged (read position ${ring.readSeq()})`);
    },
    expectExactlyOnce(n, missing = []) {
      const seen = new Map<number, number>();
      for (const r of b.messenger.received()) seen.set(indexOf(r), (seen.get(indexOf(r)) ?? 0) + 1);
      const dupes = [...seen].filter(([, c]) => c > 1).map(([i]) => i);
      expect(dupes).toEqual([]);
      const absent: number[] = [];
      for (let i = 0; i < n; i++) if (!seen.has(i)) absent.push(i);
      expect(absent).toEqual(missing);
      expect(seen.size).toBe(n - missing.length);
    },
    async close() {
      await sender.stop();
      await b.messenger?.stop();
      await ring.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return b;
}

/** Acks must cover each sequence number exactly once. */
export function expectAcksCoverOnce(acks: Array<[number, number]>, n: number): void {
  const seen = new Uint8Array(n + 1);
  for (const [first, count] of acks) for (let s = first; s < first + count; s++) seen[s] = (seen[s] ?? 0) + 1;
  const wrong: number[] = [];
  for (let s = 1; s <= n; s++) if (seen[s] !== 1) wrong.push(s);
  expect(wrong).toEqual([]);
}

/** No captured log line mentions the secret. */
export function expectNoSecret(logs: LogLine[], ...secrets: string[]): void {
  const text = JSON.stringify(logs);
  for (const s of secrets) expect(text.includes(s)).toBe(false);
}
