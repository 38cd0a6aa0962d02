// The checkpoint file (issue 4 §3): written atomically — temp file, fsync, rename, fsync of the
// directory — checked syscall by syscall under strace; a damaged file never stops the collector.
// Needs strace (Debian: `apt-get install strace`).
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CheckpointStore } from "../../src/source/checkpoints.ts";
import { cleanupDirs, criLines, expectedMessages, Harness, podDir, tempDir, waitFor } from "./harness.ts";

afterAll(cleanupDirs);

test("checkpoints are written as temp file, fsync, rename, fsync of the directory (strace)", async () => {
  const strace = Bun.which("strace");
  if (!strace) throw new Error("strace is not installed (Debian: apt-get install strace); this test needs it");
  const dir = tempDir("cp-strace-");
  const trace = join(dir, "trace.txt");
  const proc = Bun.spawn(
    [strace, "-f", "-y", "-qq", "-e", "trace=openat,write,fsync,fdatasync,rename,renameat,renameat2,close", "-o", trace, process.execPath, join(import.meta.dir, "checkpoint-writer.ts"), dir],
    { stdout: "ignore", stderr: "pipe" },
  );
  const code = await proc.exited;
  if (code !== 0) throw new Error(`writer exited ${code}: ${await new Response(proc.stderr).text()}`);
  const final = join(dir, "checkpoints.json");
  const tmp = `${final}.tmp`;
  // The steps that concern our files, in order, as strace printed them.
  const steps: string[] = [];
  for (const line of readFileSync(trace, "utf8").split("\n")) {
    const call = line.replace(/^\d+\s+/, "");
    if (call.startsWith("openat(") && call.includes(`"${tmp}"`) && !call.includes("= -1")) steps.push("open tmp");
    else if (call.startsWith("write(") && call.includes(`<${tmp}>`)) steps.push("write tmp");
    else if (call.startsWith("fsync(") && call.includes(`<${tmp}>`)) steps.push("fsync tmp");
    else if (call.startsWith("close(") && call.includes(`<${tmp}>`)) steps.push("close tmp");
    else if (/^rename(at2?)?\(/.test(call) && call.includes(`"${tmp}"`) && call.includes(`"${final}"`)) steps.push("rename");
    else if (call.startsWith("fsync(") && call.includes(`<${dir}>`)) steps.push("fsync dir");
  }
  expect(steps.filter((s, i) => s !== steps[i - 1])).toEqual(["open tmp", "write tmp", "fsync tmp", "close tmp", "rename", "fsync dir"]);
  expect(JSON.parse(readFileSync(final, "utf8")).files[0].offset).toBe(5);
});

test("a damaged checkpoint file is reported; files follow readFrom and the file is rewritten whole", async () => {
  const h = Harness.create();
  writeFileSync(join(h.dataDir, "checkpoints.json"), '{"version":1,"files":[{"dev":1,');
  const path = join(podDir(h.root, "uid-dmg"), "0.log");
  writeFileSync(path, criLines("d", 0, 10));
  h.start();
  expect(await waitFor(() => h.received.length === 10, 2000)).toBe(true);
  expect(h.messages()).toEqual(expectedMessages("d", 0, 10));
  expect(h.log.lines.some((l) => l.level === "warn" && l.msg.includes("checkpoint file") && l.msg.includes("unreadable"))).toBe(true);
  await h.stop();
  const saved = new CheckpointStore(h.dataDir).load(() => {
    throw new Error("still damaged");
  });
  expect(saved.files.map((c) => [c.path, c.offset])).toEqual([[path, readFileSync(path).length]]);
});
