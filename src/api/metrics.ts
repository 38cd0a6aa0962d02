// Prometheus metrics (README "Metrics") through prom-client. The stages keep plain number counters
// on their hot paths (a prom-client call costs ~0.15 µs, too much per event); the registry reads
// them when /metrics is scraped, so every counter is "incremented" in one batch per scrape.
// Labels are bounded: filter reasons, status codes, fixed outcome names; never per line.
// Per-file series (lag, offset) exist only when perFileMetrics is on.
import { Counter, Gauge, Histogram, type Metric, Registry } from "prom-client";
import { registerProcessMetrics } from "./process-metrics.ts";
import type { HistogramSnapshot } from "../sink/histogram.ts";
import { COMMIT, VERSION } from "../version.ts";
import type { StagesView } from "./types.ts";

export const METRIC_PREFIX = "pipekit_collector_";
const P = METRIC_PREFIX;

/** Buckets for line timestamp → acknowledgement, seconds: from a flush interval to an outage. */
export const END_TO_END_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600];

/** What the metrics read from the running collector, on scrape. */
export interface MetricsView extends StagesView {
  logSuppressed(): number;
  perFileMetrics: boolean;
}

export interface Metrics {
  registry: Registry;
  contentType: string;
  text(): Promise<string>;
  /** One end-to-end latency sample (line timestamp to acknowledgement), seconds. */
  observeEndToEnd(seconds: number): void;
}

let defaults: Registry | null = null;
function processDefaults(): Registry {
  // Process-wide values: one registry, its metrics shared by every view.
  if (!defaults) {
    defaults = new Registry();
    registerBuildInfo(defaults);
    registerProcessMetrics(defaults, P);
  }
  return defaults;
}

/** Before the stages exist (opening the ring, first metadata sync): the process metrics only. */
export function processMetricsText(): Promise<string> {
  return processDefaults().metrics();
}

export function createMetrics(view: MetricsView): Metrics {
  const registry = new Registry();
  const m = stageMetrics(registry);
  registerEventMetrics(m, view);
  registerByteAndFileMetrics(m, view);
  registerRingMetrics(m, view);
  registerPrefixTableMetrics(m, view);
  registerSinkMetrics(m, view, registry);
  const endToEnd = new Histogram({
    name: P + "end_to_end_latency_seconds",
    help: "Line timestamp to acknowledgement by the messenger, sampled: first and last record of each ring read.",
    buckets: END_TO_END_BUCKETS,
    registers: [registry],
  });
  registerHealthMetrics(m, view);
  registerBuildInfo(registry);
  registerProcessMetrics(registry, P);
  if (view.perFileMetrics) registerPerFileMetrics(registry, view);
  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    observeEndToEnd: (s) => endToEnd.observe(s),
  };
}

/**
 * The `_build_info` convention: a gauge fixed at 1 whose labels say what is running, so that a
 * query can join any series with the version (`* on(pod) group_left(version) ..._build_info`).
 */
function registerBuildInfo(registry: Registry): void {
  const info = new Gauge({
    name: P + "build_info",
    help: "Always 1; the labels say which version and commit of the collector is running.",
    labelNames: ["version", "commit"],
    registers: [registry],
  });
  info.set({ version: VERSION, commit: COMMIT }, 1);
}

/** Metrics whose value lives in a stage, read on scrape. */
interface StageMetrics {
  /** Set on scrape; the stage's value only ever grows. */
  counter(name: string, help: string, get: () => number): void;
  labelledCounter(name: string, help: string, label: string, get: () => Record<string, number>): void;
  gauge(name: string, help: string, get: () => number): void;
}

function stageMetrics(registry: Registry): StageMetrics {
  return {
    counter: (name, help, get) =>
      void new Counter({
        name: P + name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(get());
        },
      }),
    labelledCounter: (name, help, label, get) =>
      void new Counter({
        name: P + name,
        help,
        labelNames: [label],
        registers: [registry],
        collect() {
          this.reset();
          for (const [value, n] of Object.entries(get())) this.inc({ [label]: value }, n);
        },
      }),
    gauge: (name, help, get) =>
      void new Gauge({
        name: P + name,
        help,
        registers: [registry],
        collect() {
          this.set(get());
        },
      }),
  };
}

