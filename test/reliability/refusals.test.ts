// Start refusals (issue 9, part 2): a data dir that cannot be written and a ring whose disk is nearly
// full must stop the collector at start with exit 2 and a message naming the problem — before
// anything is read (no checkpoint written, no file opened, nothing sent).
// Tests run as root, for whom permission bits mean nothing: unwritable is made with a read-only bind
// mount (and, without mount rights, a path under a regular file); a nearly full disk with a 2 MiB
// tmpfs. Both need CAP_SYS_ADMIN; without it those cases are skipped and say so.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSampleNode } from "../../src/dev/sample-node.ts";
import { type Env, makeEnv, sh } from "./support.ts";

let env: Env;
const mounts: string[] = [];
let canMount = false;

beforeAll(async () => {
  env = await makeEnv("refusal", (dir) => writeSampleNode(dir, { seed: 3, linesPerContainer: 20 }));
  const probe = join(env.dir, "mount-probe");
  mkdirSync(probe);
  canMount = sh(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]).ok;
  if (canMount) sh(["umount", probe]);
  else console.warn("refusals: cannot mount here (no CAP_SYS_ADMIN); the tmpfs and read-only bind mount cases are skipped");
});
afterAll(async () => {
  for (const m of mounts.reverse()) sh(["umount", "-l", m]);
  await env.cleanup();
});

async function refused(config: string): Promise<string> {
  const c = env.start(config);
  const code = await Promise.race([c.exited, Bun.sleep(20_000).then(() => -1)]);
  if (code === -1) c.proc.kill("SIGKILL");
  await Bun.sleep(50);
  const err = c.stderr();
  expect(code).toBe(2);
  expect(err).not.toContain("collector started");
  expect(env.messenger.stats().requests).toBe(0); // nothing sent
  return err;
}

describe("the data dir cannot be written", () => {
  test("a path under a regular file: exit 2 naming the dir, nothing read", async () => {
    const file = join(env.dir, "not-a-dir");
    writeFileSync(file, "x");
    const err = await refused(env.config({ dataDir: join(file, "data") }, "under-file.json"));
    expect(err).toContain(join(file, "data"));
    expect(err).toMatch(/ENOTDIR|not a directory|cannot create/i);
  });

  test("a read-only bind mount: exit 2 naming the dir, nothing read, nothing written", async () => {
    if (!canMount) return void console.warn("skipped: no mount rights");
    const ro = join(env.dir, "ro-data");
    mkdirSync(ro);
    expect(sh(["mount", "--bind", ro, ro]).ok).toBe(true);
    mounts.push(ro);
    expect(sh(["mount", "-o", "remount,ro,bind", ro]).ok).toBe(true);
    const err = await refused(env.config({ dataDir: ro }, "ro.json"));
    expect(err).toContain(ro);
    expect(err).toMatch(/EROFS|read-only|not writable/i);
    expect(readdirSync(ro)).toEqual([]); // no ring, no checkpoints, no lock file
  });
});

describe("the ring's disk is nearly full", () => {
  test("a 2 MiB tmpfs with 1.5 MiB used and a 4 MiB ring: exit 2 with a clear message, no partial ring file left", async () => {
    if (!canMount) return void console.warn("skipped: no mount rights");
    const small = join(env.dir, "small-disk");
    mkdirSync(small);
    expect(sh(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small]).ok).toBe(true);
    mounts.push(small);
    writeFileSync(join(small, "filler"), new Uint8Array(1536 * 1024));
    const dataDir = join(small, "data");
    const err = await refused(env.config({ dataDir, buffer: { maxBytes: "4MiB" }, source: { maxLineBytes: "32KiB" } }, "full.json"));
    expect(err).toContain(dataDir);
    expect(err).toMatch(/ENOSPC|no space|disk|cannot hold|space/i);
    const left = existsSync(dataDir) ? readdirSync(dataDir).filter((n) => n !== "lock" && !n.endsWith(".lock")) : [];
    expect(left.filter((n) => /ring/.test(n))).toEqual([]); // no half-created ring
  });

  test("the same disk with room for the ring: it starts and delivers (the refusal above was about space)", async () => {
    if (!canMount) return void console.warn("skipped: no mount rights");
    const small = mounts[mounts.length - 1]!;
    const c = env.start(env.config({ dataDir: join(small, "data2"), buffer: { maxBytes: "256KiB" }, source: { maxLineBytes: "32KiB" } }, "fits.json"));
    try {
      expect(await env.ready()).toBe(true);
      const ok = await Bun.sleep(0).then(async () => {
        const deadline = Date.now() + 15_000;
        while (Date.now() < deadline) {
          if (env.messenger.stats().distinctEvents > 0) return true;
          await Bun.sleep(100);
        }
        return false;
      });
      expect(ok).toBe(true);
    } finally {
      c.proc.kill("SIGTERM");
      await c.exited;
    }
  });
});
