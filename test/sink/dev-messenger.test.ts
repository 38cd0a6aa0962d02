// `pipekit-log-collector dev-messenger` as a real process: prints its URL, serves, applies fault
// flags, exits 0 on SIGTERM, and refuses bad flags with status 2.
import { expect, test, setDefaultTimeout } from "bun:test";
import { makeRecord } from "./helpers.ts";

// Real HTTP and real files on a shared 2-core machine: generous limits, the assertions are about behaviour.
setDefaultTimeout(30_000);

const BUN = process.execPath;

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.split("\n")[0]!;
}

test("dev-messenger runs on its own with fault flags until SIGTERM", async () => {
  const proc = Bun.spawn([BUN, "src/main.ts", "dev-messenger", "--port", "0", "--api-key", "cli-key", "--poison-marker", "BAD"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    const line = await firstLine(proc.stdout);
    const url = /listening on (http:\/\/\S+)/.exec(line)?.[1];
    expect(url).toBeDefined();
    const post = (body: unknown, key = "cli-key") =>
      fetch(`${url}/api/messenger/v1/logs/ingest/batch`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json", "x-pipekit-api-key": key },
      });
    expect((await post([makeRecord(1)])).status).toBe(200);
    expect((await post([makeRecord(2, "BAD")])).status).toBe(400);
    expect((await post([makeRecord(3)], "wrong")).status).toBe(401);
    const stats = (await (await fetch(`${url}/stats`)).json()) as { eventsReceived: number; byStatus: Record<string, number> };
    expect(stats.eventsReceived).toBe(1);
    expect(stats.byStatus).toEqual({ "200": 1, "400": 1, "401": 1 });
    const patched = await fetch(`${url}/control/faults`, { method: "PATCH", body: JSON.stringify({ forceStatus: 503 }) });
    expect(patched.status).toBe(200);
    expect((await post([makeRecord(4)])).status).toBe(503);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  } finally {
    proc.kill("SIGKILL");
  }
});

test("dev-messenger refuses a bad flag with status 2 and a message", async () => {
  const proc = Bun.spawn([BUN, "src/main.ts", "dev-messenger", "--fail-rate", "2"], { stdout: "pipe", stderr: "pipe" });
  expect(await proc.exited).toBe(2);
  expect(await new Response(proc.stderr).text()).toContain("failRate must be between 0 and 1");
});
