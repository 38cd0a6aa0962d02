// Command dispatch (README "Command line"). Every command returns its exit status: 0 done,
// 1 failed at run time, 2 refused before reading or sending anything (bad config, locked data
// dir, port in use).
import { UsageError } from "./errors.ts";
import { parseArgs } from "node:util";
import { VERSION, COMMIT } from "../version.ts";
import { runDemo } from "./demo.ts";
import { runCommand } from "./run.ts";
import { validateCommand } from "./validate.ts";
import { HELP, COMMAND_HELP, HELP_TOPICS } from "./help.ts";

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--version" || first === "-v" || first === "version") {
    process.stdout.write(`pipekit-log-collector ${VERSION} (${COMMIT})\n`);
    return 0;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    const topic = rest[0];
    if (topic === undefined) return printHelp(HELP);
    return COMMAND_HELP[topic] ? printHelp(COMMAND_HELP[topic]) : unknown(`no help topic "${topic}"`);
  }
  // `run` is the default command: `pipekit-log-collector --config F` runs the collector.
  const command = first === undefined || first.startsWith("-") ? "run" : first;
  const args = command === first ? rest : argv;
  if (args.includes("--help") || args.includes("-h")) {
    return COMMAND_HELP[command] ? printHelp(COMMAND_HELP[command]) : unknown(`unknown command "${command}"`);
  }
  switch (command) {
    case "run":
      return runCommand(configFlag(args, "run"));
    case "validate":
      return validateCommand(configFlag(args, "validate"));
    case "demo":
      return runDemo(args);
    case "top":
      return (await import("./top.ts")).runTop(args);
    case "status":
      return (await import("./top.ts")).runStatus(args);
    case "dev-messenger":
      return (await import("../dev/dev-messenger-cli.ts")).runDevMessengerCli(args);
    default:
      return unknown(`unknown command "${command}"`);
  }
}

function printHelp(text: string): number {
  process.stdout.write(text);
  return 0;
}

/** A command or help topic that does not exist: exit 2, the topics and the general help on stderr. */
function unknown(what: string): number {
  process.stderr.write(`pipekit-log-collector: ${what} (commands: ${HELP_TOPICS.join(", ")})\n\n${HELP}`);
  return 2;
}

function configFlag(args: string[], command: string): string | undefined {
  try {
    const { values } = parseArgs({ args, options: { config: { type: "string", short: "c" } }, strict: true });
    return values.config;
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}
