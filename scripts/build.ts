// Builds the self-contained executables with `bun build --compile` (SPEC §7).
//
//   bun scripts/build.ts                 # only dist/pipekit-log-collector, for this machine (npm run build)
//   bun scripts/build.ts --all           # the five release variants (npm run build:all)
//   bun scripts/build.ts --target linux-arm64 [--target ...] [--outdir DIR]
//
// dist/pipekit-log-collector is the host build; each release variant is
// dist/pipekit-log-collector-<variant>. Each is ~100 MB, so only --all builds the variants. Cross-compiling fetches that target's Bun runtime from the
// npm registry (@oven/bun-<target>) once, into Bun's install cache. The git commit is baked in with
// --define BUILD_COMMIT (src/version.ts); set PIPEKIT_BUILD_COMMIT where there is no .git (Docker).
import { mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const NAME = "pipekit-log-collector";

/** Release variants: name → Bun's compile target. */
export const VARIANTS: Record<string, string> = {
  "linux-x64": "bun-linux-x64",
  "linux-x64-baseline": "bun-linux-x64-baseline", // CPUs without AVX2 (older Xeons, some VMs)
  "linux-arm64": "bun-linux-arm64",
  "linux-x64-musl": "bun-linux-x64-musl", // Alpine and other musl hosts
  "linux-arm64-musl": "bun-linux-arm64-musl",
};

export function gitCommit(): string {
  const fromEnv = process.env.PIPEKIT_BUILD_COMMIT;
  if (fromEnv) return fromEnv;
  const rev = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT, stderr: "ignore" });
  if (rev.exitCode !== 0) return "unknown";
  const sha = rev.stdout.toString().trim();
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, stderr: "ignore" });
  return dirty.exitCode === 0 && dirty.stdout.toString().trim() !== "" ? `${sha}-dirty` : sha;
}

export interface BuildResult {
  outfile: string;
  target: string | null;
  bytes: number;
  seconds: number;
}

/** One `bun build --compile`; target null = the host. Throws with bun's output on failure. */
export function compile(opts: { outfile: string; target: string | null; commit: string; entry?: string }): BuildResult {
  const entry = opts.entry ?? join(ROOT, "src", "main.ts");
  const args = [
    process.execPath,
    "build",
    entry,
    "--compile",
    "--minify",
    // Embedded in the executable, so that stack traces name TypeScript files and lines.
    "--sourcemap",
    `--define`,
    `BUILD_COMMIT=${JSON.stringify(opts.commit)}`,
    "--outfile",
    opts.outfile,
  ];
  if (opts.target) args.push(`--target=${opts.target}`);
  const started = performance.now();
  const run = Bun.spawnSync(args, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const seconds = (performance.now() - started) / 1000;
  if (run.exitCode !== 0) {
    throw new Error(
      `bun build --compile${opts.target ? ` --target=${opts.target}` : ""} failed (exit ${run.exitCode}):\n` +
        run.stdout.toString() +
        run.stderr.toString(),
    );
  }
  return { outfile: opts.outfile, target: opts.target, bytes: statSync(opts.outfile).size, seconds };
}

export function parseArgs(argv: string[]): { host: boolean; variants: string[]; outdir: string } {
  let host = true;
  let variants: string[] = [];
  let explicit = false;
  let outdir = join(ROOT, "dist");
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--host") {
      // The default; kept so that older invocations keep working.
    } else if (a === "--all") {
      variants = Object.keys(VARIANTS);
      host = false;
    } else if (a === "--target") {
      const v = argv[++i];
      if (!v || !(v in VARIANTS)) {
        throw new Error(`--target needs one of: ${Object.keys(VARIANTS).join(", ")} (got ${v ?? "nothing"})`);
      }
      if (!explicit) {
        variants = [];
        host = false;
        explicit = true;
      }
      variants.push(v);
    } else if (a === "--outdir") {
      const d = argv[++i];
      if (!d) throw new Error("--outdir needs a directory");
      outdir = resolve(d);
    } else {
      throw new Error(`unknown argument ${a}; usage: bun scripts/build.ts [--all | --target VARIANT...] [--outdir DIR]`);
    }
  }
  return { host, variants, outdir };
}

if (import.meta.main) {
  try {
    const { host, variants, outdir } = parseArgs(process.argv.slice(2));
    mkdirSync(outdir, { recursive: true });
    const commit = gitCommit();
    const jobs: Array<{ outfile: string; target: string | null }> = [];
    if (host) jobs.push({ outfile: join(outdir, NAME), target: null });
    for (const v of variants) jobs.push({ outfile: join(outdir, `${NAME}-${v}`), target: VARIANTS[v]! });
    for (const job of jobs) {
      const r = compile({ ...job, commit });
      const mb = (r.bytes / 1e6).toFixed(1);
      console.log(`${r.outfile}  ${mb} MB  ${r.seconds.toFixed(1)} s  (${r.target ?? "host"}, commit ${commit})`);
    }
  } catch (err) {
    console.error(`build: ${(err as Error).message}`);
    process.exit(1);
  }
}
