// npm prepack/postpack: records the git commit in src/build-commit.txt inside the published
// tarball, so `npx pipekit-log-collector --version` names the commit it was packed from.
// (Compiled executables get it through --define instead; see scripts/build.ts.)
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";

const file = new URL("../src/build-commit.txt", import.meta.url);
if (process.argv[2] === "clean") {
  rmSync(file, { force: true });
} else {
  let commit = process.env.PIPEKIT_BUILD_COMMIT ?? "";
  if (!commit) {
    try {
      commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { encoding: "utf8" }).trim();
      const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { encoding: "utf8" }).trim();
      if (dirty) commit += "-dirty";
    } catch {
      commit = "unknown";
    }
  }
  writeFileSync(file, commit + "\n");
}
