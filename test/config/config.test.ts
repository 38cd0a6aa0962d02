import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyEnv, ConfigError, loadConfig, maskSecrets, parseConfig } from "../../src/config/load.ts";
import { parseDuration, parseSize } from "../../src/config/units.ts";

const dir = mkdtempSync(join(tmpdir(), "cfg-test-"));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("units", () => {
  test("sizes: decimal and binary units, plain numbers", () => {
    expect(parseSize("500MB")).toBe(500_000_000);
    expect(parseSize("4MiB")).toBe(4 * 1024 * 1024);
    expect(parseSize("256KiB")).toBe(262_144);
    expect(parseSize("1GB")).toBe(1e9);
    expect(parseSize("1.5KB")).toBe(1500);
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize("12")).toBe(12);
    expect(parseSize("5 parsecs")).toContain("unknown size unit");
    expect(parseSize("-1")).toContain("not a size");
    expect(parseSize(-5)).toContain("non-negative");
  });
  test("durations: ms, s, m, h and plain milliseconds", () => {
    expect(parseDuration("5s")).toBe(5000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration("soon")).toContain("not a duration");
    expect(parseDuration("3 weeks")).toContain("unknown duration unit");
  });
});

describe("config", () => {
  test("every default of SPEC §8 with no file", () => {
    const c = loadConfig(undefined, {});
    expect(c.dataDir).toBe("/var/lib/pipekit-log-collector");
    expect(c.source).toMatchObject({
      root: "/var/log/pods",
      include: ["**/*.log"],
      readFrom: "beginning",
      maxLineBytes: 1048576,
      format: "auto",
      partialFlushMs: 5000,
      scanIntervalMs: 10000,
      readSliceBytes: 262144,
      maxDeletedHeldBytes: 1e9,
      watchdogSeconds: 60,
    });
    expect(c.metadata).toMatchObject({ provider: "apiserver", pollIntervalMs: 5000, deletionGraceSeconds: 60, waitForMetadataSeconds: 30, selectorLabel: "workflows.argoproj.io/workflow" });
    expect(c.pipeline.fields.orgUUID).toEqual({ label: "workflows.pipekit.io/org_uuid" });
    expect(c.pipeline.fields.nodeID).toEqual({ annotation: "workflows.argoproj.io/node-id" });
    expect(c.buffer).toEqual({ maxBytes: 500e6, syncIntervalMs: 1000 });
    expect(c.messenger).toMatchObject({ batchMaxEvents: 1024, batchMaxBytes: 4e6, flushIntervalMs: 1000, concurrency: 4, compression: "none", timeoutMs: 30000, retryInitialBackoffMs: 1000, retryMaxBackoffMs: 60000, deadLetterMaxBytes: 100e6 });
    expect(c.api.address).toBe("127.0.0.1:8686");
    expect(c.health).toEqual({ sinkFailingSeconds: 120, bufferFullSeconds: 300 });
    expect(c.shutdownTimeoutMs).toBe(30000);
    expect(c.log.level).toBe("info");
  });

  test("YAML and JSON files, with units", () => {
    const y = loadConfig(file("a.yaml", "buffer:\n  maxBytes: 64MiB\n  syncIntervalMs: 2s\nsource:\n  readFrom: end\n"), {});
    expect(y.buffer.maxBytes).toBe(64 * 2 ** 20);
    expect(y.buffer.syncIntervalMs).toBe(2000);
    expect(y.source.readFrom).toBe("end");
    const j = loadConfig(file("a.json", JSON.stringify({ messenger: { concurrency: 8, compression: "gzip" } })), {});
    expect(j.messenger.concurrency).toBe(8);
    expect(j.messenger.compression).toBe("gzip");
  });

  test("environment overrides the file for secrets and node identity", () => {
    const p = file("env.yaml", "messenger:\n  baseUri: http://file.example\n  apiKey: from-file\nnode:\n  name: file-node\n");
    const c = loadConfig(p, {
      PIPEKIT_API_KEY: "from-env",
      PIPEKIT_MESSENGER_BASE_URI: "https://env.example",
      NODE_NAME: "worker-3",
      NODE_IP: "10.0.0.3",
      POD_UID: "abc",
    });
    expect(c.messenger.apiKey).toBe("from-env");
    expect(c.messenger.baseUri).toBe("https://env.example");
    expect(c.node).toEqual({ name: "worker-3", ip: "10.0.0.3", podUid: "abc" });
    expect(applyEnv({}, { PIPEKIT_API_KEY: "" })).toEqual({});
  });

  test("each kind of bad value names the key and the problem", () => {
    expect(errorOf(() => parseConfig({ buffer: { maxBytes: "lots" } }))).toContain("buffer.maxBytes: \"lots\" is not a size");
    expect(errorOf(() => parseConfig({ buffer: { maxBytes: "10XB" } }))).toContain("unknown size unit");
    expect(errorOf(() => parseConfig({ messenger: { flushIntervalMs: "soon" } }))).toContain("messenger.flushIntervalMs");
    expect(errorOf(() => parseConfig({ messenger: { concurrency: 0 } }))).toContain("messenger.concurrency: must be at least 1");
    expect(errorOf(() => parseConfig({ messenger: { concurrency: 1.5 } }))).toContain("whole number");
    expect(errorOf(() => parseConfig({ messenger: { baseUri: "ftp://x" } }))).toContain("messenger.baseUri: must be an http");
    expect(errorOf(() => parseConfig({ source: { readFrom: "middle" } }))).toContain("source.readFrom");
    expect(errorOf(() => parseConfig({ source: { include: "*.log" } }))).toContain("source.include");
    expect(errorOf(() => parseConfig({ metadata: { provider: "etcd" } }))).toContain("metadata.provider");
    expect(errorOf(() => parseConfig({ api: { address: "8686" } }))).toContain("api.address: must be host:port");
    expect(errorOf(() => parseConfig({ api: { address: "0.0.0.0:99999" } }))).toContain("port must be at most 65535");
    expect(errorOf(() => parseConfig({ sourec: {} }))).toContain('unknown key "sourec"');
    expect(errorOf(() => parseConfig({ messenger: { apikey: "x" } }))).toContain('messenger: unknown key "apikey"');
    expect(errorOf(() => parseConfig({ messenger: { retryInitialBackoffMs: 5000, retryMaxBackoffMs: 1000 } }))).toContain("messenger.retryMaxBackoffMs");
    expect(errorOf(() => parseConfig({ log: { level: "verbose" } }))).toContain("log.level");
    expect(errorOf(() => parseConfig({ pipeline: { fields: { orgUUID: { header: "x" } } } }))).toContain("pipeline.fields.orgUUID");
  });

  test("unreadable and unparsable files", () => {
    expect(errorOf(() => loadConfig(join(dir, "missing.yaml"), {}))).toContain("cannot read config file");
    expect(errorOf(() => loadConfig(file("bad.yaml", "source: [unclosed\n"), {}))).toContain("neither valid YAML nor JSON");
    expect(errorOf(() => loadConfig(file("list.yaml", "- a\n- b\n"), {}))).toContain("top level must be a mapping");
  });

  test("secrets are masked", () => {
    const c = parseConfig({ messenger: { apiKey: "s3cret-value" } });
    const masked = JSON.stringify(maskSecrets(c));
    expect(masked).not.toContain("s3cret-value");
    expect(masked).toContain('"apiKey":"***"');
    expect(c.messenger.apiKey).toBe("s3cret-value"); // the original is untouched
  });
});
