// No Docker engine runs on these machines (only the client), so the image cannot be built here.
// This test holds the Dockerfile to its rules statically instead: multi-stage, built in the
// official Bun image, only the executable copied into distroless `cc`, no shell at run time,
// exec-form entrypoint, OCI labels, and a .dockerignore that lets in exactly what the build uses —
// and it runs the build stage's own commands here, in a copy of the build context, to show that they
// produce the one file the runtime stage copies.
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import pkg from "../../package.json" with { type: "json" };

const ROOT = join(import.meta.dir, "..", "..");

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

/** Joins continuation lines, drops comments and parser directives, splits into stages. */
function parseDockerfile(text: string): { globalArgs: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let buffer = "";
  let startLine = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (buffer === "" && (line === "" || line.startsWith("#"))) return;
    if (buffer !== "" && line.startsWith("#")) return; // comments inside a continued instruction
    if (buffer === "") startLine = i + 1;
    if (line.endsWith("\\")) {
      buffer += line.slice(0, -1) + " ";
      return;
    }
    buffer += line;
    const m = /^(\S+)\s*(.*)$/s.exec(buffer)!;
    instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: startLine });
    buffer = "";
  });
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith("--platform="));
      const asIdx = parts.findIndex((p) => p.toUpperCase() === "AS");
      stages.push({ from: parts[0]!, name: asIdx >= 0 ? parts[asIdx + 1]! : null, instructions: [] });
    } else if (stages.length === 0) {
      globalArgs.push(ins);
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

/** Expands ${NAME} and $NAME from ARG defaults. */
function expand(s: string, args: Instruction[]): string {
  const values = new Map<string, string>();
  for (const a of args) {
    const [k, v] = a.args.split("=", 2);
    if (k && v !== undefined) values.set(k, v);
  }
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => values.get(a ?? b) ?? `\${${a ?? b}}`);
}

/** LABEL k="v" k2=v2 ... → map (values may be quoted and contain spaces). */
function parseLabels(args: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([\w.\-]+)=("(?:[^"\\]|\\.)*"|\S+)/g;
  for (const m of args.matchAll(re)) out.set(m[1]!, m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!);
  return out;
}

const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const { globalArgs, stages } = parseDockerfile(dockerfile);
const build = stages[0]!;
const runtime = stages[stages.length - 1]!;

describe("Dockerfile (static: no Docker engine here)", () => {
  test("the parser sees continuation lines and stages", () => {
    const parsed = parseDockerfile("ARG A=1\nFROM x:${A} AS one\nRUN a \\\n  # note\n  b\nFROM y\nCMD [\"z\"]\n");
    expect(parsed.globalArgs.map((i) => i.args)).toEqual(["A=1"]);
    expect(parsed.stages.map((s) => [s.from, s.name])).toEqual([
      ["x:${A}", "one"],
      ["y", null],
    ]);
    expect(parsed.stages[0]!.instructions[0]!.args).toBe("a  b");
  });

  test("is multi-stage: builds in the official Bun image of the pinned version", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(expand(build.from, globalArgs)).toBe(`oven/bun:${pkg.dependencies.bun}`);
    const runs = build.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(runs).toContain("bun scripts/build.ts");
    expect(runs).toContain("--ignore-scripts"); // no second Bun download through the `bun` package
  });

  test("the runtime is distroless cc (glibc) and receives only the executable", () => {
    expect(runtime.from).toMatch(/^gcr\.io\/distroless\/cc-debian\d+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/);
    const copies = runtime.instructions.filter((i) => i.keyword === "COPY" || i.keyword === "ADD");
    expect(copies.length).toBe(1);
    expect(copies[0]!.keyword).toBe("COPY");
    expect(copies[0]!.args).toMatch(new RegExp(`^--from=${build.name} /out/pipekit-log-collector /usr/local/bin/pipekit-log-collector$`));
  });

  test("nothing in the runtime stage needs a shell", () => {
    const keywords = runtime.instructions.map((i) => i.keyword);
    expect(keywords).not.toContain("RUN");
    expect(keywords).not.toContain("SHELL");
    expect(keywords).not.toContain("HEALTHCHECK"); // a CMD-SHELL check would need /bin/sh; the kubelet probes HTTP
    for (const kw of ["ENTRYPOINT", "CMD"]) {
      const ins = runtime.instructions.filter((i) => i.keyword === kw);
      expect(ins.length).toBe(1);
      const form = JSON.parse(ins[0]!.args) as unknown; // exec form: a JSON array, no /bin/sh -c
      expect(Array.isArray(form)).toBe(true);
    }
    const entry = JSON.parse(runtime.instructions.find((i) => i.keyword === "ENTRYPOINT")!.args) as string[];
    expect(entry).toEqual(["/usr/local/bin/pipekit-log-collector"]);
    expect(JSON.parse(runtime.instructions.find((i) => i.keyword === "CMD")!.args)).toEqual(["run"]);
  });

  test("runs as uid 0 explicitly (container logs are 0640 root; the DaemonSet drops every capability)", () => {
    const users = runtime.instructions.filter((i) => i.keyword === "USER").map((i) => i.args);
    expect(users).toEqual(["0:0"]);
  });

  test("carries the OCI labels", () => {
    const labels = new Map<string, string>();
    for (const ins of runtime.instructions.filter((i) => i.keyword === "LABEL")) {
      for (const [k, v] of parseLabels(ins.args)) labels.set(k, v);
    }
    for (const key of ["title", "description", "version", "revision", "source", "licenses", "vendor"]) {
      expect(labels.get(`org.opencontainers.image.${key}`) ?? "").not.toBe("");
    }
    expect(labels.get("org.opencontainers.image.title")).toBe(pkg.name);
    const versionArg = runtime.instructions.find((i) => i.keyword === "ARG" && i.args.startsWith("VERSION="));
    expect(versionArg?.args).toBe(`VERSION=${pkg.version}`);
  });

  test("every file the build copies exists and passes .dockerignore", () => {
    const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    expect(ignore[0]).toBe("*"); // deny by default: no node_modules, .git, dist or .tools in the context
    const allowed = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
    const sources = build.instructions
      .filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from"))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      expect(existsSync(join(ROOT, src))).toBe(true);
      expect(allowed).toContain(src.replace(/\/$/, ""));
    }
  });
});

