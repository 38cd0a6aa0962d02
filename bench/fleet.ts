// `npm run fleet` — what many nodes' metadata providers do to one API server (issue 18): N nodes'
// real apiserver providers against the fake API server, on a virtual clock, in one process; then
// the kubelet provider's per-node cost. One table row per scenario and server kind:
//
//   requests/node, bytes/node (API server → nodes), lists that would reach etcd, the peak request
//   rate the API server saw (most requests within one second), and, after an API server restart
//   or a 410 for every watch, how the nodes' resyncs spread out in time.
//
//   npm run fleet                          # 1,000 nodes × 30 pods, every scenario
//   npm run fleet -- --nodes 5000          # more nodes
//   npm run fleet -- steady gone           # some scenarios: steady restart gone churn kubelet
//   npm run fleet -- --churn-minutes 3 --kubelet-nodes 100 --seed 2   (kubelet nodes default to --nodes)
//
// Servers: "watch-list" serves watch-lists (Kubernetes 1.32 and ≥ 1.34); "list+watch" does not
// (1.33 by default, ≤ 1.31), and neither serves consistent lists from its cache (before 1.34, or
// 1.31–1.33 with ConsistentListFromCache off) — the servers where a consistent list reads etcd.
import { cpus } from "node:os";
import { type Figures, ApiserverFleet, KubeletFleet, type Mark, type ServerKind } from "./lib/fleet-sim.ts";

const argv = process.argv.slice(2);
const value = (name: string, def: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? Number(argv[i + 1]) : def;
};
const NODES = value("nodes", 1000);
const PODS = value("pods", 30);
const SEED = value("seed", 1);
const CHURN_MINUTES = value("churn-minutes", 10);
const KUBELET_NODES = value("kubelet-nodes", NODES);
const ALL = ["steady", "restart", "gone", "churn", "kubelet"];
const chosen = argv.filter((a, i) => !a.startsWith("--") && !argv[i - 1]?.startsWith("--"));
const scenarios = chosen.length > 0 ? chosen : ALL;
for (const s of scenarios) if (!ALL.includes(s)) throw new Error(`unknown scenario ${s} (${ALL.join(", ")})`);

const MIN = 60_000;
const WATCH_LIST: ServerKind = { watchList: true, consistentListFromCache: false };
const LIST_WATCH: ServerKind = { watchList: false, consistentListFromCache: false };
const serverName = (s: ServerKind) => (s.watchList ? "watch-list" : "list+watch");

interface Row {
  scenario: string;
  server: string;
  window: string;
  f: Figures;
  spread?: string;
  note?: string;
  /** Nodes whose cache matched the API server at the end of the scenario. */
  inSync?: number;
}
const rows: Row[] = [];

const fmt = (n: number, digits = 2) => (Number.isInteger(n) ? String(n) : n.toFixed(digits));
const kb = (n: number) => (n >= 10 * 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 10_240 ? `${(n / 1024).toFixed(0)} KiB` : `${(n / 1024).toFixed(1)} KiB`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function spread(delays: number[], nodes: number): string {
  if (delays.length === 0) return "none";
  const q = (p: number) => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))]!;
  const missing = nodes - delays.length;
  return `${secs(delays[0]!)} … ${secs(q(0.5))} … ${secs(delays.at(-1)!)}` + (missing > 0 ? ` (${missing} nodes none)` : "");
}

async function fleet(server: ServerKind): Promise<{ f: ApiserverFleet; synced: Mark; started: Mark }> {
  const f = new ApiserverFleet(NODES, PODS, server, SEED);
  const started = f.mark();
  await f.start();
  const synced = await f.runFor(1000);
  return { f, synced, started };
}

async function steady(): Promise<void> {
  const { f, started, synced } = await fleet(WATCH_LIST);
  rows.push({ scenario: "first sync (every node at once)", server: "watch-list", window: "start", f: f.figures(started, synced) });
  const tenMinutes = await f.runFor(10 * MIN - 1000);
  rows.push({ scenario: "steady state", server: "watch-list", window: "10 min", f: f.figures(synced, tenMinutes), note: "beyond the first sync" });
  const twoHours = await f.runFor(110 * MIN);
  const perHour = f.figures(synced, twoHours);
  for (const k of ["requestsPerNode", "listsPerNode", "watchesPerNode", "watchListsPerNode", "bytesPerNode"] as const) perHour[k] /= 2;
  rows.push({ scenario: "steady state, per hour", server: "watch-list", window: "2 h ÷ 2", f: perHour, note: "watch renewals (1–2 h timeouts) and bookmarks", inSync: f.nodesInSync() });
  await f.stop();
}

