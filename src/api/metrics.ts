// Prometheus metrics (SPEC §6) through prom-client. The stages keep plain number counters on
// their hot paths; the registry reads them only when /metrics is scraped.
import { Counter, Gauge, Registry } from "prom-client";
import type { Collector } from "../collector.ts";

const P = "pipekit_collector_";

export interface Metrics {
  registry: Registry;
  contentType: string;
  text(): Promise<string>;
}

export function createMetrics(collector: Collector): Metrics {
  const registry = new Registry();
  const { router, source, ring } = collector;

  // A counter whose value lives in a stage: set on scrape (values only ever grow).
  const mirroredCounter = (name: string, help: string, get: () => number) =>
    new Counter({
      name: P + name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(get());
      },
    });
  const gauge = (name: string, help: string, get: () => number) =>
    new Gauge({
      name: P + name,
      help,
      registers: [registry],
      collect() {
        this.set(get());
      },
    });

  mirroredCounter("events_read_total", "Log lines read and merged (one event per merged line).", () => router.counters.eventsRead);
  new Counter({
    name: P + "events_filtered_total",
    help: "Events dropped by the chain, by reason.",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(router.counters.eventsFiltered)) this.inc({ reason }, n);
    },
  });
  mirroredCounter("events_appended_total", "Events written to the ring.", () => router.counters.eventsAppended);
  mirroredCounter("bytes_read_total", "Bytes read from log files.", () => source.counters.bytesRead);
  mirroredCounter("lines_malformed_total", "Lines that matched no format, skipped.", () => source.counters.linesMalformed);
  mirroredCounter("lines_truncated_total", "Lines cut at source.maxLineBytes.", () => source.counters.linesTruncated);
  mirroredCounter("files_skipped_total", "Files of pods without the selector label, never read.", () => source.counters.filesSkipped);
  gauge("files_watched", "Log files open and followed.", () => source.filesWatched);
  gauge("ring_bytes", "Bytes of records in the ring.", () => ring.stats().usedBytes);
  gauge("ring_records", "Records in the ring not yet acknowledged.", () => ring.stats().records);
  gauge("ring_capacity_bytes", "Capacity of the ring file.", () => ring.stats().capacityBytes);

  return { registry, contentType: registry.contentType, text: () => registry.metrics() };
}
