// The local API's probes and /status over real HTTP on 127.0.0.1: a failing probe names its cause,
// start-up says what it still waits for, `?pretty` indents /status; 200/503 as before.
import { afterEach, expect, test } from "bun:test";
import { LocalApi } from "../../src/api/server.ts";

let api: LocalApi | null = null;
afterEach(async () => {
  await api?.stop();
  api = null;
});

async function get(path: string): Promise<{ status: number; text: string; body: any; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${api!.port}${path}`);
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text), type: res.headers.get("content-type") };
}

test("while starting: /health 200, /ready 503 naming the steps left; after a failed start both 503 saying so", async () => {
  api = new LocalApi("127.0.0.1:0");
  expect(await get("/health")).toMatchObject({ status: 200, body: { ok: true } });
  expect(await get("/ready")).toMatchObject({ status: 503, body: { ready: false, waiting: ["start-up"] } });
  api.waitingFor(["ring open", "first metadata sync (metadata.provider static)", "first scan"]);
  expect((await get("/ready")).body).toEqual({ ready: false, waiting: ["ring open", "first metadata sync (metadata.provider static)", "first scan"] });
  expect((await get("/status")).body).toMatchObject({ phase: "starting", ready: false, waiting: ["ring open", "first metadata sync (metadata.provider static)", "first scan"] });
  api.abandon();
  expect(await get("/health")).toMatchObject({ status: 503, body: { ok: false, reasons: ["start-up failed; the process is exiting"] } });
  expect(await get("/ready")).toMatchObject({ status: 503, body: { ready: false, waiting: ["start-up failed; the process is exiting"] } });
});

test("attached: the collector's reasons are the bodies; an empty list is 200 with the plain body", async () => {
  api = new LocalApi("127.0.0.1:0");
  let notLive: string[] = [];
  let notReady: string[] = ["first scan"];
  api.attach({ notLive: () => notLive, notReady: () => notReady, status: () => ({ phase: "running" }) });
  expect(await get("/ready")).toMatchObject({ status: 503, body: { ready: false, waiting: ["first scan"] } });
  notReady = [];
  expect(await get("/ready")).toMatchObject({ status: 200, body: { ready: true } });
  expect((await get("/ready")).text).toBe('{"ready":true}');
  expect((await get("/health")).text).toBe('{"ok":true}');
  notLive = ["source loop stuck: handing lines to the ring for 75 s with room in the ring"];
  notReady = ["shutting down"];
  const health = await get("/health");
  expect(health.status).toBe(503);
  expect(health.text).toBe('{"ok":false,"reasons":["source loop stuck: handing lines to the ring for 75 s with room in the ring"]}');
  expect((await get("/ready")).text).toBe('{"ready":false,"waiting":["shutting down"]}');
});

test("/status is one line of JSON; ?pretty indents it (any value but 0 or false), same document", async () => {
  api = new LocalApi("127.0.0.1:0");
  const doc = { phase: "running", sink: { lastError: null, reasons: ["a", "b"] }, files: [{ path: "/x", lag: 0 }] };
  api.attach({ notLive: () => [], notReady: () => [], status: () => doc });
  const plain = await get("/status");
  expect(plain.text).toBe(JSON.stringify(doc));
  for (const query of ["?pretty", "?pretty=1", "?pretty=true"]) {
    const pretty = await get(`/status${query}`);
    expect(pretty.status).toBe(200);
    expect(pretty.text).toBe(JSON.stringify(doc, null, 2) + "\n");
    expect(pretty.type).toBe(plain.type);
  }
  for (const query of ["?pretty=0", "?pretty=false"]) expect((await get(`/status${query}`)).text).toBe(plain.text);
});
