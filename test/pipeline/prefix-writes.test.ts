// New prefixes are written together, not one durable write per new container (docs/ring-format.md
// "Compact records"): the prefixes first seen in a turn of the source go into the table in one
// write at the next yield to the event loop; until it completes their records are stored whole
// (or the file waits that one turn); after it, compact. A record never references a prefix the
// file on disk does not hold: every append is checked against the real file as it is then. A
// failed write (a full disk) keeps records whole and is retried on a backoff, warned once.
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { COMPACT_TAG, type CompactHead, expandRecord, readCompactHead } from "../../src/buffer/compact-record.ts";
import { decodePrefixTable, PREFIX_TABLE_FILE, PrefixTable } from "../../src/buffer/prefix-table.ts";
import type { PackedRecords } from "../../src/buffer/types.ts";
import { PodCache } from "../../src/metadata/cache.ts";
import type { PodMeta } from "../../src/metadata/types.ts";
import { dataDirFiles } from "../../src/platform/atomic-file.ts";
import type { DurableFiles } from "../../src/platform/types.ts";
import { Router } from "../../src/pipeline/router.ts";
import { LineBatch } from "../../src/source/line-batch.ts";
import type { SourceFileInfo } from "../../src/source/types.ts";
import { cleanupDirs, tempDir } from "../buffer/helpers.ts";
import { captureLogger, type LogLine } from "../sink/harness.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { config, pod as basePod } from "./byte-path-support.ts";

afterEach(cleanupDirs);

/** The data dir's real files, counting table writes and refusing them while `full`. */
class CountingFiles implements DurableFiles {
  tableWrites = 0;
  refused = 0;
  full = false;
  private readonly real: DurableFiles;
  constructor(readonly dir: string) {
    this.real = dataDirFiles(dir);
  }
  pathOf(name: string): string {
    return this.real.pathOf(name);
  }
  read(name: string): string | null {
    return this.real.read(name);
  }
  write(name: string, text: string): void {
    if (this.full) {
      this.refused++;
      throw Object.assign(new Error(`ENOSPC: no space left on device, write '${this.pathOf(name)}.tmp'`), { code: "ENOSPC" });
    }
    if (name === PREFIX_TABLE_FILE) this.tableWrites++;
    this.real.write(name, text);
  }
}

const N = 500;
const podOf = (i: number): PodMeta => ({ ...basePod, uid: `uid-${i}`, name: `wf-step-${i}` });
const fileOf = (i: number): SourceFileInfo => ({ id: `1:${i}`, path: `/var/log/pods/argo_wf-step-${i}_uid-${i}/main/0.log`, namespace: "argo", podName: `wf-step-${i}`, podUid: `uid-${i}`, container: "main", restart: 0, firstSeenAt: 0 });
const lineOf = (i: number, n: number) => LineBatch.of({ timestamp: "2026-11-24T19:02:13.123456789Z", stream: "stdout", message: `file ${i} line ${n}`, truncated: false });

interface Stored {
  file: number;
  bytes: Uint8Array;
}

/** 500 files of 500 pods, their router over `files`; every append checked against the table file on disk then. */
function setup(files: CountingFiles, logs: LogLine[] = []) {
  const clock = new ManualClock(1_000);
  const table = new PrefixTable(files, captureLogger(logs), () => 1, clock);
  const cache = new PodCache({ deletionGraceSeconds: 60 });
  for (let i = 0; i < N; i++) cache.upsert(podOf(i));
  const stored: Stored[] = [];
  let current = -1;
  const head: CompactHead = { id: 0, length: 0 };
  const sink = {
    appendPacked: async (r: PackedRecords) => {
      const onDisk = new Map(decodeOnDisk(files.dir));
      for (let k = 0; k < r.count; k++) {
        const bytes = r.bytes.slice(k === 0 ? 0 : r.ends[k - 1], r.ends[k]);
        // Durable first: a compact record's prefix is in the file as it is on disk now.
        if (readCompactHead(bytes, 0, bytes.length, head)) expect(onDisk.get(head.id)).toBe(new TextDecoder().decode(table.prefix(head.id)));
        stored.push({ file: current, bytes });
      }
      return stored.length;
    },
    lastSeq: () => stored.length,
    maxRecordBytes: () => 1 << 20,
  };
  const router = new Router(config, cache, { notifyUnknownPod() {} }, sink, clock, table);
  const emit = async (i: number, n: number) => {
    current = i;
    await router.emit(fileOf(i), lineOf(i, n));
  };
  return { clock, table, router, stored, emit };
}

function decodeOnDisk(dir: string): Array<[number, string]> {
  try {
    return decodePrefixTable(readFileSync(join(dir, PREFIX_TABLE_FILE), "utf8")).prefixes;
  } catch {
    return [];
  }
}

