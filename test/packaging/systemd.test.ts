// The systemd unit and example config for bare-metal nodes (deploy/systemd/).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseConfig } from "../../src/config/load.ts";

const DIR = join(import.meta.dir, "..", "..", "deploy", "systemd");
const unitText = readFileSync(join(DIR, "pipekit-log-collector.service"), "utf8");

/** [Section] → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq < 0) throw new Error(`unit: not a key=value line: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const unit = parseUnit(unitText);
const service = unit.get("Service")!;
const value = (k: string) => service.get(k)?.at(-1);

describe("systemd unit", () => {
  test("systemd itself accepts it (systemd-analyze verify, no warnings)", () => {
    const which = Bun.spawnSync(["sh", "-c", "command -v systemd-analyze"], { stdout: "pipe" });
    if (which.exitCode !== 0) {
      console.warn("systemd-analyze not installed: only the static checks ran");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "plc-unit-"));
    try {
      // verify also checks that ExecStart exists; the executable is not installed here.
      const file = join(dir, "pipekit-log-collector.service");
      writeFileSync(file, unitText.replace(/^ExecStart=\S+/m, "ExecStart=/bin/true"));
      const r = Bun.spawnSync(["systemd-analyze", "verify", file], { stdout: "pipe", stderr: "pipe" });
      expect(r.stdout.toString() + r.stderr.toString()).toBe("");
      expect(r.exitCode).toBe(0);
      // ...and it would say so: an unknown key is reported.
      writeFileSync(file, unitText.replace("Restart=always", "Restart=always\nRestartt=always"));
      const bad = Bun.spawnSync(["systemd-analyze", "verify", file], { stdout: "pipe", stderr: "pipe" });
      expect(bad.stdout.toString() + bad.stderr.toString()).toContain("Unknown key");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("runs the collector with the example config's path, restarts it, stops it gently", () => {
    expect(value("ExecStart")).toBe("/usr/local/bin/pipekit-log-collector run --config /etc/pipekit-log-collector/config.yaml");
    expect(value("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(value("Restart")).toBe("always");
    expect(Number(value("TimeoutStopSec"))).toBeGreaterThan(parseConfig({}).shutdownTimeoutMs / 1000);
    expect(unit.get("Install")!.get("WantedBy")).toEqual(["multi-user.target"]);
  });

  test("root without capabilities, read-only system, writes only to its state dir", () => {
    expect(value("User")).toBe("root");
    expect(value("CapabilityBoundingSet")).toBe("");
    expect(value("NoNewPrivileges")).toBe("yes");
    expect(value("ProtectSystem")).toBe("strict");
    expect(value("StateDirectory")).toBe("pipekit-log-collector");
    expect(service.has("ReadWritePaths")).toBe(false);
    expect(service.has("MemoryDenyWriteExecute")).toBe(false); // the JIT needs it off
    expect(value("Environment")).toBe("NODE_NAME=%H");
  });

  test("memory as the chart's: the same limit, MemoryHigh below it", () => {
    expect(value("MemoryMax")).toBe("1G");
    expect(value("MemoryHigh")).toBe("900M");
    const values = readFileSync(join(DIR, "..", "helm", "pipekit-log-collector", "values.yaml"), "utf8");
    expect(values).toMatch(/limits:\n\s+memory: 1Gi/);
  });
});

describe("example config", () => {
  const config = parseConfig(parseYaml(readFileSync(join(DIR, "config.yaml"), "utf8")), "deploy/systemd/config.yaml");

  test("passes the collector's schema: kubeconfig metadata, data dir under /var/lib", () => {
    expect(config.metadata.provider).toBe("apiserver");
    expect(config.metadata.kubeconfig).toBe("/etc/pipekit-log-collector/kubeconfig");
    expect(config.dataDir).toBe(`/var/lib/${value("StateDirectory")}`);
    expect(config.source.root).toBe("/var/log/pods");
    expect(config.messenger.apiKeyFile).toBe("/etc/pipekit-log-collector/api-key");
    expect(config.messenger.apiKey).toBeNull();
  });
});
