export const HELP = `pipekit-log-collector — ships Argo Workflows container logs to the Pipekit messenger

Usage:
  pipekit-log-collector run [--config FILE]      the collector (default command)
  pipekit-log-collector demo                     self-contained run: sample pods, embedded messenger
  pipekit-log-collector validate --config FILE   check a config, print the effective one (secrets masked)
  pipekit-log-collector dev-messenger [--port N] a local mock messenger for development
  pipekit-log-collector --version | --help [COMMAND]

Configuration: one YAML or JSON file (--config, or PIPEKIT_COLLECTOR_CONFIG); every key is optional.
Environment: PIPEKIT_API_KEY, PIPEKIT_MESSENGER_BASE_URI, NODE_NAME, NODE_IP, POD_UID.
Exit status: 0 done; 1 failed while running; 2 refused at start (bad config, data dir locked, port in use).
`;

export const COMMAND_HELP: Record<string, string> = {
  run: `pipekit-log-collector run [--config FILE]

Follows the container log files under source.root, tags each line with its pod's Pipekit
identifiers, buffers it in the ring file under dataDir and delivers it to the messenger.
SIGTERM/SIGINT: stop reading, deliver what is buffered (shutdownTimeoutMs), sync, exit 0.

Examples:
  PIPEKIT_API_KEY=... PIPEKIT_MESSENGER_BASE_URI=https://messenger.example \\
    NODE_NAME=$(hostname) pipekit-log-collector run --config /etc/pipekit-log-collector/config.yaml
  pipekit-log-collector --config ./local.yaml
`,
  validate: `pipekit-log-collector validate --config FILE

Validates the file with the environment applied and prints the effective configuration, every
default filled in and secrets masked. Exit 0 when valid, 2 with the key and the problem otherwise.

Example:
  pipekit-log-collector validate --config deploy/systemd/config.yaml
`,
  demo: `pipekit-log-collector demo [--lines N]

Writes a sample node (Argo workflow pods, a system pod, a pod missing a Pipekit label) into a
temporary directory, starts an embedded mock messenger, runs the collector until every expected
event is delivered, prints a summary and exits 0 (non-zero, saying what is missing, otherwise).
Needs nothing outside the package.
`,
  "dev-messenger": `pipekit-log-collector dev-messenger [--port N] [--api-key KEY] [fault flags]

Runs the mock messenger used by the tests and the demo: the real ingest endpoint, zod validation
of every record, key check, GET /stats, and fault injection. Stops on SIGINT/SIGTERM.
`,
};
