// The fake must speak the real API: shapes, status codes, watch semantics.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { summarise } from "../support/apiserver-accounting.ts";
import { FakeApiServer, parseLabelSelector } from "../support/fake-apiserver.ts";
import { makePod } from "../support/podlist.ts";
import { Harness } from "./k8s-harness.ts";

const h = new Harness();
beforeAll(() => h.init());
afterEach(() => h.cleanup());
afterAll(() => h.dispose());

const get = (url: string, token = "t") => fetch(url, { headers: { Authorization: `Bearer ${token}` }, tls: { ca: h.pki.ca.cert } } as RequestInit);

async function readLines(res: Response, n: number): Promise<Array<{ type: string; object: any }>> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const out: Array<{ type: string; object: any }> = [];
  while (out.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      out.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  }
  await reader.cancel();
  return out;
}

describe("fake API server wire format", () => {
  test("401 and 404 answer a v1 Status", async () => {
    const api = await h.apiServer(["t"]);
    const r401 = await get(`${api.url}/api/v1/pods`, "bad");
    expect(r401.status).toBe(401);
    expect(await r401.json()).toEqual({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 });
    const r404 = await get(`${api.url}/api/v1/nodes`);
    expect(r404.status).toBe(404);
    expect(((await r404.json()) as any).reason).toBe("NotFound");
    const r400 = await get(`${api.url}/api/v1/pods?fieldSelector=spec.bogus%3Dx`);
    expect(r400.status).toBe(400);
  });

  test("list: PodList with resourceVersion, field and label selectors, namespaced path", async () => {
    const api = await h.apiServer(["t"]);
    api.createPod(makePod({ name: "a", namespace: "argo", nodeName: "n1", labels: { app: "x", tier: "1" } }));
    api.createPod(makePod({ name: "b", namespace: "argo", nodeName: "n2", labels: { app: "y" } }));
    api.createPod(makePod({ name: "c", namespace: "kube-system", nodeName: "n1", labels: {} }));
    const list: any = await (await get(`${api.url}/api/v1/pods?fieldSelector=spec.nodeName%3Dn1`)).json();
    expect(list.kind).toBe("PodList");
    expect(list.apiVersion).toBe("v1");
    expect(list.metadata.resourceVersion).toBe(api.resourceVersion);
    expect(list.items.map((p: any) => p.metadata.name)).toEqual(["a", "c"]);
    const byLabel: any = await (await get(`${api.url}/api/v1/pods?labelSelector=${encodeURIComponent("app in (x,y),!tier")}`)).json();
    expect(byLabel.items.map((p: any) => p.metadata.name)).toEqual(["b"]);
    const ns: any = await (await get(`${api.url}/api/v1/namespaces/kube-system/pods`)).json();
    expect(ns.items.map((p: any) => p.metadata.name)).toEqual(["c"]);
  });

  test("watch from 0: synthetic ADDED, then live events; a pod bound to the node later arrives as ADDED", async () => {
    const api = await h.apiServer(["t"]);
    api.createPod(makePod({ name: "a", nodeName: "n1" }));
    const unbound = api.createPod(makePod({ name: "pending" }));
    const res = await get(`${api.url}/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1&resourceVersion=0`);
    expect(res.headers.get("content-type")).toBe("application/json");
    const lines = readLines(res, 3);
    await Bun.sleep(50);
    api.updatePod(unbound.metadata.uid, (p) => (p.spec.nodeName = "n1"));
    api.deletePod(unbound.metadata.uid);
    const ev = await lines;
    expect(ev.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["ADDED a", "ADDED pending", "DELETED pending"]);
    expect(ev[0]!.object.kind).toBe("Pod");
  });

  test("watch from a compacted resourceVersion: ERROR with a 410 Expired Status", async () => {
    const api = await h.apiServer(["t"]);
    api.createPod(makePod({ name: "a" }));
    const old = api.resourceVersion;
    api.createPod(makePod({ name: "b" }));
    api.compact();
    const ev = await readLines(await get(`${api.url}/api/v1/pods?watch=true&resourceVersion=${Number(old) - 1}`), 1);
    expect(ev[0]!.type).toBe("ERROR");
    expect(ev[0]!.object).toMatchObject({ kind: "Status", status: "Failure", reason: "Expired", code: 410 });
  });

  test("label selector grammar", () => {
    const pod = makePod({ name: "p", labels: { a: "1", b: "" } });
    const m = (s: string) => parseLabelSelector(s)(pod);
    expect([m("a"), m("a=1"), m("a==1"), m("a!=2"), m("!c"), m("a in (1,2)"), m("a notin (2)"), m("b")]).toEqual([true, true, true, true, true, true, true, true]);
    expect([m("c"), m("a=2"), m("!a"), m("a in (2)"), m("a,c")]).toEqual([false, false, false, false, false]);
  });

  test("watch-list: the current pods as ADDED, the initial-events-end BOOKMARK at the list's resourceVersion, then live events", async () => {
    const api = await h.apiServer(["t"]);
    api.createPod(makePod({ name: "a", nodeName: "n1" }));
    api.createPod(makePod({ name: "b", nodeName: "n2" }));
    const rv = api.resourceVersion;
    const q = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=0&fieldSelector=spec.nodeName%3Dn1";
    const lines = readLines(await get(`${api.url}/api/v1/pods?${q}`), 3);
    await Bun.sleep(50);
    api.createPod(makePod({ name: "c", nodeName: "n1" }));
    const ev = await lines;
    expect(ev.map((e) => `${e.type} ${e.object.metadata.name ?? ""}`)).toEqual(["ADDED a", "BOOKMARK ", "ADDED c"]);
    expect(ev[1]!.object.metadata).toEqual({ resourceVersion: rv, annotations: { "k8s.io/initial-events-end": "true" } });
  });

  test("validation: watch-list needs NotOlderThan; a server without it answers 422 Invalid; resourceVersionMatch rules of lists", async () => {
    const modern = await h.apiServer(["t"]);
    const old = await h.apiServer(["t"], { watchList: false });
    const wl = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0";
    const r1 = await get(`${old.url}/api/v1/pods?${wl}`);
    expect(r1.status).toBe(422);
    expect(((await r1.json()) as any).message).toContain("WatchList feature gate");
    expect((await get(`${modern.url}/api/v1/pods?watch=true&sendInitialEvents=true`)).status).toBe(422);
    expect((await get(`${modern.url}/api/v1/pods?watch=true&resourceVersionMatch=NotOlderThan&resourceVersion=5`)).status).toBe(422);
    expect((await get(`${modern.url}/api/v1/pods?resourceVersionMatch=NotOlderThan`)).status).toBe(422);
    expect((await get(`${modern.url}/api/v1/pods?resourceVersionMatch=Exact&resourceVersion=0`)).status).toBe(422);
    const future = await get(`${modern.url}/api/v1/pods?resourceVersionMatch=NotOlderThan&resourceVersion=999999`);
    expect(future.status).toBe(504);
    expect(((await future.json()) as any).details.causes[0].reason).toBe("ResourceVersionTooLarge");
  });

  test("a restart: connections cut, a fresh watch cache; a watch resumed from before gets 410", async () => {
    const api = await h.apiServer(["t"]);
    api.createPod(makePod({ name: "a" }));
    const rv = api.resourceVersion;
    const res = await get(`${api.url}/api/v1/pods?watch=true&resourceVersion=${rv}`);
    const reader = res.body!.getReader();
    const cut = reader.read().then(
      (r) => (r.done ? "ended" : "data"),
      () => "reset",
    );
    await api.restart(50);
    expect(await cut).toBe("reset");
    const ev = await readLines(await get(`${api.url}/api/v1/pods?watch=true&resourceVersion=${rv}`), 1);
    expect(ev[0]!.object).toMatchObject({ code: 410, reason: "Expired" });
  });

  test("accounting: which requests would read etcd, per node, bytes, the peak rate", async () => {
    const now = { t: 0 };
    const clock = { now: () => now.t, after: () => ({ cancel() {} }), every: () => ({ cancel() {} }), soon: (fn: () => void) => fn() };
    for (const fromCache of [false, true]) {
      now.t = 0;
      const api = FakeApiServer.inProcess({ tokens: ["t"], consistentListFromCache: fromCache, clock });
      api.createPod(makePod({ name: "a", nodeName: "n1" }));
      const ask = async (q: string) => (await api.fetch(`${api.url}/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&${q}`, { headers: { Authorization: "Bearer t" } })).text();
      await ask("resourceVersion=0");
      await ask(`resourceVersion=${api.resourceVersion}&resourceVersionMatch=NotOlderThan`);
      await ask(""); // consistent
      await ask(`resourceVersion=${api.resourceVersion}&resourceVersionMatch=Exact`);
      await ask(`limit=1&resourceVersion=${api.resourceVersion}`); // paged, from a resourceVersion
      now.t = 5000;
      await ask("limit=500"); // paged and consistent
      expect(api.requests.map((r) => r.etcd)).toEqual(fromCache ? [false, false, false, false, false, false] : [false, false, true, true, true, true]);
      expect(api.requests.every((r) => r.node === "n1" && r.kind === "list" && r.bytes > 100)).toBe(true);
      const s = summarise(api.requests);
      expect(s).toMatchObject({ requests: 6, lists: 6, etcdLists: fromCache ? 0 : 4, peakPerSecond: 5, firstAt: 0, lastAt: 5000 });
    }
  });

  test("in-process fetch: a refused connection while down, a watch stream cut like a reset", async () => {
    const api = FakeApiServer.inProcess({ tokens: ["t"] });
    const res = await api.fetch(`${api.url}/api/v1/pods?watch=true&resourceVersion=0`, { headers: { Authorization: "Bearer t" } });
    const reader = res.body!.getReader();
    await api.down();
    await expect(reader.read()).rejects.toThrow(/closed unexpectedly/);
    await expect(api.fetch(`${api.url}/api/v1/pods`, { headers: { Authorization: "Bearer t" } })).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await api.up();
    expect((await api.fetch(`${api.url}/api/v1/pods`, { headers: { Authorization: "Bearer t" } })).status).toBe(200);
  });
});
