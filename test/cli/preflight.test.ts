// The checks `run` and `validate` share (src/cli/preflight.ts), on real files: every problem named
// by its key, all of them at once, no secret in the message, and nothing written anywhere.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dataDirProblems, preflight, ringSpaceProblems } from "../../src/cli/preflight.ts";
import { ConfigError, parseConfig } from "../../src/config/load.ts";

const dir = mkdtempSync(join(tmpdir(), "preflight-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pods = join(dir, "pods.json");
writeFileSync(pods, JSON.stringify({ apiVersion: "v1", kind: "PodList", items: [] }));

/** A config `run` would start with; `over` replaces whole sections' keys. */
function config(over: Record<string, any> = {}) {
  const base: Record<string, any> = {
    dataDir: join(dir, "data"),
    metadata: { provider: "static", podsFile: pods },
    messenger: { baseUri: "http://127.0.0.1:9", apiKey: "preflight-key" },
  };
  for (const [k, v] of Object.entries(over)) base[k] = v && typeof v === "object" && base[k] ? { ...base[k], ...v } : v;
  return parseConfig(base);
}

function problems(c: ReturnType<typeof config>): string[] {
  try {
    preflight(c, "config test.yaml");
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const [first, ...rest] = (err as Error).message.split("\n");
    expect(first).toBe("invalid config test.yaml:");
    return rest.map((l) => l.trim());
  }
}

describe("the data dir", () => {
  test("an existing writable dir, or a new one whose parent exists: fine, and nothing is created", () => {
    expect(dataDirProblems(dir)).toEqual([]);
    expect(dataDirProblems(join(dir, "new-data"))).toEqual([]);
    expect(existsSync(join(dir, "new-data"))).toBe(false);
  });

  test("a missing parent is refused, not created (a typo would fill the wrong disk)", () => {
    const typo = join(dir, "no-such-volume", "pipekit", "data");
    expect(dataDirProblems(typo)).toEqual([
      `dataDir: ${typo}: its parent ${join(dir, "no-such-volume", "pipekit")} does not exist; the collector creates the data dir, never its parents (create it, or correct the path)`,
    ]);
    expect(existsSync(join(dir, "no-such-volume"))).toBe(false);
  });

  test("a file where the dir or a parent should be", () => {
    expect(dataDirProblems(pods)).toEqual([`dataDir: ${pods} is not a directory`]);
    expect(dataDirProblems(join(pods, "data"))).toEqual([`dataDir: ${join(pods, "data")} cannot be used: a part of its path is not a directory`]);
  });
});

describe("room for the ring on the data dir's disk", () => {
  test("a ring larger than the free space is refused; one of the right size already there needs none", () => {
    const data = join(dir, "space");
    mkdirSync(data);
    const fs = statfsSync(data);
    const maxBytes = Math.ceil((fs.bavail * fs.bsize) / 4096) * 4096 + (1 << 30); // 1 GiB more than is free
    const [problem] = ringSpaceProblems({ dataDir: data, buffer: { maxBytes, syncIntervalMs: 1000 } });
    expect(problem).toMatch(new RegExp(`^buffer\\.maxBytes: the ring file needs ${maxBytes} bytes and the file system of dataDir ${data} has \\d+ bytes free; free disk space or lower buffer\\.maxBytes$`));
    // The same size in place (sparse here: it takes no room): nothing to allocate.
    writeFileSync(join(data, "ring.dat"), "");
    truncateSync(join(data, "ring.dat"), maxBytes);
    expect(ringSpaceProblems({ dataDir: data, buffer: { maxBytes, syncIntervalMs: 1000 } })).toEqual([]);
    rmSync(join(data, "ring.dat"));
    // A new data dir is measured on its parent's file system.
    expect(ringSpaceProblems({ dataDir: join(data, "new"), buffer: { maxBytes, syncIntervalMs: 1000 } })).toHaveLength(1);
    expect(ringSpaceProblems({ dataDir: join(data, "new"), buffer: { maxBytes: 1 << 20, syncIntervalMs: 1000 } })).toEqual([]);
  });
});

describe("everything run checks", () => {
  test("a config that would start: no problem, nothing written", () => {
    const before = readdirSync(dir).sort();
    expect(problems(config())).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  test("the metadata provider's own checks: static without or with a missing pods file, apiserver without NODE_NAME, kubelet without NODE_IP", () => {
    expect(problems(config({ metadata: { podsFile: null } }))).toEqual(["metadata.podsFile: required when metadata.provider is static"]);
    expect(problems(config({ metadata: { podsFile: join(dir, "nope.json") } }))).toEqual([`metadata.podsFile: cannot read ${join(dir, "nope.json")}: ENOENT`]);
    const apiserver = { provider: "apiserver", podsFile: null, apiserverUrl: "https://10.0.0.1:6443" };
    expect(problems(config({ metadata: apiserver }))).toEqual([expect.stringMatching(/^node\.name: NODE_NAME is required for metadata\.provider apiserver/)]);
    expect(problems(config({ metadata: apiserver, node: { name: "node-1" } }))).toEqual([]);
    expect(problems(config({ metadata: { provider: "kubelet", podsFile: null } }))).toEqual([expect.stringMatching(/^metadata\.kubeletUrl: required when NODE_IP/)]);
  });

  test("the API key file: missing, a directory, empty, or holding a key no header can carry — never printed", () => {
    const messenger = (apiKeyFile: string) => ({ messenger: { apiKey: null, apiKeyFile } });
    const missing = join(dir, "no-key");
    expect(problems(config(messenger(missing)))).toEqual([`messenger.apiKeyFile: cannot read messenger API key file ${missing}: ENOENT`]);
    expect(problems(config(messenger(dir)))).toEqual([`messenger.apiKeyFile: cannot read messenger API key file ${dir}: EISDIR`]);
    const empty = join(dir, "empty-key");
    writeFileSync(empty, "\n");
    expect(problems(config(messenger(empty)))).toEqual([`messenger.apiKeyFile: messenger API key file ${empty} is empty`]);
    const broken = join(dir, "broken-key");
    writeFileSync(broken, "pk_preflight_first\npk_preflight_second\n");
    const [problem] = problems(config(messenger(broken)));
    expect(problem).toBe(`messenger.apiKeyFile ${broken}: the key contains a line break (character 19), which cannot be sent in an HTTP header`);
    const good = join(dir, "good-key");
    writeFileSync(good, "pk_preflight_good\n");
    expect(problems(config(messenger(good)))).toEqual([]);
    // A key in the config too does not excuse an unreadable file: the sender would read it.
    expect(problems(config({ messenger: { apiKeyFile: missing } }))).toEqual([expect.stringContaining(`cannot read messenger API key file ${missing}`)]);
  });

  test("every problem at once, one line each, in the order run meets them", () => {
    const c = config({
      dataDir: join(dir, "missing-parent", "data"),
      buffer: { maxBytes: "1MiB" },
      metadata: { podsFile: null },
      messenger: { baseUri: null, apiKey: null, apiKeyFile: join(dir, "no-key") },
    });
    const keys = problems(c).map((p) => p.split(/[: ]/)[0]);
    expect(keys).toEqual(["messenger.baseUri", "buffer.maxBytes", "dataDir", "metadata.podsFile", "messenger.apiKeyFile"]);
    expect(existsSync(join(dir, "missing-parent"))).toBe(false);
  });
});
