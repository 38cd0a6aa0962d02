import { afterEach, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataDirError, DataDirLockedError, lockDataDir } from "../../src/buffer/lock.ts";
import { cleanupDirs, tempDir } from "./helpers.ts";

afterEach(cleanupDirs);
const BUN = process.execPath;
const CHILD = join(import.meta.dir, "lock-child.ts");

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let s = "";
  while (!s.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    s += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return s.trim();
}

test("a second process on the same data dir is refused with exit 2 and a clear message", async () => {
  const dir = join(tempDir(), "data"); // does not exist yet: created
  const holder = Bun.spawn([BUN, CHILD, dir], { stdout: "pipe", stderr: "inherit" });
  try {
    expect(await firstLine(holder.stdout)).toBe("locked");
    const second = Bun.spawn([BUN, CHILD, dir], { stdout: "pipe", stderr: "pipe" });
    expect(await second.exited).toBe(2);
    const err = await new Response(second.stderr).text();
    expect(err).toContain(dir);
    expect(err).toContain("in use by another");
    // This process is refused too.
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
  } finally {
    holder.kill("SIGKILL");
    await holder.exited;
  }
  // The kernel released the dead holder's lock.
  const lock = lockDataDir(dir);
  expect(() => lockDataDir(dir)).toThrow(DataDirLockedError); // a second open in one process too
  lock.release();
  lockDataDir(dir).release();
});

test("an unusable data dir gives a DataDirError naming it", () => {
  const base = tempDir();
  const file = join(base, "plain-file");
  writeFileSync(file, "x");
  expect(() => lockDataDir(join(file, "sub"))).toThrow(DataDirError);
  if (process.getuid?.() !== 0) {
    const ro = join(base, "ro");
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    expect(() => lockDataDir(ro)).toThrow(/not writable/);
  }
});
