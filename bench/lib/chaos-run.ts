// The reliability run (issue 9), shared by `npm run chaos` (bench/chaos.ts) and the reduced CI test
// (test/reliability/chaos.test.ts): the real collector process against a RotatingWriter (kubelet-style
// rotation, gzip, deletion) and the mock messenger failing 20 % of requests with 503 and hanging
// some, SIGKILLed at random moments while requests are in flight and files lag, restarted at once;
// optionally a messenger outage long enough to fill the ring. At the end every written event must
// have arrived; duplicates are attributed to the crash that preceded the run they arrived in.
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MockMessenger, startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { prng } from "../../src/dev/sample-node.ts";
import { DeliveryTracker } from "../../test/support/delivery-tracker.ts";
import { RotatingWriter } from "../../test/support/rotating-writer.ts";
import { syncWindowMs } from "../../test/sim/crash-bound.ts";
import { type BehindPending, boundOf, crashBounds, duplicatesBehindPending } from "./chaos-report.ts";

const ROOT = join(import.meta.dir, "../..");
const KEY = "chaos-key";
const TIMEOUT_MS = 2000;
const RETRY_MAX_BACKOFF_MS = 1000;

export interface ChaosOptions {
  seed: number;
  /** Events the writer produces in total. */
  events: number;
  /** Events a second the writer produces. */
  rate: number;
  pods?: number;
  rotateBytes?: number;
  maxFiles?: number;
  /** SIGKILLs, spread at random over the run. */
  kills: number;
  /** Uptime before a kill is considered, drawn in [min, max] ms after the collector is ready. */
  killAfterMs?: { min: number; max: number };
  ringBytes?: string;
  syncIntervalMs?: number;
  failRate?: number;
  hangRate?: number;
  /** source.partialFlushMs (default 2000; short under CPU contention, so the flush timer races reading). */
  partialFlushMs?: number;
  /** One split line in this many has the other stream's next line interleaved with it (default 3; 0: never). */
  interleaveEvery?: number;
  /** One rotation in this many falls inside a line (default 2; 0: only by chance). */
  rotateInsideLineEvery?: number;
  /** A messenger outage (every request 503) starting this long after the start, while writing goes on. */
  outage?: { startAfterMs: number; durationMs: number };
  /** Give up waiting for delivery after the writer finished (default 120 s). */
  drainTimeoutMs?: number;
  /** Use dist/pipekit-log-collector when it exists (npm run chaos); else bun src/main.ts unless PIPEKIT_COLLECTOR_BIN. */
  preferDist?: boolean;
  /** Loss is expected (a crash while files the collector alone held open were deleted): do not fail on it. */
  lossExpected?: boolean;
  log?: (line: string) => void;
  keepDir?: boolean;
}

export interface CrashReport {
  n: number;
  atMs: number;
  uptimeMs: number;
  /** Whether requests were in flight and files lagged at the moment of the kill. */
  inFlight: number;
  lagBytes: number;
  ringRecords: number;
  /** Events the collector appended to its ring per second just before the kill. */
  appendRate: number;
  /** Events acknowledged per second just before the kill. */
  sendRate: number;
  /** Duplicates that arrived in the run after this crash. */
  duplicates: number;
  /** Of those, events first delivered before the crash (the rest arrived twice after it). */
  duplicatesDeliveredBefore: number;
  /** The duplicated sequences as seconds of one stream's writing (max over streams of the duplicated range). */
  duplicateSpanSeconds: number;
  /** Events a second through the ring at the kill: in (the faster of the writer and the appends just before) plus out (the acknowledgements just before). */
  trafficRate: number;
  /** What can be on the wire: batches in flight (messenger.concurrency) × messenger.batchMaxEvents. */
  wireEvents: number;
  /**
   * The sync interval the bound spans: buffer.syncIntervalMs plus two of the slowest recent datasyncs
   * (nominalWindowMs), or the time since the last completed sync's header at the kill when longer.
   */
  windowMs: number;
  nominalWindowMs: number;
  /**
   * Issue 17's bound, asserted: one buffer.syncIntervalMs of traffic plus what was on the wire
   * (crashBounds), plus the duplicates read again from behind a line pending at the kill (behindPending).
   */
  syncBound: number;
  /** Duplicates of lines read again from behind a line pending at the kill (duplicatesBehindPending). */
  behindPending: BehindPending;
}

