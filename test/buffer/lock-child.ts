// Child process for lock tests: takes the data dir lock, says so, and holds it until killed.
// A refused lock exits 2 with the error on stderr, as the CLI does.
import { DataDirLockedError, lockDataDir } from "../../src/buffer/lock.ts";

const dir = process.argv[2]!;
try {
  lockDataDir(dir);
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(e instanceof DataDirLockedError ? 2 : 1);
}
process.stdout.write("locked\n");
setInterval(() => {}, 1 << 30);
