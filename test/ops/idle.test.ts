// With nothing written, the process stays quiet: counted with strace as the epoll waits of every
// thread of a spawned collector following 50 quiet files, its keep-alive connection to the
// messenger open. Measured: bare Bun ~1.2/s; this collector ~2/s with no connection and ~6/s with
// one (Bun's HTTP client pool, not our timers, whose total is ~0.8/s). prom-client's default
// collectors once made it ~100/s: that class of regression is what this catches.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMockMessenger } from "../../src/dev/mock-messenger.ts";
import { argoPod, podListJson, prng } from "../../src/dev/sample-node.ts";
import { freePort, spawnCollector, waitFor, writeJson } from "../support/collector-process.ts";

const strace = Bun.which("strace");

test.skipIf(!strace)("an idle collector with 50 quiet files wakes at most ~10 times a second, all threads together", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pipekit-idle-"));
  const messenger = await startMockMessenger({ apiKey: "k" });
  const rand = prng(3);
  const pods = Array.from({ length: 25 }, (_, i) => argoPod(rand, `wf-${i}`, "step", ["wait", "main"]));
  let lines = 0;
  for (const p of pods) {
    for (const c of p.containers) {
      const d = join(dir, "pods", `${p.namespace}_${p.name}_${p.uid}`, c);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, "0.log"), `2026-11-24T19:02:13.000000001Z stdout F hello from ${p.name}/${c}\n`);
      lines++;
    }
  }
  writeFileSync(join(dir, "pods.json"), podListJson(pods));
  const port = await freePort();
  const config = writeJson(join(dir, "config.json"), {
    dataDir: join(dir, "data"),
    source: { root: join(dir, "pods"), maxLineBytes: "64KiB" },
    metadata: { provider: "static", podsFile: join(dir, "pods.json") },
    buffer: { maxBytes: "4MiB" },
    messenger: { baseUri: messenger.url },
    api: { address: `127.0.0.1:${port}` },
  });
  const c = spawnCollector(["run", "--config", config], { PIPEKIT_API_KEY: "k" });
  try {
    expect(await waitFor(() => messenger.stats().distinctEvents === lines, 20_000)).toBe(true);
    // Let start-up garbage collection settle, then count for 5 s.
    await Bun.sleep(Number(process.env.IDLE_SETTLE_MS ?? 12_000));
    const out = join(dir, "strace.txt");
    const s = Bun.spawn([strace!, "-f", "-p", String(c.proc.pid), "-e", "trace=epoll_pwait2,epoll_pwait,epoll_wait", "-o", out], {
      stdout: "ignore",
      stderr: "ignore",
    });
    await Bun.sleep(5000);
    s.kill("SIGINT");
    await s.exited;
    const waits = readFileSync(out, "utf8").split("\n").filter((l) => /epoll_p?wait2?\(/.test(l)).length;
    console.log(`idle: ${waits} epoll waits in 5 s across all threads`);
    if (process.env.IDLE_DEBUG) console.log(readFileSync(out, "utf8"));
    expect(waits).toBeGreaterThan(0); // strace really attached
    expect(waits).toBeLessThanOrEqual(50);
  } finally {
    c.proc.kill("SIGTERM");
    await c.exited;
    await messenger.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
