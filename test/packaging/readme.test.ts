// The README's Install and "Verifying it works" sections, held to what the repository does: the
// commands that need no cluster run as written (helm from npm), the npm scripts and paths exist,
// one namespace, and one memory story across the README, the chart and the systemd unit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { helm, parseManifests, ROOT } from "./helm-support.ts";

const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const chartReadme = readFileSync(join(ROOT, "deploy/helm/pipekit-log-collector/README.md"), "utf8");
const values = readFileSync(join(ROOT, "deploy/helm/pipekit-log-collector/values.yaml"), "utf8");
const unit = readFileSync(join(ROOT, "deploy/systemd/pipekit-log-collector.service"), "utf8");

function section(text: string, heading: string): string {
  const start = text.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README has no ${heading}`);
  const level = heading.split(" ")[0]!;
  const rest = text.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`\\n${level} `));
  return end < 0 ? rest : rest.slice(0, end);
}

const install = section(readme, "## Install");
const verify = section(readme, "## Verifying it works");

/** The shell commands of a section's ```sh blocks, continuation lines joined, comments dropped. */
function commands(text: string): string[] {
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .flatMap((b) => b.replace(/\\\n\s*/g, "").split("\n"))
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l !== "");
}

describe("what it tells a newcomer to run", () => {
  test("every npm script named exists; build is the host executable, build:all the variants", () => {
    const named = [...new Set([...(install + verify).matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!))];
    expect(named.sort()).toEqual(["build", "build:all", "demo"]);
    for (const s of named) expect(pkg.scripts).toHaveProperty(s);
    expect(install).toContain("./dist/pipekit-log-collector --version");
  });

  test("npx and bunx run the tarball npm pack writes, by its absolute path (the package is private)", () => {
    expect(pkg.private).toBe(true);
    const tarball = `${pkg.name}-${pkg.version}.tgz`;
    const runs = commands(install).filter((c) => /^npx (--yes )?--package|^npx bun x/.test(c));
    expect(runs).toHaveLength(2);
    for (const c of runs) expect(c).toContain(`--package "$PWD/${tarball}" pipekit-log-collector demo`);
    expect(install).toContain(`npm pack                                # writes ${tarball}`);
    expect(readme).not.toMatch(/npx pipekit-log-collector demo/);
  });

  test("every path it names exists", () => {
    const paths = [...new Set([...(install + verify).matchAll(/\b((?:deploy|scripts|docs|bench)\/[\w./-]+[\w])/g)].map((m) => m[1]!))];
    expect(paths.length).toBeGreaterThan(5);
    for (const p of paths) expect(existsSync(join(ROOT, p.replace(/\*\.yaml$/, "")))).toBe(true);
  });

  test("one namespace: pipekit-log-collector, and argo only under the Pipekit Agent chart", () => {
    const text = [...commands(install), ...commands(verify), ...commands(chartReadme)].join("\n");
    const namespaces = new Set([...text.matchAll(/(?:-n|--namespace|create namespace|label namespace) (\$?[\w-]+)/g)].map((m) => m[1]!));
    expect([...namespaces].sort()).toEqual(["$NS", "argo", "pipekit-log-collector"]);
    expect(verify).toContain("NS=pipekit-log-collector DS=pipekit-log-collector");
    for (const c of commands(verify).filter((c) => c.startsWith("kubectl -n"))) expect(c).toMatch(/^kubectl -n \$NS /);
  });
});

describe("the helm commands that need no cluster, run as written", () => {
  let work: string;
  beforeAll(() => {
    helm();
    // A copy of the charts, so that `helm dependency build` writes into it, not the checkout.
    work = mkdtempSync(join(tmpdir(), "plc-readme-"));
    cpSync(join(ROOT, "deploy", "helm"), join(work, "deploy", "helm"), { recursive: true });
  }, 120_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test("lint, template, and the stand-in agent chart with Pipekit's documented command", () => {
    const lines = commands(install).filter((c) => c.startsWith("$HELM "));
    expect(lines.map((l) => l.split(" ")[1])).toEqual(["lint", "template", "dependency", "template"]);
    for (const line of lines) {
      const args = line.slice("$HELM ".length).split(/\s+/);
      const r = Bun.spawnSync([helm(), ...args], { cwd: work, stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`${line}\n${r.stderr.toString()}`);
      if (args[0] === "template") expect(parseManifests(r.stdout.toString()).some((o) => o.kind === "DaemonSet")).toBe(true);
    }
    expect(commands(install)).toContain("HELM=$(command -v helm || npx bun scripts/fetch-helm.ts)");
  }, 60_000);
});

describe("one memory story", () => {
  test("the measured figures are bench/RESULTS.md's", () => {
    const results = readFileSync(join(ROOT, "bench", "RESULTS.md"), "utf8");
    expect(results).toContain("42–106 MB");
    expect(results).toMatch(/\| backlog \| 5000 k \|.*\| 106 \| 548 \|/);
    for (const text of [section(install, "### Memory"), chartReadme, values]) {
      expect(text).toContain("42–106 MB");
      expect(text).toContain("548 MB");
    }
  });

  test("request 640Mi and limit 1Gi everywhere, MemoryMax=1G on bare metal, no other figure", () => {
    expect(values).toMatch(/requests:\n\s+cpu: 100m\n\s+memory: 640Mi\n\s+limits:\n\s+memory: 1Gi/);
    const memory = section(install, "### Memory");
    expect(memory).toContain("**requests 640Mi**");
    expect(memory).toContain("**limits at 1Gi**");
    expect(memory).toContain("`MemoryMax=1G`");
    expect(unit).toContain("MemoryMax=1G");
    expect(chartReadme).toContain("Requests 640Mi, limits 1Gi");
    for (const text of [readme, chartReadme, values, unit]) expect(text).not.toMatch(/2Gi|1 GiB|~1 GB of anonymous/);
  });
});
