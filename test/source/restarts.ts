// One collector across restarts for the checkpoint tests: harnesses over one data dir, the
// checkpoints it saved, compression as the kubelet does it, and two restart scenarios they share.
import { expect } from "bun:test";
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { cri, duplicates, Harness, podDir, rotationStamp, tempDir, waitFor } from "./harness.ts";

/** The harnesses started in the running test: each test file's afterEach stops them (stopRunning). */
export const running: Harness[] = [];

export async function stopRunning(): Promise<void> {
  for (const h of running.splice(0)) await h.stop().catch(() => {});
}

/** Two harnesses over one dir are one collector before and after a restart. */
export function collector(over: Record<string, unknown> = {}) {
  const dir = tempDir();
  let h = Harness.create(over, dir);
  const all: string[] = [];
  return {
    get h() {
      return h;
    },
    root: h.root,
    start() {
      h.start();
      running.push(h);
      return h;
    },
    /** Restart: a new Source over the same files and data dir. */
    next() {
      all.push(...h.messages());
      h = new Harness(h.root, h.dataDir, h.config);
      return h;
    },
    /** Restart and start: the next harness, running. */
    restart() {
      this.next();
      return this.start();
    },
    allMessages: () => [...all, ...h.messages()],
  };
}

export function savedCheckpoints(dataDir: string): Array<{ ino: number; offset: number; size?: number; path: string }> {
  return JSON.parse(readFileSync(join(dataDir, "checkpoints.json"), "utf8")).files;
}

export function gzipAway(path: string): void {
  writeFileSync(path + ".gz", gzipSync(readFileSync(path)));
  unlinkSync(path);
}

/**
 * A first run reads "a" and a line split across a rotation ("head|" in the rotated file, "tail" in
 * the live one), then "b", and stops; its record of the rotated file is then dropped (as when it was
 * forgotten, or its last save came before it): only the live file's checkpoint, at its end, is left.
 * Returns the live file's path.
 */
export async function splitAcrossRotationRotatedForgotten(c: ReturnType<typeof collector>, uid: string): Promise<string> {
  const live = join(podDir(c.root, uid), "0.log");
  writeFileSync(live, cri("a") + cri("head|", "stdout", "P"));
  c.start();
  expect(await waitFor(() => c.h.received.length === 1, 2000)).toBe(true);
  renameSync(live, `${live}.${rotationStamp()}`);
  writeFileSync(live, cri("tail") + cri("b"));
  expect(await waitFor(() => c.h.received.length === 3, 3000)).toBe(true);
  await c.h.stop();
  const saved = JSON.parse(readFileSync(join(c.h.dataDir, "checkpoints.json"), "utf8"));
  saved.files = saved.files.filter((f: { ino: number }) => f.ino === statSync(live).ino);
  writeFileSync(join(c.h.dataDir, "checkpoints.json"), JSON.stringify(saved));
  return live;
}

/**
 * Once the checkpoints say the live file was read to its end, a crash: the next process reads nothing
 * again (its rotated files, compressed or not, are known as read), and nothing arrived twice.
 */
export async function crashAtLiveEndReadsNothingAgain(c: ReturnType<typeof collector>, live: string): Promise<void> {
  const size = statSync(live).size;
  expect(await waitFor(() => savedCheckpoints(c.h.dataDir).some((cp) => cp.path === live && cp.offset === size), 2000)).toBe(true);
  await c.h.crash();
  const second = c.restart();
  await Bun.sleep(300);
  expect(second.received.length).toBe(0);
  expect(duplicates(c.allMessages())).toEqual([]);
}
