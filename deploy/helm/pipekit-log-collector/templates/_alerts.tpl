{{/*
The alerts of README.md "Verifying it works" (scripts/render-manifests.ts writes that table from
them). Every expression names metrics the collector serves (a test checks them against a live
/metrics), except the restarts alert, which reads kube-state-metrics.
*/}}
{{- define "plc.alertRules" -}}
{{- $pods := printf "namespace=%q, pod=~%q" .Release.Namespace (printf "%s-.*" (include "plc.fullname" .)) }}
rules:
  - alert: PipekitCollectorUnhealthy
    expr: pipekit_collector_pipeline_healthy == 0
    for: 10m
    annotations:
      summary: "any /status reason for 10 min: messenger outage, key or URL refused, ring full, metadata down, a stuck loop"
  - alert: PipekitCollectorNotDelivering
    expr: time() - pipekit_collector_sink_last_success_timestamp_seconds > 600 and pipekit_collector_events_in_ring > 0
    annotations:
      summary: "records waiting and nothing accepted by the messenger for 10 min"
  - alert: PipekitCollectorRingFilling
    expr: pipekit_collector_ring_bytes / pipekit_collector_ring_capacity_bytes > 0.8
    annotations:
      summary: "the ring is over 80 % full: an outage is about to pause reading"
  - alert: PipekitCollectorReadingPaused
    expr: pipekit_collector_ring_full == 1
    for: 5m
    annotations:
      summary: "reading waits for room in the ring: logs pile up on the node, and rotation may delete unread files"
  - alert: PipekitCollectorDeadLetters
    expr: increase(pipekit_collector_events_dead_lettered_total[1h]) > 0
    annotations:
      summary: "the messenger refused records; they are kept in dead-letter.jsonl in the data dir"
  - alert: PipekitCollectorDeletedFilesHeld
    expr: pipekit_collector_deleted_held_bytes > 5e8
    annotations:
      summary: "over 500 MB of disk held by deleted log files not read to their end: reading is behind rotation"
  - alert: PipekitCollectorDataLost
    expr: increase(pipekit_collector_bytes_lost_total[1h]) > 0
    annotations:
      summary: "deleted files given up at source.maxDeletedHeldBytes: their unread lines are lost"
  - alert: PipekitCollectorRingMovedAside
    expr: increase(pipekit_collector_ring_moved_aside_bytes_total[1h]) > 0
    annotations:
      summary: "a damaged ring file (or its headers) was moved aside at start: look at the log; records in a file that was no ring are not delivered"
  - alert: PipekitCollectorWatchdogReopens
    expr: increase(pipekit_collector_watchdog_reopens_total[1h]) > 0
    annotations:
      summary: "a file's reader stood still while the file grew and was reopened: self-healed, but a bug to report"
  - alert: PipekitCollectorHighLatency
    expr: histogram_quantile(0.99, rate(pipekit_collector_end_to_end_latency_seconds_bucket[10m])) > 60
    annotations:
      summary: "p99 from a line's timestamp to the messenger's acknowledgement above 60 s: logs reach Pipekit late"
  - alert: PipekitCollectorRestarting
    expr: increase(kube_pod_container_status_restarts_total{ {{- $pods -}} }[1h]) > 0
    annotations:
      summary: "the collector restarted (kube-state-metrics): liveness failed on a stuck loop, or a crash"
{{- end }}