/** The accounting terms (src/api/accounting.ts): read = filtered + skipped + in ring + (sent + dead-lettered − replayed). */
function registerEventMetrics({ counter, labelledCounter, gauge }: StageMetrics, view: MetricsView): void {
  counter("events_read_total", "Events read from log files: merged lines, plus malformed lines (which are skipped).", () => view.accounting().read);
  labelledCounter("events_filtered_total", "Events dropped by the chain, by reason.", "reason", () => view.router().eventsFiltered);
  labelledCounter("events_skipped_total", "Events read but not processed, by reason (malformed: matched no line format).", "reason", () => ({ malformed: view.accounting().skipped }));
  gauge("events_in_ring", "Events appended to the ring by this process and not acknowledged yet.", () => view.accounting().inRing);
  counter("events_appended_total", "Events appended to the ring by this process.", () => view.router().eventsAppended);
  counter("events_sent_total", "Events acknowledged by the messenger with a 2xx (including ones replayed from an earlier run).", () => view.accounting().sent);
  counter("events_dead_lettered_total", "Events the messenger refused on their own, written to the dead-letter file.", () => view.accounting().deadLettered);
  counter("events_replayed_total", "Acknowledged events (sent or dead-lettered) that an earlier run had appended to the ring.", () => view.accounting().replayed);
  counter("lines_truncated_total", "Lines cut at source.maxLineBytes.", () => view.source().counters.linesTruncated);
  counter("records_cut_total", "Records whose message was cut so that the JSON-escaped record fits in the ring.", () => view.router().recordsCut);
}

function registerByteAndFileMetrics({ counter, gauge }: StageMetrics, view: MetricsView): void {
  counter("bytes_read_total", "Bytes read from log files.", () => view.source().counters.bytesRead);
  counter("bytes_sent_total", "Request body bytes put on the wire (after compression), every attempt.", () => view.sender().bytesSentWire);
  counter("bytes_sent_uncompressed_total", "Request body bytes before compression, every attempt.", () => view.sender().bytesSentRaw);
  gauge("files_watched", "Log files open and followed.", () => view.source().filesWatched);
  counter("files_skipped_total", "Files of pods without the selector label, never read.", () => view.source().counters.filesSkipped);
  counter("files_rotated_total", "Files seen rotated away (read on to their end).", () => view.source().counters.filesRotated);
  counter("checkpoint_write_errors_total", "Checkpoint saves that failed (a full data dir disk, say): positions stay where they were saved last.", () => view.source().counters.checkpointWriteErrors);
  counter("watchdog_reopens_total", "Files whose size grew while reading stood still with nothing blocking it, reopened at their checkpoint (alert on any increase).", () => view.source().counters.watchdogReopens);
  gauge("deleted_held_bytes", "Disk space held by deleted log files the collector still has open (unread data).", () => view.source().counters.deletedHeldBytes);
  counter("files_given_up_total", "Deleted files closed unread because their held space exceeded source.maxDeletedHeldBytes.", () => view.source().counters.filesGivenUp ?? 0);
  counter("bytes_lost_total", "Unread bytes of given-up deleted files: log data lost (alert on any increase).", () => view.source().counters.bytesLost ?? 0);
}

function registerRingMetrics({ counter, gauge }: StageMetrics, view: MetricsView): void {
  gauge("ring_bytes", "Bytes of records in the ring not yet acknowledged.", () => view.ring().usedBytes);
  gauge("ring_records", "Records in the ring not yet acknowledged (replayed ones included).", () => view.ring().records);
  gauge("ring_capacity_bytes", "Capacity of the ring's data region.", () => view.ring().capacityBytes);
  gauge("ring_full", "1 while readers wait because the ring is full (backpressure).", () => (view.ring().full ? 1 : 0));
  counter("ring_recovery_skipped_records_total", "Damaged records skipped when the ring was opened at this start (never delivered).", () => view.ring().recoverySkippedRecords);
  counter("ring_recovery_cut_bytes_total", "Bytes of a torn tail cut when the ring was opened at this start.", () => view.ring().recoveryCutBytes);
  counter("ring_moved_aside_bytes_total", "Bytes moved aside at this start: a file that was no ring file (its records are not delivered), or a ring's two damaged headers (rebuilt from the records, which are delivered) (alert on any increase).", () => view.ring().recoveryMovedAsideBytes ?? 0);
  counter("ring_blocked_seconds_total", "Time readers spent waiting on a full ring.", () => view.ring().blockedMs / 1000);
}