export interface ChaosResult {
  seed: number;
  command: string;
  events: number;
  distinct: number;
  missing: number;
  missingExamples: string[];
  corrupt: number;
  corruptSamples: string[];
  /** With a loss expected: corrupt messages that are pieces of lost lines (a head, a tail, or both glued). */
  piecesOfLostLines: number;
  misattributed: number;
  duplicates: number;
  duplicatesWithoutCrash: number;
  crashes: CrashReport[];
  writer: RotatingWriter["stats"];
  wallMs: number;
  /** The settings the bounds and the summary need. */
  rate: number;
  syncIntervalMs: number;
  partialFlushMs: number;
  requests: number;
  byStatus: Record<string, number>;
  outage: null | { durationMs: number; ringFullObserved: boolean; ringFullMs: number; maxDeletedHeldBytes: number; rotationsDuringOutage: number };
  finalExit: number | null;
  bytesLost: number;
  accountingImbalance: number | null;
  logFile: string;
  failures: string[];
}

/** The newest modification time of the sources (a dist build older than this is stale). */
function newestSourceMtime(dir = join(ROOT, "src")): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSourceMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export function collectorCommand(preferDist: boolean, log: (l: string) => void = () => {}): string[] {
  const bin = process.env.PIPEKIT_COLLECTOR_BIN;
  if (bin) return [bin];
  const dist = join(ROOT, "dist/pipekit-log-collector");
  if (preferDist && existsSync(dist)) {
    // A stale build would test old code: the first full run here lost events with a build older than its sources.
    if (statSync(dist).mtimeMs >= newestSourceMtime()) return [dist];
    log(`chaos: ${dist} is older than src/ (run npm run build); using bun src/main.ts instead`);
  }
  return [process.execPath, join(ROOT, "src/main.ts")];
}

async function freePort(): Promise<number> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = s.port as number;
  await s.stop(true);
  return port;
}

type Status = Record<string, any>;

