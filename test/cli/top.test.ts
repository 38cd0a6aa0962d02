// `top` and `status` against a real collector (a process, on a sample node, delivering to the mock
// messenger): `top` runs under a real terminal, a tmux pane whose screen the test reads; `status`
// and the "nothing answers" case run as plain processes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Env, freePort, setUp, startCollector, stopCollector, waitFor } from "../ops/harness.ts";
import { collectorCommand } from "../support/collector-process.ts";

const TMUX = Bun.which("tmux");
if (!TMUX) console.warn("tmux is not installed (.ci/run installs it): the terminal test of top is skipped");

let env: Env;
let collector: Awaited<ReturnType<typeof startCollector>>;
let url: string;
beforeAll(async () => {
  env = await setUp("top", 200);
  collector = await startCollector(env);
  url = `http://127.0.0.1:${collector.port}`;
}, 30_000);
afterAll(async () => {
  if (collector.proc.exitCode === null) await stopCollector(collector);
  await env.cleanup();
});

/** The CLI as a process; asynchronous, so that a server in this test process can answer it. */
async function cli(args: string[]) {
  const p = Bun.spawn([...collectorCommand(), ...args], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe("status", () => {
  test("one plain reading of the live collector", async () => {
    const r = await cli(["status", "--url", url]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`at ${url} · running · ready`);
    expect(r.out).toMatch(/^health {4}healthy$/m);
    expect(r.out).toMatch(/^metadata {2}static {2}synced {2}pods \d+/m);
    expect(r.out).toMatch(/^files {5}\d+ followed/m);
    const pod = env.node.pods.find((p) => p.expected === "delivered")!;
    expect(r.out).toContain(`${pod.namespace}/${pod.name}/`);
    expect(r.out).not.toContain("\x1b["); // plain text, no terminal control
  });

  test("--json prints the /status JSON, indented", async () => {
    const r = await cli(["status", "--url", url, "--json"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('\n  "pipeline": {');
    expect(JSON.parse(r.out).pipeline.healthy).toBe(true);
  });
});

describe("nothing answers", () => {
  for (const command of ["top", "status"]) {
    test(`${command}: a clear message and exit 1`, async () => {
      const port = await freePort();
      const r = await cli([command, "--url", `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.out).toBe("");
      expect(r.err).toContain(`${command}: nothing answers at http://127.0.0.1:${port} (connection refused)`);
      expect(r.err).toContain("Is the collector running?");
    });
  }

  test("something that is not the collector's API is named as such", async () => {
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("<html>", { status: 404 }) });
    try {
      const r = await cli(["status", "--url", `http://127.0.0.1:${other.port}`]);
      expect(r.code).toBe(1);
      expect(r.err).toContain("/status answered HTTP 404, not JSON: is this a pipekit-log-collector's API?");
    } finally {
      await other.stop(true);
    }
  });
});

describe.skipIf(!TMUX)("top in a terminal (tmux)", () => {
  const socket = `plc-top-${process.pid}`;
  const tmux = (...args: string[]) => {
    const r = Bun.spawnSync([TMUX!, "-L", socket, "-f", "/dev/null", ...args], { stdout: "pipe", stderr: "pipe" });
    return r.stdout.toString();
  };
  const screen = () => tmux("capture-pane", "-p", "-t", "top");
  const waitScreen = async (pattern: RegExp, timeoutMs = 15_000) => {
    const ok = await waitFor(() => pattern.test(screen()), timeoutMs, 100);
    if (!ok) throw new Error(`the screen never showed ${pattern}:\n${screen()}`);
  };

  afterAll(() => {
    tmux("kill-server"); // this test's own tmux server, by its socket
  });

  test("shows the live node, redraws every second, says when it stops answering, quits on q", async () => {
    const command = [...collectorCommand(), "top", "--url", url].map((a) => `'${a}'`).join(" ");
    tmux("new-session", "-d", "-x", "140", "-y", "40", "-s", "top", `${command}; echo "top exited $?"; sleep 60`);

    await waitScreen(/^health {4}healthy/m);
    const first = screen();
    expect(first).toContain(`pipekit-log-collector`);
    expect(first).toContain(`at ${url} · running · ready`);
    expect(first).toMatch(/^ring {6}.* of .*\[[#-]+\]/m);
    expect(first).toMatch(/^messenger in flight \d+ {2}waiting \d+ {2}last success/m);
    expect(first).toMatch(/^metadata {2}static {2}synced/m);
    expect(first).toMatch(/^files {5}\d+ followed, most lag first/m);
    expect(first).toMatch(/q quits · every 1 s/);
    const pod = env.node.pods.find((p) => p.expected === "delivered")!;
    expect(first).toContain(`${pod.namespace}/${pod.name}/`);

    // Lines written now show as events per second in and out.
    const writer = setInterval(() => env.node.appendLines(20), 200);
    try {
      await waitScreen(/in [1-9][\d.]* ?k?\/s {2}out [1-9]/);
    } finally {
      clearInterval(writer);
    }

    // The collector goes away: the view stays, and says so.
    expect(await stopCollector(collector)).toBe(0);
    await waitScreen(/NOT ANSWERING since .*: nothing answers at/);
    expect(screen()).toMatch(/^health {4}healthy/m);

    tmux("send-keys", "-t", "top", "q");
    await waitScreen(/^top exited 0$/m);
    // Back on the main screen: the view is gone with the alternate screen.
    expect(screen()).not.toContain("most lag first");
  }, 60_000);
});
