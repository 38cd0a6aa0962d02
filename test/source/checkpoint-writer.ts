// Child process for the strace test: saves one checkpoint file in the given data dir.
import { CheckpointStore } from "../../src/source/checkpoints.ts";

const dir = process.argv[2] as string;
new CheckpointStore(dir).save({ files: [{ dev: 1, ino: 2, fpLen: 3, fpHash: 4, path: "/var/log/pods/a_b_c/main/0.log", offset: 5 }], savedAt: 1 });
