// In-process harness for the source stage: real files, real inotify, a real Source, and an
// output that stands in for router + ring (sequence numbers, durability on demand, backpressure).
import { afterAll, afterEach } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, ConfigSchema } from "../../src/config/schema.ts";
import type { LogFields, Logger } from "../../src/log.ts";
import type { Lines } from "../../src/source/types.ts";
import type { MergedLine } from "../../src/source/types.ts";
import { Source } from "../../src/source/source.ts";
import { FaultyFs } from "../support/faulty-fs.ts";
import type { FileDecision, SourceFileInfo } from "../../src/source/types.ts";

export interface Received extends MergedLine {
  podUid: string;
  container: string;
  restart: number;
  path: string;
}

const dirs: string[] = [];
export function tempDir(prefix = "source-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function cleanupDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function sourceConfig(over: Record<string, unknown> = {}): Config["source"] {
  return ConfigSchema.parse({ source: over }).source;
}

/** Captures what the source logs, to check what it says (and how often). */
export class CapturedLog {
  lines: Array<{ level: string; msg: string; fields: LogFields }> = [];
  readonly logger: Logger = this.make({});
  private make(base: LogFields): Logger {
    const at = (level: string) => (msg: string, fields: LogFields = {}) => {
      this.lines.push({ level, msg, fields: { ...base, ...fields } });
    };
    return { debug: () => {}, info: at("info"), warn: at("warn"), error: at("error"), child: (f) => this.make({ ...base, ...f }) };
  }
  count(fragment: string): number {
    return this.lines.filter((l) => l.msg.includes(fragment)).length;
  }
}

/**
 * The rest of the pipeline as the source sees it: every emitted line is "appended" with the next
 * sequence number; `autoDurable` makes it durable at once (else call `makeDurable()`); `gate()`
 * blocks emits the way a full ring does.
 */
export class Harness {
  readonly received: Received[] = [];
  readonly decisions = new Map<string, FileDecision>();
  seq = 0;
  durable = 0;
  emits = 0;
  autoDurable = true;
  emitDelayMs = 0;
  /** CPU each emit takes, without yielding (a ring write of a big slice, say). */
  emitBusyMs = 0;
  /** Called at the start of each emit (before any wait), with the file's path. */
  onEmit: ((path: string) => void) | null = null;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  private gateP: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  source!: Source;
  readonly log = new CapturedLog();
  /** The file system the source reads through: the real one, with faults a test can switch on. */
  readonly fs = new FaultyFs();

  constructor(
    readonly root: string,
    readonly dataDir: string,
    readonly config: Config["source"],
    readonly ownPodUid: string | null = null,
  ) {}

  static create(over: Record<string, unknown> = {}, dir = tempDir()): Harness {
    const root = join(dir, "pods");
    const dataDir = join(dir, "data");
    mkdirSync(root, { recursive: true });
    mkdirSync(dataDir, { recursive: true });
    return new Harness(root, dataDir, sourceConfig({ root, ...over }));
  }

  /** A fresh Source over the same root and data dir (a restart). */
  start(ownPodUid: string | null = this.ownPodUid): Source {
    this.source = new Source({
      config: this.config,
      dataDir: this.dataDir,
      ownPodUid,
      durableSeq: () => this.durable,
      log: this.log.logger,
      fs: this.fs,
      output: {
        decide: (file: SourceFileInfo) => this.decisions.get(file.podUid) ?? "read",
        emit: (file, lines) => this.emit(file, lines),
      },
    });
    this.source.start();
    return this.source;
  }