/** The records the same lines give without a prefix table: what every stored record must expand to. */
async function wholeRecords(lines: Array<[number, number]>): Promise<string[]> {
  const cache = new PodCache({ deletionGraceSeconds: 60 });
  for (let i = 0; i < N; i++) cache.upsert(podOf(i));
  const out: string[] = [];
  const sink = {
    appendPacked: async (r: PackedRecords) => {
      for (let k = 0; k < r.count; k++) out.push(new TextDecoder().decode(r.bytes.slice(k === 0 ? 0 : r.ends[k - 1], r.ends[k])));
      return out.length;
    },
    lastSeq: () => out.length,
    maxRecordBytes: () => 1 << 20,
  };
  const router = new Router(config, cache, { notifyUnknownPod() {} }, sink);
  for (const [i, n] of lines) await router.emit(fileOf(i), lineOf(i, n));
  return out;
}

const isCompact = (s: Stored) => s.bytes[0] === COMPACT_TAG;

test("500 new files emitting in one turn: records whole, one table write at the yield, then every record compact and the same once expanded", async () => {
  const files = new CountingFiles(tempDir("prefix-writes-"));
  const { clock, table, stored, emit } = setup(files);
  const lines: Array<[number, number]> = [];
  for (let i = 0; i < N; i++) {
    await emit(i, 1);
    lines.push([i, 1]);
  }
  expect(files.tableWrites).toBe(0); // nothing written mid-turn
  expect(stored.filter(isCompact)).toHaveLength(0);
  expect(clock.runSoon()).toBe(1); // one write queued for the whole turn
  expect(files.tableWrites).toBe(1);
  expect(decodeOnDisk(files.dir)).toHaveLength(N);
  for (let i = 0; i < N; i++) {
    await emit(i, 2);
    lines.push([i, 2]);
  }
  expect(stored.slice(N).every(isCompact)).toBe(true);
  expect(clock.runSoon()).toBe(0);
  expect(files.tableWrites).toBe(1);
  expect(table.stats()).toMatchObject({ prefixes: N, writes: 1, writeFailures: 0 });
  const expanded = stored.map((s) => new TextDecoder().decode(expandRecord(s.bytes, (id) => table.prefix(id)) as Uint8Array));
  expect(expanded).toEqual(await wholeRecords(lines));
});

test("a turn of the source: 500 new files wait for their prefixes (one write), then are read compact", async () => {
  const files = new CountingFiles(tempDir("prefix-writes-"));
  const { clock, router, stored, emit } = setup(files);
  for (let i = 0; i < N; i++) expect(router.decide(fileOf(i), 1_000)).toBe("hold");
  expect(files.tableWrites).toBe(0);
  clock.runSoon();
  expect(files.tableWrites).toBe(1);
  for (let i = 0; i < N; i++) {
    expect(router.decide(fileOf(i), 1_000)).toBe("read");
    await emit(i, 1);
  }
  expect(stored).toHaveLength(N);
  expect(stored.every(isCompact)).toBe(true);
  expect(files.tableWrites).toBe(1);
  // A file that closes before its prefix was written: its claim goes, the write skips it.
  router.decide(fileOf(N + 1), 1_000);
  router.closed(fileOf(N + 1));
  clock.runSoon();
  expect(files.tableWrites).toBe(1);
});

test("a full disk: records stay whole, the write is retried on a backoff (warned once), and compact once it succeeds", async () => {
  const files = new CountingFiles(tempDir("prefix-writes-"));
  const logs: LogLine[] = [];
  const { clock, table, router, stored, emit } = setup(files, logs);
  files.full = true;
  for (let i = 0; i < N; i++) router.decide(fileOf(i), 1_000);
  clock.runSoon();
  expect(files.refused).toBe(1);
  expect(table.health.lastError).toBe("ENOSPC");
  expect(table.health.failingSince).toBe(1_000);
  // While the write is failing, files are read at once, whole; no new write per file or per turn.
  for (let i = 0; i < N; i++) {
    expect(router.decide(fileOf(i), 1_000)).toBe("read");
    await emit(i, 1);
  }
  expect(clock.runSoon()).toBe(0);
  expect(stored.filter(isCompact)).toHaveLength(0);
  // A minute of retries: 1, 2, 4, 8, 16, 30 s apart.
  clock.advance(60_000);
  expect(files.refused).toBe(1 + 5);
  expect(logs.filter((l) => l.level === "warn" && l.msg.includes("cannot write the prefix table"))).toHaveLength(1);
  expect(table.stats()).toMatchObject({ prefixes: 0, writes: 0, writeFailures: 6 });
  files.full = false;
  clock.advance(30_000);
  expect(files.tableWrites).toBe(1);
  expect(table.health).toEqual({ failingSince: null, lastError: null });
  expect(logs.some((l) => l.level === "info" && l.msg.includes("prefix table written again"))).toBe(true);
  for (let i = 0; i < N; i++) await emit(i, 2);
  expect(stored.slice(N).every(isCompact)).toBe(true);
  expect(files.tableWrites).toBe(1);
});
