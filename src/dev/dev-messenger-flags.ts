// The dev messenger's command-line flags in one table: `dev-messenger` parses them
// (src/dev/dev-messenger-cli.ts) and `--help dev-messenger` lists them (src/cli/help.ts), so a flag
// cannot exist without its help line. Data only: the help must not load the messenger itself.
import type { MessengerFaults } from "./mock-messenger-faults.ts";

export const DEV_MESSENGER_DEFAULT_KEY = "dev-key";
export const DEV_MESSENGER_DEFAULT_PORT = 8080;

export interface DevMessengerFlag {
  /** The flag without its dashes. */
  name: string;
  /** Placeholder of its value (N a number, F a fraction, S text); none for a switch. */
  arg?: "N" | "F" | "S" | "H" | "K";
  help: string;
}

export interface FaultFlag extends DevMessengerFlag {
  /** The fault it sets (GET /control/faults shows it). */
  fault: keyof MessengerFaults;
  /** A switch's value for the fault (default true). */
  on?: MessengerFaults[keyof MessengerFaults];
}

export const SERVER_FLAGS: readonly DevMessengerFlag[] = [
  { name: "port", arg: "N", help: `port to listen on (default ${DEV_MESSENGER_DEFAULT_PORT}; 0: any free port)` },
  { name: "host", arg: "H", help: "address to listen on (default 127.0.0.1)" },
  { name: "api-key", arg: "K", help: `the key to accept (default: $PIPEKIT_API_KEY, else "${DEV_MESSENGER_DEFAULT_KEY}")` },
];

export const FAULT_FLAGS: readonly FaultFlag[] = [
  { name: "fail-rate", arg: "F", fault: "failRate", help: "refuse this fraction (0..1) of requests with --fail-status" },
  { name: "fail-next", arg: "N", fault: "failNext", help: "refuse exactly the next N requests with --fail-status" },
  { name: "fail-status", arg: "N", fault: "failStatus", help: "the status --fail-rate and --fail-next answer (default 503)" },
  { name: "force-status", arg: "N", fault: "forceStatus", help: "answer every request with status N (an outage: 503; a wrong URL: 404)" },
  { name: "latency-ms", arg: "N", fault: "latencyMs", help: "delay every answer by N ms" },
  { name: "latency-jitter-ms", arg: "N", fault: "latencyJitterMs", help: "plus a random extra delay of up to N ms" },
  { name: "reorder-window", arg: "N", fault: "reorderWindow", help: "hold answers until N requests wait, then answer newest first" },
  { name: "reorder-max-wait-ms", arg: "N", fault: "reorderMaxWaitMs", help: "... or until the oldest waited N ms" },
  { name: "hang-next", arg: "N", fault: "hangNext", help: "never answer the next N requests (the client must time out)" },
  { name: "hang-rate", arg: "F", fault: "hangRate", help: "never answer this fraction (0..1) of requests" },
  { name: "max-body-bytes", arg: "N", fault: "maxBodyBytes", help: "413 for request bodies over N bytes on the wire" },
  { name: "poison-marker", arg: "S", fault: "poisonMarker", help: "400 for bodies containing S (one record refused on its own)" },
  { name: "retry-after", arg: "N", fault: "retryAfterSeconds", help: "Retry-After: N seconds on 429, 503 and --fail-status answers" },
  { name: "retry-after-date", fault: "retryAfterFormat", on: "date", help: "write that Retry-After as an HTTP date" },
  { name: "reject-keys", fault: "rejectKeys", help: "401 for every key (a revoked key)" },
  { name: "garbage-body", fault: "garbageBody", help: "answers carry a body that is not JSON" },
  { name: "gzip-answers", fault: "gzipAnswers", help: "answers are gzip-encoded" },
  { name: "require-gzip", fault: "requireGzip", help: "415 unless the request body is gzip-encoded" },
];

function helpLines(flags: readonly DevMessengerFlag[]): string[] {
  return flags.map((f) => `  --${`${f.name}${f.arg ? ` ${f.arg}` : ""}`.padEnd(23)} ${f.help}`);
}

/** The options and fault flags as `--help dev-messenger` lists them. */
export function devMessengerFlagsHelp(): string {
  return [
    "Options:",
    ...helpLines(SERVER_FLAGS),
    "",
    "Fault flags (also at runtime: GET|POST|PATCH /control/faults with their JSON names):",
    ...helpLines(FAULT_FLAGS),
  ].join("\n");
}
