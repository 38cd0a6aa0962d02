// Shared helpers for the ring tests: temp dirs, payloads, draining.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PrefixTable } from "../../src/buffer/prefix-table.ts";
import type { Ring } from "../../src/buffer/types.ts";
import { readPayloads } from "../support/ring-payloads.ts";

const dirs: string[] = [];
export function tempDir(prefix = "ring-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function cleanupDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

const enc = new TextEncoder();
const dec = new TextDecoder();
/** A JSON payload that names its own index, padded to about `size` bytes. */
export function payload(i: number, size = 60): Uint8Array {
  const head = `{"i":${i},"pad":"`;
  const pad = Math.max(0, size - head.length - 2);
  return enc.encode(head + "x".repeat(pad) + `"}`);
}
export function text(b: Uint8Array): string {
  return dec.decode(b);
}
export function indexOf(b: Uint8Array): number {
  return JSON.parse(text(b)).i;
}

/** Reads everything currently readable, copying payloads, without acking. */
export function readAll(ring: Ring, max = 1000): { firstSeq: number; payloads: Uint8Array[] }[] {
  const out: { firstSeq: number; payloads: Uint8Array[] }[] = [];
  for (;;) {
    const b = readPayloads(ring, max, 1 << 30);
    if (!b) return out;
    out.push({ firstSeq: b.firstSeq, payloads: b.payloads.map((p) => p.slice()) });
  }
}

import type { LogFields, Logger } from "../../src/log.ts";
export interface LogLine {
  level: string;
  msg: string;
  fields: LogFields;
}
/** A Logger that keeps its lines for assertions. */
export function captureLog(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (base: LogFields): Logger => ({
    debug: (msg, f) => lines.push({ level: "debug", msg, fields: { ...base, ...f } }),
    info: (msg, f) => lines.push({ level: "info", msg, fields: { ...base, ...f } }),
    warn: (msg, f) => lines.push({ level: "warn", msg, fields: { ...base, ...f } }),
    error: (msg, f) => lines.push({ level: "error", msg, fields: { ...base, ...f } }),
    child: (more) => make({ ...base, ...more }),
  });
  return Object.assign(make({}), { lines });
}

/** Reads everything from a ring and acks nothing; checks batches are consecutive. */
export function drainCopies(ring: Ring): { seq: number; bytes: Uint8Array }[] {
  const out: { seq: number; bytes: Uint8Array }[] = [];
  for (const b of readAll(ring)) b.payloads.forEach((p, i) => out.push({ seq: b.firstSeq + i, bytes: p }));
  return out;
}

/**
 * The id of `prefix`, its table written now if it is new (the collector writes new prefixes at the
 * next yield to the event loop); null when that write fails.
 */
export function acquireNow(t: PrefixTable, prefix: string): number | null {
  const id = t.acquire(prefix);
  if (id !== null) return id;
  t.flush();
  t.withdraw(prefix);
  return t.acquire(prefix);
}
