#!/usr/bin/env bun
// Entry point: `bun src/main.ts <command>` behaves exactly like the compiled executable.
import { main } from "./cli/main.ts";
import { reportStartError } from "./cli/errors.ts";

let code: number;
try {
  code = await main(process.argv.slice(2));
} catch (err) {
  code = reportStartError(err);
}
process.exit(code);
