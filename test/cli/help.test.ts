// --help for every command, as the real process prints it.
import { expect, test } from "bun:test";
import { collectorCommand } from "../support/collector-process.ts";

function run(args: string[]): { code: number; out: string; err: string } {
  const p = Bun.spawnSync([...collectorCommand(), ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
}

test("the general help lists every command, the API and examples", () => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const r = run(args);
    expect(r.code).toBe(0);
    for (const cmd of ["run", "demo", "validate", "dev-messenger", "--version"]) expect(r.out).toContain(`pipekit-log-collector ${cmd}`);
    expect(r.out).toContain("/health /ready /status /metrics");
    expect(r.out).toContain("Examples:");
  }
});

test.each(["run", "validate", "demo", "dev-messenger"])("%s: --help, -h and help COMMAND print its usage with examples", (cmd) => {
  const forms = [[cmd, "--help"], [cmd, "-h"], ["help", cmd], ["--help", cmd]];
  const outs = forms.map((args) => run(args));
  for (const r of outs) {
    expect(r.code).toBe(0);
    expect(r.out).toStartWith(`pipekit-log-collector ${cmd}`);
    expect(r.out).toContain("Examples:");
    expect(r.out.split("\n").filter((l) => l.trimStart().startsWith("pipekit-log-collector ") || l.trimStart().startsWith("curl ")).length).toBeGreaterThan(1);
    expect(r.out).toBe(outs[0]!.out);
  }
});

test("run --help documents the signals and endpoints an operator needs", () => {
  const { out } = run(["run", "--help"]);
  for (const s of ["SIGTERM", "SIGHUP", "shutdownTimeoutMs", "/health", "/ready", "/status", "/metrics", "--config"]) expect(out).toContain(s);
});

test("an unknown command: exit 2 with the general help on stderr", () => {
  const r = run(["frobnicate"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain('unknown command "frobnicate"');
  expect(r.err).toContain("Usage:");
});
