// The collector as `run` starts it, reading through a file system with one fault: SIGUSR2 makes every
// open file's reader believe it is at its end (the "logs silently stop until restart" failure of
// other tailers). Nothing else is faked: detection and recovery are the watchdog's, end to end.
// Prints "stalled <n>" on stdout for each SIGUSR2.
import { startCollector } from "../../src/collector.ts";
import { loadConfig } from "../../src/config/load.ts";
import { FaultyFs } from "../support/faulty-fs.ts";

const config = loadConfig(process.argv[2]);
const fs = new FaultyFs();
const collector = await startCollector(config, undefined, { platform: { logs: fs } });
process.on("SIGUSR2", () => {
  let n = 0;
  for (const f of collector.source.fileStatus()) if (fs.stall(f.path) > 0) n++;
  process.stdout.write(`stalled ${n}\n`);
});
process.on("SIGTERM", () => {
  collector.stop().then(() => process.exit(0), () => process.exit(1));
});
