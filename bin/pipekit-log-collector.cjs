#!/usr/bin/env node
// Launcher for `npx pipekit-log-collector` and `bunx pipekit-log-collector`.
// The collector is TypeScript for Bun (Bun.mmap, bun:ffi), so under Node this file only finds a
// Bun binary — the `bun` runtime dependency first, so that a machine without Bun works — and runs
// src/main.ts with it, passing arguments, stdio, signals and the exit status through.
// CommonJS and no dependencies: it must start under any Node >= 18 before anything is installed.
"use strict";

const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const MAIN = path.join(__dirname, "..", "src", "main.ts");

/** A real executable, not the placeholder the `bun` package ships before its postinstall runs. */
function isRealBinary(file) {
  try {
    const st = fs.statSync(file);
    return st.isFile() && st.size > 1024 * 1024;
  } catch {
    return false;
  }
}

function resolveFrom(request, base) {
  try {
    return require.resolve(request, { paths: [base] });
  } catch {
    return null;
  }
}

/** The names of @oven's per-platform packages that can run here, best first. */
function platformPackages() {
  const arch = process.arch === "arm64" ? "aarch64" : process.arch;
  const os = process.platform === "win32" ? "windows" : process.platform;
  let musl = false;
  if (os === "linux") {
    const report = process.report && typeof process.report.getReport === "function" ? process.report.getReport() : null;
    musl = !(report && report.header && report.header.glibcVersionRuntime);
  }
  const base = `bun-${os}-${arch}${musl ? "-musl" : ""}`;
  return arch === "x64" ? [base, `${base}-baseline`] : [base];
}

/** Candidate Bun binaries, best first, produced lazily: the common case stops at the first. */
function* candidates() {
  if (process.env.PIPEKIT_BUN) yield process.env.PIPEKIT_BUN;
  if (process.versions.bun) yield process.execPath;
  const bunPkg = resolveFrom("bun/package.json", __dirname);
  if (!bunPkg) return;
  const dir = path.dirname(bunPkg);
  yield path.join(dir, "bin", "bun.exe"); // the package's name for it on every platform
  // When install scripts were skipped, the binary is still in the optional platform package.
  for (const name of platformPackages()) {
    const pkg = resolveFrom(`@oven/${name}/package.json`, dir);
    if (pkg) yield path.join(path.dirname(pkg), "bin", process.platform === "win32" ? "bun.exe" : "bun");
  }
}

function findBun() {
  for (const file of candidates()) if (isRealBinary(file)) return file;
  // Last resort: a Bun on PATH.
  const probe = spawnSync("bun", ["--version"], { stdio: "ignore" });
  if (probe.status === 0) return "bun";
  return null;
}

const bun = findBun();
if (!bun) {
  process.stderr.write(
    "pipekit-log-collector: cannot find a Bun runtime. The `bun` package (a dependency) should provide one;\n" +
      "reinstall without --ignore-scripts, set PIPEKIT_BUN=/path/to/bun, or use the standalone executable.\n",
  );
  process.exit(127);
}

const child = spawn(bun, [MAIN, ...process.argv.slice(2)], { stdio: "inherit" });
const forwarded = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];
for (const sig of forwarded) {
  process.on(sig, () => {
    if (child.exitCode === null) child.kill(sig);
  });
}
child.on("error", (err) => {
  process.stderr.write(`pipekit-log-collector: cannot start ${bun}: ${err.message}\n`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so that callers see what the collector saw.
    for (const sig of forwarded) process.removeAllListeners(sig);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 1 : code);
});