  private async emit(file: SourceFileInfo, lines: Lines): Promise<number> {
    this.emits++;
    this.onEmit?.(file.path);
    if (this.emitBusyMs > 0) {
      const until = performance.now() + this.emitBusyMs;
      while (performance.now() < until);
    }
    if (this.gateP) await this.gateP;
    if (this.emitDelayMs > 0) await Bun.sleep(this.emitDelayMs);
    for (let i = 0; i < lines.length; i++) {
      const l = lines.line(i);
      this.received.push({ ...l, podUid: file.podUid, container: file.container, restart: file.restart, path: file.path });
    }
    if (lines.length > 0) this.seq += lines.length;
    const seq = this.seq;
    // Like the ring: durability is reported after a periodic sync, not per append.
    if (this.autoDurable && !this.syncTimer) {
      this.syncTimer = setTimeout(() => {
        this.syncTimer = null;
        this.makeDurable();
      }, 20);
    }
    return seq;
  }

  makeDurable(): void {
    if (this.durable === this.seq) return;
    this.durable = this.seq;
    this.source.onDurable(this.durable);
  }

  /** Blocks every emit until `ungate()`: a full ring. */
  gate(): void {
    if (this.gateP) return;
    this.gateP = new Promise((r) => (this.openGate = r));
  }
  ungate(): void {
    const open = this.openGate;
    this.gateP = null;
    this.openGate = null;
    open?.();
  }

  messages(filter?: (r: Received) => boolean): string[] {
    return (filter ? this.received.filter(filter) : this.received).map((r) => r.message);
  }

  /** Graceful stop: stop reading, make everything durable, persist checkpoints, close. */
  async stop(): Promise<void> {
    this.ungate();
    await this.source.stop();
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    this.makeDurable();
    this.source.close();
  }

  /** A crash: the loop stops, nothing more is persisted (only what onDurable already saved survives). */
  async crash(): Promise<void> {
    await this.source.stop();
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
  }
}

/** Pod dir and container dir for a pod. */
export function podDir(root: string, uid: string, container = "main", name = `pod-${uid}`, ns = "argo"): string {
  const d = join(root, `${ns}_${name}_${uid}`, container);
  mkdirSync(d, { recursive: true });
  return d;
}

let tick = 0;
/** A CRI timestamp that increases per call. */
export function ts(): string {
  tick++;
  const ns = String(tick % 1_000_000_000).padStart(9, "0");
  return `2026-11-25T10:00:00.${ns}Z`;
}

export function cri(message: string, stream: "stdout" | "stderr" = "stdout", tag: "F" | "P" = "F"): string {
  return `${ts()} ${stream} ${tag} ${message}\n`;
}

/** CRI lines for messages `${prefix} ${i}` for i in [from, to). */
export function criLines(prefix: string, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += cri(`${prefix} ${i}`);
  return s;
}

export function expectedMessages(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`${prefix} ${i}`);
  return out;
}

export async function waitFor(check: () => boolean, timeoutMs: number, stepMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await Bun.sleep(stepMs);
  }
  return check();
}

/** Messages that appear more than once. */
export function duplicates(messages: string[]): string[] {
  const seen = new Set<string>();
  const dup: string[] = [];
  for (const m of messages) {
    if (seen.has(m)) dup.push(m);
    seen.add(m);
  }
  return dup;
}

/** A kubelet rotation stamp (`YYYYMMDD-hhmmss`) that increases per call. */
let stampN = 0;
export function rotationStamp(): string {
  const d = new Date(Date.UTC(2026, 10, 25, 10, 0, 0) + ++stampN * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

const HOOK_TIMEOUT_MS = 30_000;

/**
 * For a test file: a factory of harnesses that are stopped after each test; temp dirs are
 * removed after the file. Call once at the file's top level.
 */
export function harnessPerTest(): (over?: Record<string, unknown>) => Harness {
  const running: Harness[] = [];
  // Longer than bun's 5 s default: removing a 2,000-file tree or stopping a source on a loaded
  // machine can take that long, and a hook timeout fails the file though every test passed.
  afterEach(async () => {
    for (const h of running.splice(0)) await h.stop().catch(() => {});
  }, HOOK_TIMEOUT_MS);
  afterAll(cleanupDirs, HOOK_TIMEOUT_MS);
  return (over = {}) => {
    const h = Harness.create(over);
    running.push(h);
    return h;
  };
}
