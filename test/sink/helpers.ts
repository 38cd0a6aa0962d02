// Shared helpers for the sink tests: records that satisfy the messenger contract, and waiting.
import type { PipekitRecord } from "../../src/pipeline/record.ts";

export function makeRecord(i: number, message?: string): PipekitRecord {
  return {
    orgUUID: "0b0c9a4e-0000-4000-8000-000000000001",
    runUUID: "1c1d2e3f-0000-4000-8000-000000000002",
    pipeUUID: "2d2e3f40-0000-4000-8000-000000000003",
    nodeID: "wf-abc-123",
    podName: "wf-abc-123-main",
    containerName: "main",
    timestamp: `2026-11-25T09:00:00.${String(i).padStart(9, "0")}Z`,
    stream: i % 2 ? "stderr" : "stdout",
    message: message ?? `line ${i} ${"x".repeat(i % 40)}`,
  };
}

export const encoder = new TextEncoder();

export function payload(i: number, message?: string): Uint8Array {
  return encoder.encode(JSON.stringify(makeRecord(i, message)));
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Message index of each received record ("line N ..."), for exactly-once checks. */
export function indexOf(rec: PipekitRecord): number {
  const m = /^line (\d+)/.exec(rec.message);
  if (!m) throw new Error(`unexpected message ${rec.message}`);
  return Number(m[1]);
}
