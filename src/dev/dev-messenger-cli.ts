// `pipekit-log-collector dev-messenger`: the mock messenger (src/dev/mock-messenger.ts) as a process
// for local development, until SIGINT/SIGTERM. Its flags come from one table
// (src/dev/dev-messenger-flags.ts), which `--help dev-messenger` prints.
import { parseArgs } from "node:util";
import { INGEST_PATH } from "../sink/wire.ts";
import {
  DEV_MESSENGER_DEFAULT_KEY,
  DEV_MESSENGER_DEFAULT_PORT,
  type DevMessengerFlag,
  FAULT_FLAGS,
  SERVER_FLAGS,
} from "./dev-messenger-flags.ts";
import { checkFaults, type MessengerFaults, type MockMessenger, startMockMessenger } from "./mock-messenger.ts";

type Values = Record<string, string | boolean | undefined>;

function parseOptions(argv: string[]): Values {
  // --help never gets here: the command line answers it (src/cli/main.ts).
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const f of [...SERVER_FLAGS, ...FAULT_FLAGS] as DevMessengerFlag[]) options[f.name] = { type: f.arg ? "string" : "boolean" };
  return parseArgs({ args: argv, strict: true, allowPositionals: false, options }).values;
}

function nonNegative(values: Values, flag: string): number | undefined {
  const v = values[flag];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a non-negative number (got "${String(v)}")`);
  return n;
}

/** The faults the flags ask for; throws with the flag's name for a bad value. */
export function faultsFromFlags(values: Values): MessengerFaults {
  const faults: Record<string, unknown> = {};
  for (const f of FAULT_FLAGS) {
    const v = values[f.name];
    if (v === undefined || v === false) continue;
    faults[f.fault] = f.arg === "S" ? v : f.arg ? nonNegative(values, f.name) : (f.on ?? true);
  }
  const problem = checkFaults(faults);
  if (problem) throw new Error(problem);
  return faults as MessengerFaults;
}

/** Runs the mock messenger until SIGINT/SIGTERM; returns the exit status (2: bad flags). */
export async function runDevMessengerCli(argv: string[]): Promise<number> {
  let values: Values;
  let faults: MessengerFaults;
  let port: number;
  try {
    values = parseOptions(argv);
    port = nonNegative(values, "port") ?? DEV_MESSENGER_DEFAULT_PORT;
    if (!Number.isInteger(port) || port > 65535) throw new Error("--port must be a port number (0 = any free port)");
    faults = faultsFromFlags(values);
  } catch (err) {
    process.stderr.write(`dev-messenger: ${(err as Error).message} (pipekit-log-collector --help dev-messenger lists the flags)\n`);
    return 2;
  }
  const apiKey = (values["api-key"] as string | undefined) ?? process.env.PIPEKIT_API_KEY ?? DEV_MESSENGER_DEFAULT_KEY;
  let messenger: MockMessenger;
  try {
    messenger = await startMockMessenger({ port, hostname: (values.host as string | undefined) ?? "127.0.0.1", apiKey, faults, retainRecords: false });
  } catch (err) {
    process.stderr.write(`dev-messenger: cannot listen: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`dev messenger listening on ${messenger.url} (POST ${INGEST_PATH}, GET /stats, /control/faults)\n`);
  await new Promise<void>((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
  });
  const s = messenger.stats();
  await messenger.stop();
  process.stdout.write(`dev messenger stopped: ${s.requests} requests, ${s.eventsReceived} events (${s.distinctEvents} distinct)\n`);
  return 0;
}
