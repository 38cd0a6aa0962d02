// Secrets stay out of every output: `validate` and `run` (the real CLI, real files), /status of a
// running collector, and the parse errors of a broken config file next to the key.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, readConfigFile } from "../../src/config/load.ts";
import { apiKeyProblem, maskSecrets, maskUrlCredentials, redactSecrets, registerSecret } from "../../src/config/secrets.ts";
import { spawnCollector } from "../support/collector-process.ts";
import { setUp, startCollector, stopCollector } from "../ops/harness.ts";

const dir = mkdtempSync(join(tmpdir(), "pk-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = "pk_live_S3cr3tValue_7781";
const PASSWORD = "hunter2pass";
const USER = "svc-collector";

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** The real CLI; resolves with exit code, stdout and stderr. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const c = spawnCollector(args, { PIPEKIT_API_KEY: "", PIPEKIT_MESSENGER_BASE_URI: "", NODE_NAME: "secrets", ...env });
  const code = await Promise.race([c.exited, Bun.sleep(20_000).then(() => null)]);
  if (code === null) c.proc.kill("SIGKILL");
  const out = await new Response(c.proc.stdout).text();
  await Bun.sleep(20);
  return { code, out, err: c.stderr() };
}

/** A config that would start: the key and messenger in `messenger`, everything else local and valid. */
function runnableConfig(name: string, messenger: string): string {
  const d = join(dir, name);
  mkdirSync(join(d, "pods"), { recursive: true });
  writeFileSync(join(d, "pods.json"), JSON.stringify({ apiVersion: "v1", kind: "PodList", items: [] }));
  return file(
    `${name}.yaml`,
    [
      `dataDir: ${join(d, "data")}`,
      "source:",
      `  root: ${join(d, "pods")}`,
      "metadata:",
      "  provider: static",
      `  podsFile: ${join(d, "pods.json")}`,
      "api:",
      "  address: 127.0.0.1:0",
      "messenger:",
      messenger,
      "",
    ].join("\n"),
  );
}

describe("masking and redaction (pure)", () => {
  test("URLs lose their user and password; secret fields are masked; registered values are redacted", () => {
    expect(maskUrlCredentials(`https://${USER}:${PASSWORD}@m.example:8443/p?q=1`)).toBe("https://***:***@m.example:8443/p?q=1");
    expect(maskUrlCredentials(`http://${USER}@m.example/`)).toBe("http://***@m.example/");
    expect(maskUrlCredentials("http://m.example/a@b")).toBe("http://m.example/a@b");
    expect(maskUrlCredentials("/var/log/pods/x@y")).toBe("/var/log/pods/x@y");
    const masked = maskSecrets({ messenger: { baseUri: `https://${USER}:${PASSWORD}@m.example/`, apiKey: KEY }, list: [`http://a:${PASSWORD}@h/`] });
    expect(masked).toEqual({ messenger: { baseUri: "https://***:***@m.example/", apiKey: "***" }, list: ["http://***:***@h/"] });
    registerSecret("pk_registered_value_1");
    expect(redactSecrets('{"error":"sent pk_registered_value_1 to x"}')).toBe('{"error":"sent [redacted] to x"}');
  });

  test("an API key must fit an HTTP header: visible ASCII and spaces only", () => {
    expect(apiKeyProblem(KEY)).toBeNull();
    expect(apiKeyProblem("pk with spaces")).toBeNull();
    expect(apiKeyProblem("pk\nkey")).toContain("a line break");
    expect(apiKeyProblem("pk\rkey")).toContain("a line break");
    expect(apiKeyProblem("pk\tkey")).toContain("a control character");
    expect(apiKeyProblem("pk\u007fkey")).toContain("a control character");
    expect(apiKeyProblem("pkké")).toContain("a non-ASCII character");
    expect(apiKeyProblem("pk\u2028")).toContain("a non-ASCII character");
  });

  test("syntax errors name the line and column and never quote the file", () => {
    const cases: Array<[string, string, RegExp]> = [
      ["dup.yaml", `messenger:\n  apiKey: ${KEY}\n  apiKey: ${KEY}-2\n`, /line 3, column 3: a key is given twice/],
      ["comma.json", `{"messenger": {"apiKey": "${KEY}" "baseUri": "http://x"}}`, /line 1, column 53: unexpected text/],
      ["quote.yaml", `messenger:\n  apiKey: "${KEY}\n`, /line 3, column 1: a closing bracket, brace or quote is missing/],
      ["indent.yaml", `messenger:\n apiKey: ${KEY}\n  baseUri: http://x\n`, /line 2, column 10: /],
    ];
    for (const [name, text, want] of cases) {
      let message = "";
      try {
        readConfigFile(file(name, text));
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toMatch(want);
      expect(message).not.toContain(KEY);
      expect(message).not.toContain("apiKey");
    }
  });
});

describe("the CLI", () => {
  test("validate prints the config with the messenger and metadata URL credentials masked", async () => {
    const path = file(
      "creds.yaml",
      `messenger:\n  baseUri: https://${USER}:${PASSWORD}@messenger.example/api\n  apiKey: ${KEY}\nmetadata:\n  apiserverUrl: https://${USER}:${PASSWORD}@10.0.0.1:6443\n`,
    );
    const r = await cli(["validate", "--config", path]);
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.out);
    expect(printed.messenger.baseUri).toBe("https://***:***@messenger.example/api");
    expect(printed.metadata.apiserverUrl).toBe("https://***:***@10.0.0.1:6443");
    expect(printed.messenger.apiKey).toBe("***");
    for (const secret of [PASSWORD, USER, KEY]) expect(r.out + r.err).not.toContain(secret);
  }, 30_000);

  test("validate and run: a syntax error next to the key names line and column, never the key", async () => {
    const dup = file("cli-dup.yaml", `messenger:\n  baseUri: http://127.0.0.1:9\n  apiKey: ${KEY}\n  apiKey: ${KEY}-again\n`);
    const commaText = `{"messenger": {"baseUri": "http://127.0.0.1:9", "apiKey": "${KEY}" "concurrency": 2}}`;
    const comma = file("cli-comma.json", commaText);
    const commaColumn = commaText.indexOf('"concurrency"') + 1; // where the comma is missing
    const runs = await Promise.all([
      cli(["validate", "--config", dup]),
      cli(["run", "--config", dup]),
      cli(["validate", "--config", comma]),
      cli(["run", "--config", comma]),
    ]);
    for (const [i, r] of runs.entries()) {
      const context = `case ${i}: exit ${r.code}, stderr: ${r.err}`;
      expect(context).toBe(`case ${i}: exit 2, stderr: ${r.err}`);
      expect(r.err).toContain(i < 2 ? "line 4, column 3: a key is given twice" : `line 1, column ${commaColumn}: unexpected text`);
      expect(r.out + r.err).not.toContain(KEY);
    }
  }, 30_000);

  test("validate and run refuse a key from PIPEKIT_API_KEY that cannot go into a header, without printing it", async () => {
    const path = file("env-key.yaml", "messenger:\n  baseUri: http://127.0.0.1:9\n");
    const bad = "pk_env_first_half\npk_env_second_half";
    const runs = await Promise.all([cli(["validate", "--config", path], { PIPEKIT_API_KEY: bad }), cli(["run", "--config", path], { PIPEKIT_API_KEY: bad })]);
    for (const r of runs) {
      expect(r.code).toBe(2);
      expect(r.err).toContain("PIPEKIT_API_KEY");
      expect(r.err).toContain("messenger.apiKey");
      expect(r.err).toContain("a line break");
      expect(r.out + r.err).not.toContain("pk_env_first_half");
      expect(r.out + r.err).not.toContain("pk_env_second_half");
    }
  }, 30_000);

  test("run refuses a key file whose key cannot go into a header, naming the file and not the key", async () => {
    const keyFile = file("bad-api-key", "pk_file_first_half\npk_file_second_half\n");
    const path = runnableConfig("keyfile", `  baseUri: http://127.0.0.1:9\n  apiKeyFile: ${keyFile}`);
    const r = await cli(["run", "--config", path]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`messenger.apiKeyFile ${keyFile}: the key contains a line break`);
    expect(r.err).not.toContain("collector started");
    expect(r.out + r.err).not.toContain("pk_file_first_half");
    expect(r.out + r.err).not.toContain("pk_file_second_half");
  }, 30_000);
});

test("/status of a running collector masks the credentials of the messenger URL", async () => {
  const env = await setUp("secrets-status", 5);
  const url = new URL(env.messenger.url);
  const baseUri = `http://${USER}:${PASSWORD}@${url.host}`;
  const c = await startCollector(env, { messenger: { baseUri } });
  try {
    const status = await c.api.get("/status");
    expect(status.status).toBe(200);
    expect(status.body.config.messenger.baseUri).toBe(`http://***:***@${url.host}`);
    expect(status.body.sink.url).toStartWith(`http://${url.host}/`);
    const metrics = await c.api.get("/metrics");
    for (const secret of [PASSWORD, USER]) {
      expect(status.text).not.toContain(secret);
      expect(metrics.text).not.toContain(secret);
    }
  } finally {
    expect(await stopCollector(c)).toBe(0);
    for (const secret of [PASSWORD]) expect(c.stderr()).not.toContain(secret);
    await env.cleanup();
  }
}, 60_000);
