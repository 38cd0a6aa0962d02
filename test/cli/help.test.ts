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

test("a help topic that does not exist: exit 2, saying so, with the topics; so does --help on an unknown command", () => {
  for (const args of [["--help", "nope"], ["help", "nope"], ["-h", "nope"], ["nope", "--help"]]) {
    const r = run(args);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toContain('"nope"');
    expect(r.err).toMatch(/no help topic "nope"|unknown command "nope"/);
    expect(r.err).toContain("commands: run, validate, demo, top, status, dev-messenger");
  }
});

test("--help dev-messenger: the key it accepts by default, and a flag for every fault the messenger knows", async () => {
  const help = run(["--help", "dev-messenger"]).out;
  expect(help).toContain('else "dev-key"');
  const faultSection = help.slice(help.indexOf("Fault flags"), help.indexOf("Runtime control"));
  const flags = [...faultSection.matchAll(/^ {2}--([a-z-]+)(?: ([NFS]))?\s/gm)].map((m) => ({ name: m[1]!, arg: m[2] }));
  expect(flags.length).toBeGreaterThan(10);
  // Every listed flag, at once, on the real process: each is accepted, and together they set every fault.
  const value = { N: "503", F: "0.5", S: "marker" } as Record<string, string>;
  const args = flags.flatMap((f) => (f.arg ? [`--${f.name}`, value[f.arg]!] : [`--${f.name}`]));
  const proc = Bun.spawn([...collectorCommand(), "dev-messenger", "--port", "0", ...args], { stdout: "pipe", stderr: "pipe" });
  try {
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(chunk);
    }
    const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
    expect(url ? "" : `no URL; stderr: ${await new Response(proc.stderr).text()}`).toBe("");
    const set = Object.keys((await (await fetch(`${url}/control/faults`)).json()) as object).sort();
    // The messenger names every fault it knows when asked for one it does not.
    const refusal = (await (await fetch(`${url}/control/faults`, { method: "POST", body: '{"noSuchFault":1}' })).json()) as { error: string };
    const known = /known: ([^)]*)\)/.exec(refusal.error)?.[1]?.split(", ").sort();
    expect(known?.length).toBeGreaterThan(10);
    expect(set).toEqual(known!);
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}, 30_000);
