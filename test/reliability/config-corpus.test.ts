// The config corpus (test/corpus/configs): every kind of wrong value, and every start-up check a
// config can fail. For each file, `validate` and `run` — the real process — must both refuse with
// exit 2 and the same message: one clear error naming the key (or the file) and the problem, no
// stack trace, no secret. And `run` must refuse before touching the disk: no ring, no lock file,
// no data dir or parent created.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { spawnCollector } from "../support/collector-process.ts";

const DIR = join(import.meta.dir, "../corpus/configs");
/** Where a config without a dataDir would put its data. */
const DEFAULT_DATA_DIR = "/var/lib/pipekit-log-collector";

interface Case {
  key?: string;
  keys?: string[];
  message: string;
  env?: Record<string, string>;
  secret?: string;
}
const cases = Object.entries(JSON.parse(readFileSync(join(DIR, "cases.json"), "utf8")) as Record<string, Case>).filter(([k]) => k !== "//");

/** The test's environment: a key, a node name, no messenger URL, not in a pod, no config from the environment. */
const BASE_ENV = {
  PIPEKIT_API_KEY: "k",
  PIPEKIT_MESSENGER_BASE_URI: "",
  NODE_NAME: "corpus",
  NODE_IP: "",
  KUBERNETES_SERVICE_HOST: "",
  KUBERNETES_SERVICE_PORT: "",
  PIPEKIT_COLLECTOR_CONFIG: "",
};

let root: string;
let corpusBefore: string[];
let defaultDataDirExisted: boolean;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "config-corpus-"));
  mkdirSync(join(root, "configs"));
  corpusBefore = listing(DIR);
  defaultDataDirExisted = existsSync(DEFAULT_DATA_DIR);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Every path under `dir`, relative, sorted. */
function listing(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** The case's file with @WORK@ and @CORPUS@ filled in, byte for byte otherwise; its path (for missing.yaml, a path that does not exist). */
function prepare(file: string, work: string): string {
  const path = join(root, "configs", file);
  if (!existsSync(join(DIR, file))) return path;
  const text = readFileSync(join(DIR, file), "latin1").replaceAll("@WORK@", work).replaceAll("@CORPUS@", DIR);
  writeFileSync(path, text, "latin1");
  return path;
}

async function cli(command: "validate" | "run", config: string, env: Record<string, string>) {
  const c = spawnCollector([command, "--config", config], env);
  const code = await Promise.race([c.exited, Bun.sleep(15_000).then(() => null)]);
  if (code === null) c.proc.kill("SIGKILL");
  const out = await new Response(c.proc.stdout).text();
  await Bun.sleep(20);
  return { code, out, err: c.stderr() };
}

test("the corpus covers every kind of wrong value and every start-up check", () => {
  expect(cases.length).toBeGreaterThanOrEqual(45);
});

// Four at a time: each is two process starts (~0.3 s each).
const groups: Array<typeof cases> = [];
for (let i = 0; i < cases.length; i += 4) groups.push(cases.slice(i, i + 4));

for (const group of groups) {
  test(`validate and run refuse alike, touching nothing: ${group.map(([f]) => f).join(", ")}`, async () => {
    await Promise.all(
      group.map(async ([file, want]) => {
        const work = join(root, basename(file).replace(/\.\w+$/, ""));
        mkdirSync(join(work, "data"), { recursive: true });
        const config = prepare(file, work);
        const before = listing(work);
        const env = { ...BASE_ENV, ...want.env };
        const validate = await cli("validate", config, env);
        const run = await cli("run", config, env);

        for (const [name, r] of [["validate", validate], ["run", run]] as const) {
          const context = `${file} ${name}: exit ${r.code}, stderr: ${r.err.slice(0, 600)}`;
          expect(context).toBe(`${file} ${name}: exit 2, stderr: ${r.err.slice(0, 600)}`);
          for (const key of want.keys ?? [want.key!]) expect(r.err.includes(key) ? "" : `${file} ${name}: message does not name ${key}: ${r.err}`).toBe("");
          expect(new RegExp(want.message, "is").test(r.err) ? "" : `${file} ${name}: message does not match /${want.message}/i: ${r.err}`).toBe("");
          expect(/\n\s+at /.test(r.err) ? `${file} ${name}: stack trace in ${r.err}` : "").toBe("");
          if (want.secret) expect(r.out + r.err).not.toContain(want.secret);
        }
        // The same refusal, word for word (but the disk's free space, which others change meanwhile): `valid` means `would start`.
        expect(validate.err.split("\n")[0]).toBe(run.err.split("\n")[0]);
        const steady = (err: string) => err.replace(/has \d+ bytes free/g, "has N bytes free");
        expect({ file, run: steady(run.err) }).toEqual({ file, run: steady(validate.err) });
        expect(validate.out).toBe(""); // no effective config printed for a refused one
        expect(run.err).not.toContain("collector started");
        // Nothing created or touched: the empty data dir stays empty (no ring, no lock), no new dir or parent.
        expect({ file, after: listing(work) }).toEqual({ file, after: before });
      }),
    );
  }, 60_000);
}

test("nothing was written into the corpus, nor at the default data dir", () => {
  expect(listing(DIR)).toEqual(corpusBefore);
  if (!defaultDataDirExisted) expect(existsSync(DEFAULT_DATA_DIR)).toBe(false);
});