async function getStatus(port: number): Promise<Status | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? ((await r.json()) as Status) : null;
  } catch {
    return null;
  }
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const rand = prng(o.seed ^ 0x5eed);
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "pipekit-chaos-"));
  const syncIntervalMs = o.syncIntervalMs ?? 1000;
  const partialFlushMs = o.partialFlushMs ?? 2000;
  const concurrency = 4;
  const batchMaxEvents = 1024;
  const writer = new RotatingWriter({
    root: join(dir, "pods"),
    podsFile: join(dir, "pods.json"),
    seed: o.seed,
    pods: o.pods ?? 4,
    rotateBytes: o.rotateBytes ?? 1024 * 1024,
    maxFiles: o.maxFiles ?? 5,
    interleaveEvery: o.interleaveEvery ?? 3,
    rotateInsideLineEvery: o.rotateInsideLineEvery ?? 2,
    ledger: true,
  });
  const tracker = new DeliveryTracker(writer);
  const faults = { failRate: o.failRate ?? 0.2, failStatus: 503, hangRate: o.hangRate ?? 0.02, latencyMs: 2, latencyJitterMs: 20 };
  const messenger: MockMessenger = await startMockMessenger({ apiKey: KEY, faults });
  const byStatus: Record<string, number> = {};
  let requests = 0;
  let epoch = 0;
  // The mock keeps every accepted record; they are moved into the tracker and forgotten regularly,
  // stamped with a time no earlier than their arrival (which lines a killed process delivered a sync
  // window before its kill: duplicatesBehindPending).
  const drain = () => {
    const recs = messenger.received();
    const receivedBy = performance.now() - t0;
    const st = messenger.stats();
    messenger.reset();
    requests += st.requests;
    for (const [k, v] of Object.entries(st.byStatus)) byStatus[k] = (byStatus[k] ?? 0) + v;
    tracker.add(recs, epoch, receivedBy);
  };
  const drainTimer = setInterval(drain, 250);

  const port = await freePort();
  const configPath = join(dir, "config.json");
  await Bun.write(
    configPath,
    JSON.stringify({
      dataDir: join(dir, "data"),
      // The writer's lines are short; 64 KiB lets the 1 MiB ring of the outage-crash phase hold the largest record.
      source: { root: join(dir, "pods"), partialFlushMs, scanIntervalMs: 2000, maxLineBytes: "64KiB" },
      metadata: { provider: "static", podsFile: join(dir, "pods.json"), waitForMetadataSeconds: 5 },
      buffer: { maxBytes: o.ringBytes ?? "64MiB", syncIntervalMs },
      messenger: {
        baseUri: messenger.url,
        concurrency,
        batchMaxEvents,
        flushIntervalMs: 200,
        retryInitialBackoffMs: 50,
        retryMaxBackoffMs: RETRY_MAX_BACKOFF_MS,
        timeoutMs: TIMEOUT_MS,
      },
      api: { address: `127.0.0.1:${port}` },
      shutdownTimeoutMs: 10000,
      log: { level: "info" },
    }),
  );
  const command = collectorCommand(o.preferDist ?? false, log);
  const logFile = join(dir, "collector.log");
  const failures: string[] = [];
  log(`chaos: seed ${o.seed} (replay with --seed ${o.seed}); collector: ${command.join(" ")}; work dir ${dir}`);

  let proc: ReturnType<typeof Bun.spawn> | null = null;
  let startedAt = 0;
  // Whatever ends the harness (Ctrl-C, a failed assertion, an exception) must not leave a collector running.
  const killCollector = () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  };
  process.on("exit", killCollector);
  const spawn = () => {
    const fd = openSync(logFile, "a");
    proc = Bun.spawn([...command, "run", "--config", configPath], {
      cwd: ROOT,
      env: { ...process.env, PIPEKIT_API_KEY: KEY },
      stdin: "ignore",
      stdout: fd,
      stderr: fd,
    });
    closeSync(fd);
    startedAt = performance.now();
  };
  const waitReady = async (timeoutMs: number) => {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(1000) })).ok) return true;
      } catch {}
      await Bun.sleep(25);
    }
    return false;
  };

  // Rates for the duplicate bound: samples of (time, appended, sent) from /status.
  let samples: Array<{ t: number; appended: number; sent: number; st: Status }> = [];
  let lastStatus: Status | null = null;
  let outageInfo: ChaosResult["outage"] = null;
  let outageOn = false;
  let ringFullSince: number | null = null;
  let maxHeld = 0;
  const sample = async () => {
    const st = await getStatus(port);
    if (!st || !st.events) return null;
    lastStatus = st;
    samples.push({ t: performance.now(), appended: st.events.appended ?? 0, sent: st.events.sent ?? 0, st });
    if (samples.length > 200) samples = samples.slice(-100);
    if (outageOn && outageInfo) {
      if (st.ring?.full) {
        outageInfo.ringFullObserved = true;
        ringFullSince ??= performance.now();
      } else if (ringFullSince !== null) {
        outageInfo.ringFullMs += performance.now() - ringFullSince;
        ringFullSince = null;
      }
      maxHeld = Math.max(maxHeld, st.source?.deletedHeldBytes ?? 0);
    }
    return st;
  };
  /** The rate from the last sample at or before `withinMs` before `now` (the earliest within 2.5 s if none) to the last one. */
  const rateBefore = (field: "appended" | "sent", now: number, withinMs = 2500) => {
    const recent = samples.filter((s) => now - s.t <= 2500);
    if (recent.length < 2) return 0;
    const a = recent.findLast((s) => now - s.t >= withinMs) ?? recent[0]!;
    const b = recent[recent.length - 1]!;
    return b.t > a.t ? ((b[field] - a[field]) * 1000) / (b.t - a.t) : 0;
  };
  // The last /status said its oldest change not yet durable was at most ring.unsyncedMs old: at `now`
  // it is at most that plus the time since (a sync completed meanwhile only makes it younger).
  const unsyncedAt = (now: number) => {
    const last = samples.at(-1);
    const ms = last?.st.ring?.unsyncedMs;
    return last && typeof ms === "number" ? ms + (now - last.t) : undefined;
  };
  const maxDatasyncBefore = (now: number) => Math.max(0, ...samples.filter((s) => now - s.t <= 2500).map((s) => s.st.ring?.lastSyncMs ?? 0));

  spawn();
  if (!(await waitReady(30_000))) failures.push("the collector did not become ready at start");
  const writing = writer.run(o.rate, o.events);
  let writingDone = false;
  writing.then(() => (writingDone = true));

  // The outage, on its own clock.
  let outagePromise: Promise<void> = Promise.resolve();
  if (o.outage) {
    const { startAfterMs, durationMs } = o.outage;
    outagePromise = (async () => {
      await Bun.sleep(startAfterMs);
      const rotBefore = writer.stats.rotations;
      outageInfo = { durationMs, ringFullObserved: false, ringFullMs: 0, maxDeletedHeldBytes: 0, rotationsDuringOutage: 0 };
      outageOn = true;
      messenger.setFaults({ forceStatus: 503 });
      log(`chaos: messenger down for ${durationMs} ms`);
      const end = performance.now() + durationMs;
      while (performance.now() < end) {
        await sample();
        await Bun.sleep(200);
      }
      if (ringFullSince !== null) outageInfo.ringFullMs += performance.now() - ringFullSince;
      ringFullSince = null;
      outageOn = false;
      outageInfo.maxDeletedHeldBytes = maxHeld;
      outageInfo.rotationsDuringOutage = writer.stats.rotations - rotBefore;
      messenger.setFaults(faults);
      log(`chaos: messenger back (ring full observed: ${outageInfo.ringFullObserved}, ${Math.round(outageInfo.ringFullMs)} ms full; ${outageInfo.rotationsDuringOutage} rotations meanwhile)`);
    })();
  }

  // The kills: spread over the writing period (and the catch-up after it).
  const crashes: CrashReport[] = [];
  /** Per crash, the writer's writes when the kill was sent (which lines were begun before it), and when (ms since t0). */
  const writesAtKill: number[] = [];
  const killAtMs: number[] = [];
  const killMin = o.killAfterMs?.min ?? 1500;
  const killMax = o.killAfterMs?.max ?? 6000;
  for (let k = 1; k <= o.kills; k++) {
    const wait = killMin + rand() * (killMax - killMin);
    const until = performance.now() + wait;
    while (performance.now() < until) {
      await sample();
      await Bun.sleep(100);
    }
    // Wait (a little) for the moment the issue asks for: requests in flight and files lagging.
    let st: Status | null = null;
    const watchUntil = performance.now() + 3000;
    while (performance.now() < watchUntil) {
      st = await sample();
      const lag = st ? (st.files as Array<{ lag: number }>).reduce((a, f) => a + (f.lag ?? 0), 0) : 0;
      if (st && st.sink.inFlight > 0 && lag > 0) break;
      await Bun.sleep(5 + rand() * 20);
    }
    const now = performance.now();
    const p = proc as unknown as { kill(sig: string): void; exited: Promise<number> };
    p.kill("SIGKILL");
    writesAtKill.push(writer.writes);
    killAtMs.push(now - t0);
    await p.exited;
    const s = st ?? lastStatus;
    const lagBytes = s ? (s.files as Array<{ lag: number }>).reduce((a, f) => a + (f.lag ?? 0), 0) : 0;
    // The faster of the rates over the seconds before the kill and over its last window (catching up
    // after a restart, the last second may run faster than the average).
    const maxDatasyncMs = maxDatasyncBefore(now);
    const observedWindowMs = unsyncedAt(now);
    const lastWindowMs = Math.max(syncWindowMs(syncIntervalMs, maxDatasyncMs), observedWindowMs ?? 0);
    const appendRate = Math.max(rateBefore("appended", now), rateBefore("appended", now, lastWindowMs));
    const sendRate = Math.max(rateBefore("sent", now), rateBefore("sent", now, lastWindowMs));
    drain();
    epoch++;
    const crash: CrashReport = {
      n: k,
      atMs: Math.round(now - t0),
      uptimeMs: Math.round(now - startedAt),
      inFlight: s?.sink?.inFlight ?? 0,
      lagBytes,
      ringRecords: s?.ring?.records ?? 0,
      duplicates: 0,
      duplicatesDeliveredBefore: 0,
      duplicateSpanSeconds: 0,
      behindPending: { duplicates: 0, lines: 0, widest: null, afterPendingEnds: 0 },
      ...crashBounds({ writeRate: o.rate, appendRate, sendRate, syncIntervalMs, maxDatasyncMs, observedWindowMs, concurrency, batchMaxEvents }),
    };
    crashes.push(crash);
    samples = [];
    log(`chaos: kill ${k}/${o.kills} at ${(crash.atMs / 1000).toFixed(1)} s (uptime ${(crash.uptimeMs / 1000).toFixed(1)} s, ${crash.inFlight} requests in flight, ${crash.lagBytes} bytes lag, ${crash.ringRecords} records in ring)`);
    spawn();
    if (!(await waitReady(30_000))) failures.push(`the collector did not become ready after kill ${k}`);
  }

  await writing;
  if (writer.failure) failures.push(`the writer failed (${writer.failure.message}): the run proves nothing`);
  await outagePromise;
  log(`chaos: writer done (${writer.stats.events} events, ${writer.stats.rotations} rotations, ${writer.stats.gzipped} gzipped, ${writer.stats.deleted} deleted); waiting for delivery`);
  const drainDeadline = performance.now() + (o.drainTimeoutMs ?? 120_000);
  let lastDistinct = -1;
  let stableSince = performance.now();
  while (performance.now() < drainDeadline && !writer.failure) {
    drain();
    const distinct = tracker.distinct();
    if (distinct >= writer.stats.events) break;
    if (distinct !== lastDistinct) {
      lastDistinct = distinct;
      stableSince = performance.now();
    }
    const st = await sample();
    // With a loss expected, what can come has come once nothing moved for 5 s and the ring is empty.
    if (o.lossExpected && performance.now() - stableSince > 5000 && st?.ring?.records === 0) break;
    await Bun.sleep(250);
  }
  await Bun.sleep(syncIntervalMs + 500); // anything else (a duplicate) would arrive now
  const final = await sample();
  const p = proc as unknown as { kill(sig: string): void; exited: Promise<number> };
  p.kill("SIGTERM");
  const exit = await Promise.race([p.exited, Bun.sleep(20_000).then(() => null)]);
  if (exit === null) {
    p.kill("SIGKILL");
    failures.push("the collector did not exit within 20 s of SIGTERM");
  } else if (exit !== 0) failures.push(`the collector exited ${exit} on SIGTERM`);
  clearInterval(drainTimer);
  process.off("exit", killCollector);
  drain();
  await messenger.stop();
  writer.close();

  // Duplicates that arrived in the run after crash k belong to crash k.
  const perStreamRate = o.rate / writer.streams.length;
  crashes.forEach((c) => {
    c.duplicates = tracker.duplicatesByEpoch[c.n] ?? 0;
    const d = tracker.duplicateDetail[c.n];
    c.duplicatesDeliveredBefore = d?.fromEarlierEpoch ?? 0;
    let span = 0;
    for (const r of d?.streams.values() ?? []) span = Math.max(span, r.max - r.min + 1);
    c.duplicateSpanSeconds = Math.round((span / perStreamRate) * 10) / 10;
    // The killed process ran in epoch n - 1; what arrived in epoch n is the next one's.
    c.behindPending = duplicatesBehindPending({
      ledger: writer.ledger!,
      written: writer.written(),
      writesAtKill: writesAtKill[c.n - 1]!,
      killAtMs: killAtMs[c.n - 1]!,
      windowMs: c.windowMs,
      sentByKilled: (stream, seq) => tracker.arrivals(c.n - 1, stream, seq) > 0,
      sentByKilledBy: (stream, seq) => tracker.arrivedBy(c.n - 1, stream, seq),
      deliveredBeforeKill: (stream, seq) => tracker.deliveredBy(c.n - 1, stream, seq),
      arrivalsAfter: (stream, seq) => tracker.arrivals(c.n, stream, seq),
    });
  });
  const missing = tracker.missing();
  const result: ChaosResult = {
    seed: o.seed,
    command: command.map((c) => c.replace(ROOT + "/", "")).join(" "),
    events: writer.stats.events,
    distinct: tracker.distinct(),
    missing: missing.count,
    missingExamples: missing.examples,
    corrupt: tracker.corrupt,
    corruptSamples: tracker.corruptSamples.slice(0, 5).map((m) => m.slice(0, 200)),
    piecesOfLostLines: o.lossExpected ? tracker.piecesOfMissing() : 0,
    misattributed: tracker.misattributed,
    duplicates: tracker.duplicates(),
    duplicatesWithoutCrash: tracker.duplicatesByEpoch[0] ?? 0,
    crashes,
    writer: { ...writer.stats },
    wallMs: Math.round(performance.now() - t0),
    rate: o.rate,
    syncIntervalMs,
    partialFlushMs,
    requests,
    byStatus,
    outage: outageInfo,
    finalExit: exit,
    bytesLost: final?.source?.bytesLost ?? (lastStatus as Status | null)?.source?.bytesLost ?? 0,
    accountingImbalance: final?.events?.accountingImbalance ?? null,
    logFile,
    failures,
  };
  if (result.missing > 0 && !o.lossExpected) failures.push(`${result.missing} events missing (e.g. ${result.missingExamples.join(", ")})`);
  if (result.corrupt - result.piecesOfLostLines > 0) failures.push(`${result.corrupt} corrupt or unknown messages (e.g. ${JSON.stringify(result.corruptSamples[0])})`);
  if (result.misattributed > 0) failures.push(`${result.misattributed} records tagged with the wrong pod or container`);
  if (result.duplicatesWithoutCrash > 0) failures.push(`${result.duplicatesWithoutCrash} duplicates before any crash`);
  for (const c of crashes) {
    if (c.duplicates > boundOf(c)) failures.push(`crash ${c.n}: ${c.duplicates} duplicates, above one sync interval of traffic in and out of the ring and the wire (${c.syncBound}) plus ${c.behindPending.duplicates} read again from behind a pending line`);
  }
  if (o.lossExpected) {
    // The loss is inherent; what matters is that the collector counted it (bytes_lost_total), about as
    // many bytes as the lost events took in the files.
    const perEvent = writer.stats.bytes / Math.max(1, writer.stats.events);
    const expectedBytes = result.missing * perEvent;
    if (result.missing > 0 && result.bytesLost === 0) failures.push(`${result.missing} events lost and not counted (bytes lost 0)`);
    else if (result.missing > 0 && (result.bytesLost < expectedBytes * 0.8 || result.bytesLost > expectedBytes * 1.5)) {
      failures.push(`${result.missing} events lost (~${Math.round(expectedBytes)} bytes) but ${result.bytesLost} bytes counted as lost`);
    }
  } else if (result.bytesLost > 0) failures.push(`the collector reports ${result.bytesLost} bytes lost`);
  if (o.outage && !result.outage?.ringFullObserved) failures.push("the outage did not fill the ring (the scenario did not happen)");
  if (!o.keepDir && failures.length === 0) rmSync(dir, { recursive: true, force: true });
  return result;
}
