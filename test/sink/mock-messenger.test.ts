import { afterEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { gzipSync } from "node:zlib";
import { startMockMessenger, type MockMessenger } from "../../src/dev/mock-messenger.ts";
import { INGEST_PATH } from "../../src/sink/wire.ts";
import { makeRecord } from "./helpers.ts";

// Real HTTP and real files on a shared 2-core machine: generous limits, the assertions are about behaviour.
setDefaultTimeout(30_000);

let m: MockMessenger | undefined;
afterEach(async () => {
  await m?.stop();
  m = undefined;
});

const post = (url: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}) =>
  fetch(url + INGEST_PATH, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-pipekit-api-key": "k1", ...headers },
  });

describe("mock messenger", () => {
  test("accepts a valid batch, keeps it, counts duplicates", async () => {
    m = await startMockMessenger({ apiKey: "k1" });
    const batch = [makeRecord(1), makeRecord(2)];
    const r1 = await post(m.url, JSON.stringify(batch));
    expect(r1.status).toBe(200);
    expect(await r1.json()).toEqual({ accepted: 2 });
    await post(m.url, JSON.stringify([makeRecord(2)]));
    expect(m.received()).toEqual([...batch, makeRecord(2)]);
    const s = await (await fetch(m.url + "/stats")).json();
    expect(s).toMatchObject({ requests: 2, eventsReceived: 3, distinctEvents: 2, duplicateEvents: 1, byStatus: { "200": 2 } });
  });

  test("refuses a wrong key with 401 and an invalid record with 400 and a reason", async () => {
    m = await startMockMessenger({ apiKey: "k1" });
    expect((await post(m.url, "[]", { "x-pipekit-api-key": "nope" })).status).toBe(401);
    const extra = { ...makeRecord(1), extra: "field" };
    const r = await post(m.url, JSON.stringify([extra]));
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toContain("invalid batch at 0");
    const missing: Record<string, unknown> = { ...makeRecord(2) };
    delete missing.runUUID;
    const r2 = await post(m.url, JSON.stringify([missing]));
    expect(r2.status).toBe(400);
    expect((await post(m.url, "[{")).status).toBe(400);
    expect(m.received()).toEqual([]);
    expect(m.stats().byStatus).toEqual({ "401": 1, "400": 3 });
  });

  test("faults: fail rate with Retry-After, size limit, poison marker, forced status, gzip both ways", async () => {
    m = await startMockMessenger({ apiKey: "k1", faults: { failNext: 1, failStatus: 429, retryAfterSeconds: 3 } });
    const r = await post(m.url, JSON.stringify([makeRecord(1)]));
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("3");
    m.updateFaults({ failNext: 1, retryAfterFormat: "date" });
    const rd = await post(m.url, JSON.stringify([makeRecord(1)]));
    const when = Date.parse(rd.headers.get("retry-after") ?? "");
    expect(when - Date.now()).toBeGreaterThan(1000);
    expect(when - Date.now()).toBeLessThan(4000);

    m.setFaults({ maxBodyBytes: 100 });
    expect((await post(m.url, JSON.stringify([makeRecord(1)]))).status).toBe(413);
    m.setFaults({ poisonMarker: "POISON" });
    expect((await post(m.url, JSON.stringify([makeRecord(1, "a POISON b")]))).status).toBe(400);
    m.setFaults({ forceStatus: 404 });
    expect((await post(m.url, JSON.stringify([makeRecord(1)]))).status).toBe(404);
    m.setFaults({ gzipAnswers: true, requireGzip: true });
    expect((await post(m.url, JSON.stringify([makeRecord(1)]))).status).toBe(415);
    const gz = await post(m.url, gzipSync(JSON.stringify([makeRecord(7)])), { "content-encoding": "gzip" });
    expect(gz.status).toBe(200);
    expect(await gz.json()).toEqual({ accepted: 1 }); // fetch decodes the gzip answer
    expect(m.received()).toEqual([makeRecord(7)]);
    expect(m.stats().gzipRequests).toBe(1);
  });

  test("control endpoint changes faults at runtime and refuses unknown ones", async () => {
    m = await startMockMessenger({ apiKey: "k1" });
    const bad = await fetch(m.url + "/control/faults", { method: "POST", body: JSON.stringify({ failRat: 1 }) });
    expect(bad.status).toBe(400);
    const ok = await fetch(m.url + "/control/faults", { method: "POST", body: JSON.stringify({ rejectKeys: 403 }) });
    expect(ok.status).toBe(200);
    expect((await post(m.url, JSON.stringify([makeRecord(1)]))).status).toBe(403);
    await fetch(m.url + "/control/faults", { method: "POST", body: "{}" });
    await fetch(m.url + "/control/api-key", { method: "POST", body: JSON.stringify({ apiKey: "k2" }) });
    expect((await post(m.url, JSON.stringify([makeRecord(1)]))).status).toBe(401);
    expect((await post(m.url, JSON.stringify([makeRecord(1)]), { "x-pipekit-api-key": "k2" })).status).toBe(200);
  });

  test("hangs without answering until the client gives up, and answers in reverse order", async () => {
    m = await startMockMessenger({ apiKey: "k1", faults: { hangNext: 1 } });
    const hung = post(m.url, JSON.stringify([makeRecord(1)])).then((r) => r.status, (e: Error) => e.name);
    await new Promise((r) => setTimeout(r, 100));
    expect(m.stats().hanging).toBe(1);
    expect((await post(m.url, JSON.stringify([makeRecord(2)]))).status).toBe(200);
    await m.stop();
    await hung; // released by stop, never accepted
    expect(m.received().map((r) => r.message)).toEqual([makeRecord(2).message]);
    m = await startMockMessenger({ apiKey: "k1", faults: { reorderWindow: 3 } });
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3].map(async (i) => {
        await new Promise((r) => setTimeout(r, i * 20));
        const res = await post(m!.url, JSON.stringify([makeRecord(i)]));
        expect(res.status).toBe(200);
        order.push(i);
      }),
    );
    expect(order).toEqual([3, 2, 1]);
    expect(m.stats().reorderedAnswers).toBe(3);
  });

  test("garbage answer bodies", async () => {
    m = await startMockMessenger({ apiKey: "k1", faults: { garbageBody: true } });
    const r = await post(m.url, JSON.stringify([makeRecord(1)]));
    expect(r.status).toBe(200);
    await expect(r.clone().json()).rejects.toThrow();
    expect(m.received().length).toBe(1);
  });
});