async function restart(server: ServerKind): Promise<void> {
  const { f } = await fleet(server);
  await f.runFor(MIN);
  const down = f.mark();
  const downForMs = 20_000;
  const restarted = f.api.restart(downForMs);
  f.replaceOnePodPerNode();
  const up = await f.runFor(downForMs);
  await restarted;
  const end = await f.runFor(5 * MIN);
  rows.push({
    scenario: `API server restart (down ${downForMs / 1000} s)`,
    server: serverName(server),
    window: "5 min after",
    f: f.figures(down, end),
    spread: spread(f.resyncDelays(up.at), NODES),
    note: `resync delays after it is back; ${fmt(f.api.refused / NODES)} refused connects/node while down`,
    inSync: f.nodesInSync(),
  });
  await f.stop();
}

async function gone(server: ServerKind): Promise<void> {
  const { f } = await fleet(server);
  await f.runFor(MIN);
  const at = f.mark();
  f.api.expireWatches();
  f.replaceOnePodPerNode();
  const end = await f.runFor(5 * MIN);
  rows.push({ scenario: "410 Gone for every watch", server: serverName(server), window: "5 min after", f: f.figures(at, end), spread: spread(f.resyncDelays(at.at), NODES), inSync: f.nodesInSync() });
  await f.stop();
}

async function churn(): Promise<void> {
  const { f } = await fleet(WATCH_LIST);
  const c = f.churn(50);
  const warm = await f.runFor(MIN); // the pod population reaches its steady size
  const eventsBefore = c.events();
  const end = await f.runFor(CHURN_MINUTES * MIN);
  const events = c.events() - eventsBefore;
  c.stop();
  const fig = f.figures(warm, end);
  for (const k of ["requestsPerNode", "listsPerNode", "watchesPerNode", "watchListsPerNode", "bytesPerNode"] as const) fig[k] /= CHURN_MINUTES;
  rows.push({ scenario: "50 pods/node/min churning", server: "watch-list", window: `${CHURN_MINUTES} min, ÷ ${CHURN_MINUTES}`, f: fig, note: `per minute; ${fmt(events / NODES / CHURN_MINUTES, 0)} pod changes/node/min, all through the one watch`, inSync: f.nodesInSync() });
  await f.stop();
}

async function kubelet(): Promise<void> {
  const k = new KubeletFleet(KUBELET_NODES, PODS, 5000);
  const r = await k.run(60 * MIN);
  const f: Figures = { requestsPerNode: 0, listsPerNode: 0, watchesPerNode: 0, watchListsPerNode: 0, bytesPerNode: 0, etcdLists: 0, peakPerSecond: 0 };
  rows.push({
    scenario: `kubelet provider (${KUBELET_NODES} nodes, poll 5 s)`,
    server: "—",
    window: "1 h",
    f,
    note: `API server: nothing. Per node, to its own kubelet: ${fmt(r.pollsPerNode, 0)} GET /pods, ${kb(r.bytesPerNode)}`,
  });
}

const started = performance.now();
console.log(`fleet: ${NODES} nodes × ${PODS} pods, seed ${SEED}, ${cpus()[0]?.model ?? "?"} × ${cpus().length}, bun ${Bun.version}`);
for (const s of scenarios) {
  const t = performance.now();
  if (s === "steady") await steady();
  if (s === "restart") for (const server of [WATCH_LIST, LIST_WATCH]) await restart(server);
  if (s === "gone") for (const server of [WATCH_LIST, LIST_WATCH]) await gone(server);
  if (s === "churn") await churn();
  if (s === "kubelet") await kubelet();
  console.error(`  ${s}: ${((performance.now() - t) / 1000).toFixed(1)} s of real time`);
}

const header = ["scenario", "server", "window", "req/node", "lists/node", "watches/node", "watch-lists/node", "bytes/node", "lists→etcd", "peak req/s", "resyncs after the event (first … median … last)", "caches in sync at the end", "notes"];
const table = rows.map((r) => [
  r.scenario,
  r.server,
  r.window,
  fmt(r.f.requestsPerNode),
  fmt(r.f.listsPerNode),
  fmt(r.f.watchesPerNode),
  fmt(r.f.watchListsPerNode),
  kb(r.f.bytesPerNode),
  String(r.f.etcdLists),
  String(r.f.peakPerSecond),
  r.spread ?? "",
  r.inSync === undefined ? "" : `${r.inSync}/${NODES}`,
  r.note ?? "",
]);
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => " --- ").join("|")}|`);
for (const row of table) console.log(`| ${row.join(" | ")} |`);
console.error(`fleet: ${((performance.now() - started) / 1000).toFixed(1)} s of real time`);
