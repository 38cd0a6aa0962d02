// Package version and the commit it was built from: compiled executables get BUILD_COMMIT through
// --define (scripts/build.ts); a packed npm tarball carries src/build-commit.txt (npm prepack);
// a plain checkout says "dev".
import { readFileSync } from "node:fs";
import pkg from "../package.json" with { type: "json" };

declare const BUILD_COMMIT: string | undefined;

function packedCommit(): string | null {
  try {
    return readFileSync(new URL("./build-commit.txt", import.meta.url), "utf8").trim() || null;
  } catch {
    return null;
  }
}

export const VERSION: string = pkg.version;
export const COMMIT: string = typeof BUILD_COMMIT === "string" ? BUILD_COMMIT : (packedCommit() ?? "dev");
