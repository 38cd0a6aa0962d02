// The compiled executable (scripts/build.ts, host target only: the cross targets take the same
// path with another --target) and the bin launcher that npx/bunx run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import lock from "../../package-lock.json" with { type: "json" };
import pkg from "../../package.json" with { type: "json" };
import { compile, gitCommit, parseArgs, VARIANTS } from "../../scripts/build.ts";

const ROOT = join(import.meta.dir, "..", "..");
const COMMIT = "0123456789ab";
let dir: string;
let exe: string;

function run(cmd: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}) {
  const r = Bun.spawnSync(cmd, {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 60_000,
  });
  return { code: r.exitCode, signal: r.signalCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "plc-exe-"));
  // The script's own entry point, as `npm run build` runs it.
  const r = run([process.execPath, "scripts/build.ts", "--host", "--outdir", dir], { env: { PIPEKIT_BUILD_COMMIT: COMMIT } });
  if (r.code !== 0) throw new Error(`build failed: ${r.err}${r.out}`);
  console.log(r.out.trim()); // size and build time, for the record
  exe = join(dir, "pipekit-log-collector");
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("compiled executable", () => {
  test("is one self-contained file", () => {
    const st = statSync(exe);
    expect(st.mode & 0o111).not.toBe(0);
    expect(st.size).toBeGreaterThan(10e6); // the Bun runtime is inside
  });

  test("--version prints the package version and the baked-in commit", () => {
    const r = run([exe, "--version"]);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(`pipekit-log-collector ${pkg.version} (${COMMIT})`);
  });

  test("the commit comes from git unless the environment gives one", () => {
    const head = run(["git", "rev-parse", "--short=12", "HEAD"]).out.trim();
    const saved = process.env.PIPEKIT_BUILD_COMMIT;
    delete process.env.PIPEKIT_BUILD_COMMIT;
    try {
      expect(gitCommit()).toMatch(new RegExp(`^${head}(-dirty)?$`));
    } finally {
      if (saved !== undefined) process.env.PIPEKIT_BUILD_COMMIT = saved;
    }
  });

  test("--help names the commands", () => {
    const r = run([exe, "--help"]);
    expect(r.code).toBe(0);
    for (const cmd of ["run", "demo", "validate"]) expect(r.out + r.err).toContain(cmd);
  });

  test("a bad config exits 2 with a message naming the key", () => {
    const cfg = join(dir, "bad.yaml");
    writeFileSync(cfg, "buffer:\n  maxBytse: 1MB\n");
    const r = run([exe, "validate", "--config", cfg]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("maxBytse");
  });

  test("the demo runs to the end by itself", () => {
    const r = run([exe, "demo"], { timeoutMs: 90_000 });
    expect(r.signal ?? null).toBeNull();
    expect(r.code).toBe(0);
    expect(r.out + r.err).toContain("demo OK");
    // Why the expected total grows mid-run, and one record as the messenger received it.
    const grew = /(\d+) more events expected, (\d+) more to be filtered/.exec(r.out);
    expect(Number(grew?.[1])).toBeGreaterThan(0);
    const sample = /one record as the messenger received it .*:\n((?: {2}.*\n)+)/.exec(r.out);
    const record = JSON.parse(sample![1]!) as Record<string, string>;
    expect(Object.keys(record)).toEqual(expect.arrayContaining(["orgUUID", "runUUID", "pipeUUID", "podName", "containerName", "timestamp", "message"]));
    expect(record.message).toContain(`${record.podName}/${record.containerName} line`);
  }, 100_000);

  test("the end-to-end suite passes against it (PIPEKIT_COLLECTOR_BIN)", () => {
    const r = run([process.execPath, "test", "test/e2e"], { env: { PIPEKIT_COLLECTOR_BIN: exe }, timeoutMs: 150_000 });
    const report = r.out + r.err;
    if (r.code !== 0) console.error(report);
    expect(report).toMatch(/\b[1-9]\d* pass\b/);
    expect(report).toMatch(/\b0 fail\b/);
    expect(r.code).toBe(0);
  }, 160_000);

  test("stack traces name the TypeScript source (minified, with the sourcemap)", () => {
    const src = join(dir, "throws.ts");
    writeFileSync(src, 'const unused = 1;\nfunction explode(): never {\n  throw new Error("boom");\n}\nexplode();\n');
    const out = join(dir, "throws");
    const built = compile({ outfile: out, target: null, commit: COMMIT, entry: src });
    expect(built.bytes).toBeGreaterThan(0);
    const r = run([out]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("boom");
    expect(r.err).toMatch(/throws\.ts:3/);
  });
});

describe("build script", () => {
  test("release variants: x64 baseline (no AVX2), arm64 and musl", () => {
    expect(VARIANTS).toMatchObject({
      "linux-x64-baseline": "bun-linux-x64-baseline",
      "linux-arm64": "bun-linux-arm64",
      "linux-x64-musl": "bun-linux-x64-musl",
    });
  });

  test("npm run build makes the host executable only; build:all the five release variants", () => {
    expect(pkg.scripts.build).toBe("bun scripts/build.ts");
    expect(pkg.scripts["build:all"]).toBe("bun scripts/build.ts --all");
    const dist = join(ROOT, "dist");
    expect(parseArgs([])).toEqual({ host: true, variants: [], outdir: dist });
    expect(parseArgs(["--all"])).toEqual({ host: false, variants: Object.keys(VARIANTS), outdir: dist });
    expect(Object.keys(VARIANTS)).toHaveLength(5);
    expect(parseArgs(["--target", "linux-arm64", "--outdir", "/tmp/x"])).toEqual({ host: false, variants: ["linux-arm64"], outdir: "/tmp/x" });
  });

  test("refuses an unknown target with the list of known ones", () => {
    const r = run([process.execPath, "scripts/build.ts", "--target", "windows-x64", "--outdir", dir]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("linux-x64-baseline");
  });

  test("no native addons among the runtime dependencies", () => {
    const packages = (lock as { packages: Record<string, { dev?: boolean; hasInstallScript?: boolean; gypfile?: boolean }> }).packages;
    const runtime = Object.entries(packages).filter(([path, p]) => path.startsWith("node_modules/") && !p.dev);
    expect(runtime.length).toBeGreaterThan(0);
    expect(runtime.filter(([, p]) => p.gypfile).map(([path]) => path)).toEqual([]);
    // Only the `bun` package installs anything: the runtime binary for this platform.
    expect(runtime.filter(([, p]) => p.hasInstallScript).map(([path]) => path)).toEqual(["node_modules/bun"]);
    expect(Object.keys(pkg.dependencies)).toContain("bun");
  });
});

describe("bin launcher", () => {
  const launcher = join(ROOT, "bin", "pipekit-log-collector.cjs");
  const node = Bun.which("node");

  test.skipIf(!node)("passes arguments and the exit status through", () => {
    expect(run([node!, launcher, "--version"]).out).toContain(`pipekit-log-collector ${pkg.version}`);
    const r = run([node!, launcher, "validate", "--config", join(dir, "missing.yaml")]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("missing.yaml");
  });

  test.skipIf(!node)("forwards SIGTERM: the collector shuts down cleanly and the launcher exits 0", async () => {
    const work = join(dir, "sigterm");
    mkdirSync(join(work, "logs"), { recursive: true });
    writeFileSync(join(work, "pods.json"), JSON.stringify({ apiVersion: "v1", kind: "PodList", items: [] }));
    writeFileSync(
      join(work, "config.yaml"),
      [
        `dataDir: ${join(work, "data")}`,
        `source: { root: ${join(work, "logs")}, maxLineBytes: 64KiB }`,
        `metadata: { provider: static, podsFile: ${join(work, "pods.json")} }`,
        'messenger: { baseUri: "http://127.0.0.1:9", apiKey: "k" }',
        "buffer: { maxBytes: 1MB }",
        'api: { address: "127.0.0.1:0" }',
        "shutdownTimeoutMs: 2000",
      ].join("\n"),
    );
    const proc = Bun.spawn([node!, launcher, "run", "--config", join(work, "config.yaml")], { stdout: "pipe", stderr: "pipe" });
    let stderr = "";
    const reading = (async () => {
      for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk);
    })();
    const deadline = Date.now() + 20_000;
    while (!stderr.includes('"level"') && Date.now() < deadline) await Bun.sleep(50);
    expect(stderr).toContain('"level"'); // the collector (a child of the launcher) is up and logging
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    await reading;
    expect(stderr).toContain("SIGTERM");
    expect(readFileSync(launcher, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
  }, 30_000);
});