describe("the build stage's commands, run here (no engine: a temp dir stands in for the container)", () => {
  test("produce /out/pipekit-log-collector, which the runtime stage copies, with the version and commit", () => {
    const dir = mkdtempSync(join(tmpdir(), "plc-docker-"));
    try {
      const workdir = build.instructions.find((i) => i.keyword === "WORKDIR")!.args;
      const ctx = join(dir, "ctx");
      const out = join(dir, "out");
      // The build context as .dockerignore admits it; COPY destinations are relative to WORKDIR.
      for (const ins of build.instructions.filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from"))) {
        const parts = ins.args.split(/\s+/);
        const dest = parts.at(-1)!;
        for (const src of parts.slice(0, -1)) {
          const target = dest.endsWith("/") ? join(ctx, dest, basename(src)) : join(ctx, dest);
          mkdirSync(dirname(target), { recursive: true });
          cpSync(join(ROOT, src), target, { recursive: true, filter: (p) => !p.endsWith(".test.ts") });
        }
      }
      // ARG defaults (TARGETARCH is set by BuildKit), then ENV, as the build sees them.
      const bunDir = join(dir, "bin");
      mkdirSync(bunDir);
      symlinkSync(process.execPath, join(bunDir, "bun"));
      const env: Record<string, string> = { PATH: `${bunDir}:/usr/bin:/bin`, HOME: process.env.HOME ?? dir, TARGETARCH: "amd64", GIT_COMMIT: "c0ffee123456" };
      for (const ins of build.instructions) {
        if (ins.keyword === "ARG" && ins.args.includes("=")) {
          const [k, v] = ins.args.split("=", 2) as [string, string];
          env[k] ??= v;
        }
        if (ins.keyword === "ENV") {
          const [k, v] = ins.args.split("=", 2) as [string, string];
          env[k] = v.replace(/\$\{(\w+)\}/g, (_, name: string) => env[name] ?? "");
        }
      }
      expect(env.PIPEKIT_BUILD_COMMIT).toBe("c0ffee123456");
      for (const ins of build.instructions.filter((i) => i.keyword === "RUN")) {
        const cmd = ins.args.replaceAll("/out", out).replaceAll(workdir, ctx);
        const r = Bun.spawnSync(["sh", "-c", cmd], { cwd: ctx, env, stdout: "pipe", stderr: "pipe", timeout: 120_000 });
        if (r.exitCode !== 0) throw new Error(`RUN at Dockerfile:${ins.line} failed: ${r.stderr.toString()}${r.stdout.toString()}`);
      }
      const copied = runtime.instructions.find((i) => i.keyword === "COPY")!.args.split(/\s+/)[1]!;
      const exe = copied.replace("/out", out);
      const v = Bun.spawnSync([exe, "--version"], { stdout: "pipe" });
      expect(v.exitCode).toBe(0);
      expect(v.stdout.toString().trim()).toBe(`pipekit-log-collector ${pkg.version} (c0ffee123456)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
