// The published package as users run it: `npm pack`, then `npx` and `bunx` from that tarball in an
// empty directory, with empty package caches and no Bun on PATH — the `bun` runtime dependency and
// the bin launcher must be enough. Needs the npm registry (the dependencies are installed for real).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };

const ROOT = join(import.meta.dir, "..", "..");
// The repo's own Bun, used only as the `bunx` command itself (as a user's installed bunx would be).
const BUNX = join(ROOT, "node_modules", ".bin", "bunx");
const node = Bun.which("node");
const npx = Bun.which("npx");

let dir: string;
let tarball: string;
let env: Record<string, string>;
let files: string[] = [];

/** PATH without any directory that holds a `bun`: only node, npm and the system remain. */
function pathWithoutBun(): string {
  return (process.env.PATH ?? "")
    .split(delimiter)
    .filter((d) => d && !existsSync(join(d, "bun")) && !d.includes("node_modules"))
    .join(delimiter);
}

function run(cmd: string[], timeoutMs: number) {
  const r = Bun.spawnSync(cmd, { cwd: join(dir, "work"), env, stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  return { code: r.exitCode, signal: r.signalCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "plc-npm-"));
  const packed = Bun.spawnSync(["npm", "pack", "--json", "--pack-destination", dir], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (packed.exitCode !== 0) throw new Error(`npm pack failed: ${packed.stderr.toString()}`);
  const info = JSON.parse(packed.stdout.toString()) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(dir, info[0]!.filename);
  files = info[0]!.files.map((f) => f.path);
  mkdirSync(join(dir, "work"));
  mkdirSync(join(dir, "tmp"));
  env = {
    PATH: pathWithoutBun(),
    HOME: join(dir, "home"),
    TMPDIR: join(dir, "tmp"),
    npm_config_cache: join(dir, "npm-cache"), // empty: everything comes from the registry
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    BUN_INSTALL_CACHE_DIR: join(dir, "bun-cache"), // empty, and where bunx installs the package
    NO_COLOR: "1",
  };
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** `--version` through a launcher: the package version and the commit npm prepack stamped. */
function expectVersion(r: ReturnType<typeof run>): void {
  if (r.code !== 0) console.error(r.err);
  expect(r.code).toBe(0);
  expect(r.out).toContain(`pipekit-log-collector ${pkg.version}`);
  expect(r.out).toMatch(/\((?:[0-9a-f]{12}(?:-dirty)?)\)/);
}

/** `demo` through a launcher: it ends by itself and reports every event delivered. */
function expectDemoOk(r: ReturnType<typeof run>): void {
  expect(r.signal ?? null).toBeNull();
  expect(r.code).toBe(0);
  expect(r.out + r.err).toContain("demo OK");
}

describe("npm pack", () => {
  test("the tarball holds the launcher, the sources and nothing of the repo's tooling", () => {
    expect(files).toContain("bin/pipekit-log-collector.cjs");
    expect(files).toContain("src/main.ts");
    expect(files).toContain("package.json");
    for (const f of files) expect(f).toMatch(/^(bin\/|src\/|package\.json$|README\.md$)/);
  });

  test("no test scaffolding: nothing under test/, no fake, PKI, pod-list builder or rotating writer", () => {
    expect(files.length).toBeGreaterThan(0);
    const scaffolding = files.filter((f) => f.startsWith("test/") || /(^|\/)[^/]*(fake|pki|podlist|rotating-writer)[^/]*$/i.test(f));
    expect(scaffolding).toEqual([]);
  });

  test("every relative import of a packed source resolves inside the package", () => {
    const packed = new Set(files);
    const unresolved: string[] = [];
    for (const f of files.filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(join(ROOT, f), "utf8");
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
        const target = relative(ROOT, resolve(ROOT, dirname(f), m[1]!));
        if (!packed.has(target)) unresolved.push(`${f} → ${m[1]}`);
      }
    }
    expect(files.filter((f) => f.endsWith(".ts")).length).toBeGreaterThan(10);
    expect(unresolved).toEqual([]);
  });

  test("no Bun is reachable on the PATH the runs below use", () => {
    expect(Bun.which("bun", { PATH: env.PATH })).toBeNull();
    expect(Bun.which("node", { PATH: env.PATH })).not.toBeNull();
  });
});

describe.skipIf(!node || !npx)("npx (runs the launcher with Node)", () => {
  const args = () => ["npx", "--yes", "--package", tarball, "pipekit-log-collector"];

  test("--version", () => {
    expectVersion(run([...args(), "--version"], 120_000));
  }, 130_000);

  test("demo", () => {
    expectDemoOk(run([...args(), "demo"], 90_000));
  }, 100_000);
});

describe.skipIf(!node)("installed with --ignore-scripts (the bun package's postinstall never ran)", () => {
  test("the launcher falls back to the @oven platform package's binary", () => {
    const project = join(dir, "ignore-scripts");
    mkdirSync(project);
    const install = Bun.spawnSync(["npm", "install", "--ignore-scripts", "--no-save", "--no-package-lock", tarball], {
      cwd: project,
      env,
      stdout: "pipe",
      stderr: "pipe",
      timeout: 120_000,
    });
    expect(install.exitCode).toBe(0);
    const placeholder = join(project, "node_modules", "bun", "bin", "bun.exe");
    expect(statSync(placeholder).size).toBeLessThan(1024 * 1024); // still the placeholder
    const r = Bun.spawnSync([node!, join(project, "node_modules", ".bin", "pipekit-log-collector"), "--version"], {
      cwd: project,
      env,
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.stderr.toString()).toBe("");
    expect(r.stdout.toString()).toContain(`pipekit-log-collector ${pkg.version}`);
  }, 130_000);
});

describe("bunx", () => {
  const args = () => [BUNX, "--package", tarball, "pipekit-log-collector"];

  test("--version", () => {
    expectVersion(run([...args(), "--version"], 120_000));
    expect(existsSync(join(dir, "bun-cache"))).toBe(true); // installed into the empty cache, not the repo's
  }, 130_000);

  test("demo", () => {
    expectDemoOk(run([...args(), "demo"], 90_000));
  }, 100_000);
});
