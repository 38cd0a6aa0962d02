// Command dispatch (README "Command line"). Every command returns its exit status: 0 done,
// 1 failed at run time, 2 refused before reading or sending anything (bad config, locked data
// dir, port in use).
import { parseArgs } from "node:util";
import { VERSION, COMMIT } from "../version.ts";
import { runDemo } from "./demo.ts";
import { runCommand } from "./run.ts";
import { validateCommand } from "./validate.ts";
import { HELP, COMMAND_HELP } from "./help.ts";

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--version" || first === "-v" || first === "version") {
    process.stdout.write(`pipekit-log-collector ${VERSION} (${COMMIT})\n`);
    return 0;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    const topic = rest[0];
    process.stdout.write(topic && COMMAND_HELP[topic] ? COMMAND_HELP[topic] : HELP);
    return 0;
  }
  // `run` is the default command: `pipekit-log-collector --config F` runs the collector.
  const command = first === undefined || first.startsWith("-") ? "run" : first;
  const args = command === first ? rest : argv;
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(COMMAND_HELP[command] ?? HELP);
    return 0;
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
    case "dev-messenger": {
      const { runDevMessengerCli } = await import("../dev/mock-messenger.ts");
      return runDevMessengerCli(args);
    }
    default:
      process.stderr.write(`pipekit-log-collector: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

function configFlag(args: string[], command: string): string | undefined {
  try {
    const { values } = parseArgs({ args, options: { config: { type: "string", short: "c" } }, strict: true });
    return values.config;
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}
