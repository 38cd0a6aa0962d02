// The side-by-side runner against Fluent Bit (bench/fluent-bit.ts): the configuration it gives Fluent
// Bit, its skip path when no executable is named, and — with a stand-in executable, since Fluent Bit
// cannot be installed here — one small comparison from start to table.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY_HEADER, INGEST_PATH } from "../../src/sink/wire.ts";
import { fluentBitConfig, fluentBitFromEnv, fluentBitOptimization, type FluentBitSetup } from "./fluent-bit.ts";

const ROOT = join(import.meta.dir, "../..");
const setup: FluentBitSetup = { root: "/tmp/run/pods", dataDir: "/tmp/run/data/fluent-bit", sinkHost: "127.0.0.1", sinkPort: 40123, apiKey: "bench-key", gzip: false };

/** The classic configuration as sections of key → values (a key may repeat). */
function parse(text: string): Array<{ name: string; keys: Map<string, string[]> }> {
  const sections: Array<{ name: string; keys: Map<string, string[]> }> = [];
  for (const raw of text.split("\n")) {
    if (!raw.trim()) continue;
    const head = /^\[(\w+)\]$/.exec(raw);
    if (head) {
      sections.push({ name: head[1]!, keys: new Map() });
      continue;
    }
    const kv = /^ {4}(\S+)\s+(.+)$/.exec(raw);
    if (!kv || !sections.length) throw new Error(`not a classic config line: ${JSON.stringify(raw)}`);
    const keys = sections[sections.length - 1]!.keys;
    keys.set(kv[1]!, [...(keys.get(kv[1]!) ?? []), kv[2]!]);
  }
  return sections;
}

describe("Fluent Bit's configuration", () => {
  test("tail with the CRI multiline parser from the head, filesystem storage, http json to the ingest path with the key", () => {
    const s = parse(fluentBitConfig(setup));
    expect(s.map((x) => x.name)).toEqual(["SERVICE", "INPUT", "FILTER", "OUTPUT"]);
    const [service, input, filter, output] = s.map((x) => Object.fromEntries([...x.keys].map(([k, v]) => [k, v.join(" | ")])));
    expect(service).toMatchObject({ flush: "1", "storage.path": "/tmp/run/data/fluent-bit/storage" });
    expect(input).toMatchObject({ name: "tail", path: "/tmp/run/pods/*/*/*.log", "multiline.parser": "cri", read_from_head: "true", "storage.type": "filesystem", db: "/tmp/run/data/fluent-bit/tail.db" });
    expect(filter).toMatchObject({ name: "modify", rename: "log message" });
    expect(output).toMatchObject({ name: "http", host: "127.0.0.1", port: "40123", uri: INGEST_PATH, format: "json", header: `${API_KEY_HEADER} bench-key`, workers: "4" });
    expect(output!.compress).toBeUndefined();
    expect(Object.fromEntries(parse(fluentBitConfig({ ...setup, gzip: true }))[3]!.keys).compress).toEqual(["gzip"]);
  });

  test("a value that would change the configuration's meaning is refused, naming it", () => {
    expect(() => fluentBitConfig({ ...setup, root: "/tmp/a\n[OUTPUT]" })).toThrow(/root cannot be written/);
    expect(() => fluentBitConfig({ ...setup, apiKey: "k #1" })).toThrow(/apiKey cannot be written/);
    expect(() => fluentBitConfig({ ...setup, dataDir: "" })).toThrow(/dataDir/);
  });

  test("FLUENT_BIT names the executable; unset or blank means skip", () => {
    expect(fluentBitFromEnv({})).toBeNull();
    expect(fluentBitFromEnv({ FLUENT_BIT: "  " })).toBeNull();
    expect(fluentBitFromEnv({ FLUENT_BIT: "/usr/bin/fluent-bit" })).toBe("/usr/bin/fluent-bit");
  });
});

function runner(env: Record<string, string | undefined>, args: string[] = []) {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "FLUENT_BIT") clean[k] = v;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  return Bun.spawnSync([process.execPath, join(ROOT, "bench/fluent-bit.ts"), ...args], { cwd: ROOT, env: clean, stdout: "pipe", stderr: "pipe" });
}

// A compiler and readelf (binutils) may be missing on a fresh machine: then there is nothing to read.
const canCompile = Bun.which("cc") !== null && Bun.which("readelf") !== null;

test.skipIf(!canCompile)("the runner reads how Fluent Bit was compiled: an unoptimised build (FLB_DEBUG's -O0) is told apart from a release one", () => {
  const dir = mkdtempSync(join(tmpdir(), "fb-opt-"));
  try {
    writeFileSync(join(dir, "main.c"), "int main(void) { return 0; }\n");
    const build = (flags: string[], out: string) => {
      const r = Bun.spawnSync(["cc", ...flags, "-o", join(dir, out), join(dir, "main.c")], { stderr: "pipe" });
      expect(r.exitCode).toBe(0);
      return join(dir, out);
    };
    expect(fluentBitOptimization(build(["-g", "-O2"], "release"))).toBe("-O2");
    expect(fluentBitOptimization(build(["-g"], "debug"))).toBe("unoptimised (no -O)");
    expect(fluentBitOptimization(build(["-O2"], "stripped"))).toBe("unknown"); // no debug strings to read
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("the side-by-side runner", () => {
  test("without FLUENT_BIT it says it skipped and exits 0, running nothing", () => {
    const r = runner({});
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe("fluent-bit comparison skipped: FLUENT_BIT is not set (the path of a fluent-bit executable)\n");
  });

  test("a FLUENT_BIT that cannot run is an error (exit 2) naming it", () => {
    const r = runner({ FLUENT_BIT: "/nonexistent/fluent-bit" });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("FLUENT_BIT=/nonexistent/fluent-bit cannot run");
  });

  test("with an executable: both agents deliver every event to the counting sink, and one table compares them", () => {
    const dir = mkdtempSync(join(tmpdir(), "fb-runner-"));
    try {
      const exe = join(dir, "fluent-bit");
      writeFileSync(exe, `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, "bench/lib/fluent-bit.fake.ts")}" "$@"\n`);
      chmodSync(exe, 0o755);
      const r = runner({ FLUENT_BIT: exe }, ["--events", "5000", "--runs", "1"]);
      const out = r.stdout.toString();
      expect(r.exitCode).toBe(0);
      expect(out).toContain("fluent-bit: " + exe + " — Fluent Bit v0.0.0-fake");
      const rows = out.split("\n").filter((l) => l.startsWith("| "));
      expect(rows[0]).toStartWith("| agent | events/s |");
      expect(rows.map((l) => l.split(" | ")[0])).toEqual(["| agent", "| ---", "| collector", "| Fluent Bit", "| collector ÷ Fluent Bit"]);
      // Nothing missing or duplicated on either side: the sink counted the fake's records by their date key.
      for (const row of rows.slice(2, 4)) expect(row.split(" | ").slice(7, 9)).toEqual(["0", "0"]);
      expect(rows[4]).toMatch(/× \(target ≥ 4×: (holds|MISSED)\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
