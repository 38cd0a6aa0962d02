// The config corpus (test/corpus/configs): every kind of wrong value. Each file must make the real
// process refuse to start — exit 2, one clear message naming the key (or the file) and the problem,
// no stack trace — before anything is read or sent.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnCollector } from "../support/collector-process.ts";

const DIR = join(import.meta.dir, "../corpus/configs");
const cases = Object.entries(JSON.parse(readFileSync(join(DIR, "cases.json"), "utf8")) as Record<string, { key: string; message: string }>).filter(([k]) => k !== "//");

test("the corpus covers every kind of wrong value", () => {
  expect(cases.length).toBeGreaterThanOrEqual(25);
});

// Four at a time: each is a process start (~0.3 s).
const groups: Array<typeof cases> = [];
for (let i = 0; i < cases.length; i += 4) groups.push(cases.slice(i, i + 4));

for (const group of groups) {
  test(`refused with exit 2 and a clear message: ${group.map(([f]) => f).join(", ")}`, async () => {
    await Promise.all(
      group.map(async ([file, want]) => {
        // An unused port and an unreachable messenger: a config that slipped through would still start.
        const c = spawnCollector(["run", "--config", join(DIR, file)], { PIPEKIT_API_KEY: "k", PIPEKIT_MESSENGER_BASE_URI: "", NODE_NAME: "corpus" });
        const code = await Promise.race([c.exited, Bun.sleep(15_000).then(() => null)]);
        if (code === null) c.proc.kill("SIGKILL");
        await Bun.sleep(20);
        const err = c.stderr();
        const context = `${file}: exit ${code}, stderr: ${err.slice(0, 600)}`;
        expect(context).toBe(`${file}: exit 2, stderr: ${err.slice(0, 600)}`);
        expect(err.includes(want.key) ? "" : `${file}: message does not name ${want.key}: ${err}`).toBe("");
        expect(new RegExp(want.message, "i").test(err) ? "" : `${file}: message does not match /${want.message}/i: ${err}`).toBe("");
        expect(/\n\s+at /.test(err) ? `${file}: stack trace in ${err}` : "").toBe("");
        expect(err).not.toContain("collector started");
      }),
    );
  }, 30_000);
}