function registerPrefixTableMetrics({ counter, gauge }: StageMetrics, view: MetricsView): void {
  gauge("prefix_table_prefixes", "Record prefixes held in the prefix table (each file's identifiers, stored once).", () => view.prefixTable().prefixes);
  counter("prefix_table_writes_total", "Writes of the prefix table (new prefixes are written together, at most one write per turn of the source).", () => view.prefixTable().writes);
  counter("prefix_table_write_errors_total", "Prefix table writes that failed (a full data dir disk, say): new containers' records are stored whole meanwhile, nothing is lost.", () => view.prefixTable().writeFailures);
  counter("prefix_table_write_seconds_total", "Time spent writing the prefix table (durably, on the main thread).", () => view.prefixTable().writeMs / 1000);
  counter("prefix_table_unknown_records_total", "Records in the ring at this start whose prefix the table did not hold (a damaged or lost table): dead-lettered, never sent (alert on any increase).", () => view.prefixTable().unknownAtOpen);
}

function registerSinkMetrics({ counter, labelledCounter, gauge }: StageMetrics, view: MetricsView, registry: Registry): void {
  labelledCounter("sink_requests_total", "Messenger requests by answer: HTTP status code, or timeout / connection.", "status", () => view.sender().requestsByStatus);
  counter("sink_retries_total", "Messenger requests repeated after a failure.", () => view.sender().retries);
  gauge("sink_in_flight_requests", "Messenger requests on the wire now.", () => view.sender().inFlight);
  gauge("sink_waiting_batches", "Batches waiting out a backoff or Retry-After.", () => view.sender().waiting);
  gauge("sink_last_success_timestamp_seconds", "Unix time of the last 2xx from the messenger (0 before the first).", () => (view.sender().lastSuccessAt ?? 0) / 1000);
  registry.registerMetric(
    snapshotHistogram(P + "sink_request_duration_seconds", "Messenger request latency, send to answer read.", () => view.sender().latency) as unknown as Metric,
  );
}

function registerHealthMetrics({ counter, gauge }: StageMetrics, view: MetricsView): void {
  gauge("pipeline_healthy", "1 when /status reports no reason for concern, 0 otherwise.", () => (view.health().healthy ? 1 : 0));
  gauge("live", "1 while /health answers 200.", () => (view.health().live ? 1 : 0));
  gauge("metadata_pods", "Pods known to the metadata cache.", () => view.metadata().podsKnown);
  gauge("metadata_available", "1 while the metadata provider reaches its source.", () => (view.metadata().failing ? 0 : 1));
  counter("log_lines_suppressed_total", "Own log lines dropped by rate limiting of repeated warnings.", () => view.logSuppressed());
}

/** Per-file series (a `path` label): only when asked for, since nodes may have thousands of files. */
function registerPerFileMetrics(registry: Registry, view: MetricsView): void {
  const perFile = (name: string, help: string, field: "lag" | "offset") =>
    new Gauge({
      name: P + name,
      help,
      labelNames: ["path"],
      registers: [registry],
      collect() {
        this.reset();
        for (const f of view.source().fileStatus()) this.set({ path: f.path }, f[field]);
      },
    });
  perFile("file_lag_bytes", "Per file: bytes not yet safe in the ring (size − checkpoint).", "lag");
  perFile("file_offset_bytes", "Per file: checkpoint offset.", "offset");
}

/** A histogram whose buckets are kept elsewhere (the sender's), exposed in Prometheus shape. */
function snapshotHistogram(name: string, help: string, get: () => HistogramSnapshot) {
  return {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    get: async () => {
      const s = get();
      const values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> = [];
      s.boundsSeconds.forEach((le, i) => values.push({ value: s.cumulativeCounts[i] ?? 0, labels: { le }, metricName: `${name}_bucket` }));
      values.push({ value: s.count, labels: { le: "+Inf" }, metricName: `${name}_bucket` });
      values.push({ value: s.sumSeconds, labels: {}, metricName: `${name}_sum` });
      values.push({ value: s.count, labels: {}, metricName: `${name}_count` });
      return { name, help, type: "histogram", values, aggregator: "sum" };
    },
    reset() {},
  };
}
