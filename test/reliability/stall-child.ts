// The collector as `run` starts it, plus one test hook: SIGUSR2 makes every open file's reader believe
// it is at its end (Source.simulateStall — the "logs silently stop until restart" failure of other
// tailers). Nothing else is faked: detection and recovery are the watchdog's, end to end.
// Prints "stalled <n>" on stdout for each SIGUSR2.
import { startCollector } from "../../src/collector.ts";
import { loadConfig } from "../../src/config/load.ts";

const config = loadConfig(process.argv[2]);
const collector = await startCollector(config);
process.on("SIGUSR2", () => {
  let n = 0;
  for (const f of collector.source.fileStatus()) if (collector.source.simulateStall(f.path as string)) n++;
  process.stdout.write(`stalled ${n}\n`);
});
process.on("SIGTERM", () => {
  collector.stop().then(() => process.exit(0), () => process.exit(1));
});
