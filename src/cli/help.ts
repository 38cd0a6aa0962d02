// Usage text: the general help and one page per command (README "Command line").
import { DEV_MESSENGER_DEFAULT_KEY, devMessengerFlagsHelp } from "../dev/dev-messenger-flags.ts";

export const HELP = `pipekit-log-collector — ships Argo Workflows container logs to the Pipekit messenger

Usage:
  pipekit-log-collector run [--config FILE]      the collector (default command)
  pipekit-log-collector demo [--lines N]         self-contained run: sample pods, embedded messenger
  pipekit-log-collector validate --config FILE   check a config, print the effective one (secrets masked)
  pipekit-log-collector top [--url URL]          live view of a running collector (its local API)
  pipekit-log-collector status [--url URL]       one snapshot of that view (--json: the /status JSON)
  pipekit-log-collector dev-messenger [--port N] a local mock messenger for development
  pipekit-log-collector --version | --help [COMMAND]

Configuration: one YAML or JSON file (--config, or PIPEKIT_COLLECTOR_CONFIG); every key is optional.
Environment: PIPEKIT_API_KEY, PIPEKIT_MESSENGER_BASE_URI, NODE_NAME, NODE_IP, POD_UID.
Local API (api.address, default 127.0.0.1:8686): /health /ready /status /metrics.
Exit status: 0 done; 1 failed while running; 2 refused at start (bad config, data dir locked, port in use).

Examples:
  pipekit-log-collector demo
  pipekit-log-collector validate --config /etc/pipekit-log-collector/config.yaml
  pipekit-log-collector run --config /etc/pipekit-log-collector/config.yaml
  pipekit-log-collector --help run
`;

export const COMMAND_HELP: Record<string, string> = {
  run: `pipekit-log-collector run [--config FILE]

Follows the container log files under source.root, tags each line with its pod's Pipekit
identifiers, buffers it in the ring file under dataDir and delivers it to the messenger.

Options:
  -c, --config FILE   YAML or JSON config (default: $PIPEKIT_COLLECTOR_CONFIG, else built-in defaults)

Local API on api.address (default 127.0.0.1:8686):
  /health   liveness: 200 while the loops are alive (a messenger outage or a full ring never fails it)
  /ready    readiness: 200 once the ring is open and the first scan is done
  /status   JSON: pipeline health and reasons, files, ring, sink, metadata, recent errors
  /metrics  Prometheus text (pipekit_collector_*)

Signals:
  SIGTERM, SIGINT  stop reading, deliver what is buffered within shutdownTimeoutMs, sync, exit 0
  SIGHUP           re-read the config and the API key file; log.level, health thresholds,
                   messenger settings and a static metadata.podsFile apply at once; the log says
                   which other changes need a restart

Logs: JSON lines on stderr (log.level); repeated warnings are rate-limited; secrets are never written.

Examples:
  PIPEKIT_API_KEY=... PIPEKIT_MESSENGER_BASE_URI=https://messenger.example \\
    NODE_NAME=$(hostname) pipekit-log-collector run --config /etc/pipekit-log-collector/config.yaml
  pipekit-log-collector --config ./local.yaml        # run is the default command
  kill -HUP $(pidof pipekit-log-collector)           # after editing the config or rotating the key
  curl -s 127.0.0.1:8686/status | jq .pipeline
`,
  validate: `pipekit-log-collector validate --config FILE

Makes every check run makes before it starts, with the environment applied (NODE_NAME, the key
file, the pods file, kubeconfig and CA files, the data dir's parent, a ring that holds the largest
record), and prints the effective configuration, every default filled in and secrets masked.
Exit 0 when run would start, 2 with run's own message otherwise: every problem, naming its key.

Options:
  -c, --config FILE   the config to check (default: $PIPEKIT_COLLECTOR_CONFIG)

Examples:
  pipekit-log-collector validate --config /etc/pipekit-log-collector/config.yaml   # on the node, before a restart
  kubectl -n pipekit-log-collector exec ds/pipekit-log-collector -- pipekit-log-collector validate -c /etc/pipekit-log-collector/config.yaml
  PIPEKIT_MESSENGER_BASE_URI=https://messenger.example pipekit-log-collector validate -c ./local.yaml
`,
  demo: `pipekit-log-collector demo [--lines N] [--keep]

Writes a sample node (Argo workflow pods, a system pod, a pod missing a Pipekit label) into a
temporary directory, starts an embedded mock messenger, runs the collector until every expected
event is delivered, prints a summary and exits 0 (non-zero, saying what is missing, otherwise).
Needs nothing outside the package.

Options:
  --lines N   lines per container written at start (default 300)
  --keep      keep the temporary directory (sample files, ring, checkpoints) for a look afterwards

Examples:
  pipekit-log-collector demo
  pipekit-log-collector demo --lines 5000 --keep
`,
  top: `pipekit-log-collector top [--url URL]

A live view of a running collector, read from its local API (/status and /metrics) every second:
health and its reasons, events per second in and out, the ring's fill, the messenger (requests in
flight, batches waiting, last success, last error), the metadata provider, the process, and the
files with the most lag. q or Ctrl-C quits. Exits 1 when nothing answers at the URL.

Options:
  -u, --url URL   the collector's API (default http://127.0.0.1:8686, the default api.address)

Examples:
  pipekit-log-collector top
  kubectl -n pipekit-log-collector exec -it ds/pipekit-log-collector -- pipekit-log-collector top
`,
  status: `pipekit-log-collector status [--url URL] [--json]

One reading of what top shows, printed once (rates need two readings, so they show as –).
Exits 1 when nothing answers at the URL.

Options:
  -u, --url URL   the collector's API (default http://127.0.0.1:8686)
  --json          print the /status JSON, indented, instead

Examples:
  pipekit-log-collector status
  pipekit-log-collector status --json | jq .sink
`,
  "dev-messenger": `pipekit-log-collector dev-messenger [--port N] [--api-key KEY] [fault flags]

Runs the mock messenger used by the tests and the demo: the real ingest endpoint, zod validation
of every record, key check, GET /stats, and fault injection (flags at start, or at runtime through
GET|POST|PATCH /control/faults). It accepts one key: --api-key, else $PIPEKIT_API_KEY, else
"${DEV_MESSENGER_DEFAULT_KEY}". Stops on SIGINT/SIGTERM.

${devMessengerFlagsHelp()}

Runtime control: GET /stats, GET|POST|PATCH /control/faults (JSON), POST /control/api-key
{"apiKey": "..."}, POST /control/reset.

Examples:
  pipekit-log-collector dev-messenger --port 8080      # accepts the key "${DEV_MESSENGER_DEFAULT_KEY}"
  PIPEKIT_API_KEY=${DEV_MESSENGER_DEFAULT_KEY} PIPEKIT_MESSENGER_BASE_URI=http://127.0.0.1:8080 pipekit-log-collector run --config ./local.yaml
  pipekit-log-collector dev-messenger --port 8080 --fail-rate 0.2 --latency-ms 300
  curl -s -X PATCH localhost:8080/control/faults -d '{"forceStatus":503}'   # an outage
  curl -s -X POST localhost:8080/control/faults -d '{}'                      # over
  curl -s localhost:8080/stats
`,
};

/** Help topics: the commands with their own usage. */
export const HELP_TOPICS = Object.keys(COMMAND_HELP);
