// A fake Kubernetes API server for pods, speaking the real wire format: GET /api/v1/pods (and
// /api/v1/namespaces/{ns}/pods) with fieldSelector, labelSelector, resourceVersion,
// resourceVersionMatch, limit/continue, and watch=true — a chunked stream of WatchEvent JSON lines
// (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR carrying a 410 Status once history is compacted) —
// including watch-lists (sendInitialEvents=true: the current pods as ADDED, then a BOOKMARK
// annotated k8s.io/initial-events-end, then live events).
// Served over HTTPS with the test PKI (tests, the demo), or in-process through `fetch` (the fleet
// simulation). Authentication as a real API server: a bearer token from `tokens`, or a client
// certificate signed by the CA. Fault injection: cut watch streams (mid-line), compact history,
// expire every watch with 410, go down and come back (a restart: a fresh watch cache, so resumed
// watches get 410). Every request is recorded with its node, size and whether a real API server
// would read etcd for it (apiserver-accounting.ts).
import type { Clock, Timer } from "../../src/platform/types.ts";
import { systemClock } from "../../src/platform/clock.ts";
import { reachesEtcd, type RecordedRequest, requestKind } from "./apiserver-accounting.ts";
import { type FakeExchange, inProcessFetch, nodeExchange } from "./fake-exchange.ts";
import { nodeOfSelector, parseFieldSelector, parseLabelSelector, type Selector } from "./fake-selectors.ts";
import { type HttpsListener, listenHttps } from "./https-listener.ts";
import type { K8sPod } from "./podlist.ts";

export { parseFieldSelector, parseLabelSelector } from "./fake-selectors.ts";
export type { RecordedRequest } from "./apiserver-accounting.ts";

export interface FakeApiServerOptions {
  /** Server certificate and key (PEM) and the CA that signs accepted client certificates (HTTPS only). */
  cert?: string;
  key?: string;
  clientCa?: string;
  /** Accepted bearer tokens (mutable later through `tokens`). */
  tokens?: string[];
  /** 0 = any free port. */
  port?: number;
  /** Watch events kept for resuming; older resourceVersions get 410 Gone. Default 10,000. */
  historyLimit?: number;
  /** Send BOOKMARKs to bookmark-enabled watches at this interval (default: only on demand). */
  bookmarkIntervalMs?: number;
  /** Serve watch-lists (default true, as Kubernetes 1.32 and ≥ 1.34); false answers 422 as 1.33 and older do. */
  watchList?: boolean;
  /** Accept watch-lists but never send the initial-events-end BOOKMARK (a broken proxy or server). */
  withholdInitialEventsEnd?: boolean;
  /** Serve consistent lists from the cache (ConsistentListFromCache; default false, as before 1.34). */
  consistentListFromCache?: boolean;
  clock?: Clock;
}

interface HistoryEntry {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  /** Object before (null for ADDED) and after (the deleted object for DELETED). */
  before: K8sPod | null;
  after: K8sPod;
}

interface Watcher {
  ex: FakeExchange;
  rec: RecordedRequest;
  match: Selector;
  node: string | null;
  bookmarks: boolean;
  timeout: Timer | null;
}

const clone = <T>(v: T): T => structuredClone(v);
const nodeOf = (p: K8sPod) => p.spec.nodeName ?? "";

function status(code: number, reason: string, message: string, details?: object): object {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code, ...(details ? { details } : {}) };
}

const tooLarge = (rv: string, current: number) =>
  status(504, "Timeout", `Too large resource version: ${rv}, current: ${current}`, { causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }], retryAfterSeconds: 1 });

export class FakeApiServer {
  /** Accepted bearer tokens; tests rotate by editing this set. */
  readonly tokens: Set<string>;
  readonly requests: RecordedRequest[] = [];
  /** Connections refused while down (in-process only: a real socket refusal never reaches us). */
  refused = 0;
  /** Body bytes answered so far, watch events included. */
  bytesSent = 0;
  /** In-process transport: a fetch that calls this server directly. */
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
  readonly clock: Clock;
  private readonly pods = new Map<string, K8sPod>();
  private readonly podsByNode = new Map<string, Map<string, K8sPod>>();
  private history: HistoryEntry[] = [];
  /** Lowest resourceVersion a watch may resume from without 410. */
  private compactedRv = 0;
  private rv = 1000;
  private readonly watchers = new Set<Watcher>();
  private readonly watchersByNode = new Map<string, Set<Watcher>>();
  private readonly snapshots = new Map<string, K8sPod[]>();
  private listener: HttpsListener | null = null;
  private available = true;
  private bookmarkTimer: Timer | null = null;
  port = 0;

  private constructor(private readonly options: FakeApiServerOptions) {
    this.tokens = new Set(options.tokens ?? []);
    this.clock = options.clock ?? systemClock;
    this.fetch = inProcessFetch((ex) => this.handle(ex), () => this.available || (this.refused++, false));
    if (options.bookmarkIntervalMs) this.bookmarkTimer = this.clock.every(options.bookmarkIntervalMs, () => this.sendBookmarks());
  }

  /** Listening on HTTPS (127.0.0.1). */
  static async start(options: FakeApiServerOptions): Promise<FakeApiServer> {
    const s = new FakeApiServer(options);
    s.port = options.port ?? 0;
    await s.up();
    return s;
  }

  /** Reached only through `fetch`, at `url` (no socket). */
  static inProcess(options: Omit<FakeApiServerOptions, "cert" | "key" | "clientCa" | "port">): FakeApiServer {
    return new FakeApiServer(options);
  }

  get url(): string {
    return this.options.cert ? `https://127.0.0.1:${this.port}` : "http://fake-apiserver.invalid";
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Number of list (non-watch) requests answered 200. */
  get lists(): number {
    return this.requests.filter((r) => !r.watch && r.status === 200).length;
  }

  get watches(): number {
    return this.requests.filter((r) => r.watch && r.status === 200).length;
  }

  get activeWatches(): number {
    return this.watchers.size;
  }

  // ---- state changes (each one is a watch event) ----

  createPod(pod: K8sPod): K8sPod {
    if (this.pods.has(pod.metadata.uid)) throw new Error(`pod uid ${pod.metadata.uid} exists`);
    const p = clone(pod);
    p.metadata.resourceVersion = String(++this.rv);
    this.store(p);
    this.record({ rv: this.rv, type: "ADDED", before: null, after: p });
    return clone(p);
  }

  updatePod(uid: string, mutate: (pod: K8sPod) => void): K8sPod {
    const old = this.pods.get(uid);
    if (!old) throw new Error(`no pod uid ${uid}`);
    const p = clone(old);
    mutate(p);
    p.metadata.uid = uid;
    p.metadata.resourceVersion = String(++this.rv);
    this.unstore(old);
    this.store(p);
    this.record({ rv: this.rv, type: "MODIFIED", before: old, after: p });
    return clone(p);
  }

  deletePod(uid: string): void {
    const old = this.pods.get(uid);
    if (!old) throw new Error(`no pod uid ${uid}`);
    this.unstore(old);
    const p = clone(old);
    p.metadata.resourceVersion = String(++this.rv);
    this.record({ rv: this.rv, type: "DELETED", before: old, after: p });
  }

  getPods(): K8sPod[] {
    return [...this.pods.values()].map(clone);
  }

  /** UIDs of the pods bound to a node (from the index: cheap with many nodes). */
  podUidsOf(node: string): string[] {
    return [...(this.podsByNode.get(node)?.keys() ?? [])];
  }

  // ---- fault injection ----

  /** Forgets watch history (as etcd compaction does): resuming from an older RV gets 410 Gone. */
  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
    this.snapshots.clear();
  }

  /** Sends ERROR 410 to every open watch and ends it (what a client sees after compaction). */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watchers]) {
      this.writeEvent(w, { type: "ERROR", object: status(410, "Expired", `too old resource version: ${this.compactedRv - 1} (${this.compactedRv})`) });
      this.endWatch(w);
    }
  }

  /** Cuts every open watch: with midLine, half an event is written first, then the connection dies. */
  cutWatches(options: { midLine?: boolean } = {}): void {
    for (const w of [...this.watchers]) {
      if (options.midLine) w.ex.write('{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"tru');
      this.dropWatcher(w);
      w.ex.destroy();
    }
  }

  sendBookmarks(): void {
    for (const w of this.watchers) {
      if (w.bookmarks) this.writeEvent(w, { type: "BOOKMARK", object: { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  /** Stops answering and drops every connection (the API server is down). State and history are kept. */
  async down(): Promise<void> {
    this.available = false;
    this.cutWatches();
    const listener = this.listener;
    this.listener = null;
    await listener?.close();
  }

  /** Answers again (listening on the same port once one was assigned). */
  async up(): Promise<void> {
    this.available = true;
    if (this.listener || !this.options.cert || !this.options.key) return;
    this.listener = await listenHttps(
      {
        cert: this.options.cert,
        key: this.options.key,
        ...(this.options.clientCa ? { ca: this.options.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
      },
      this.port,
      (req, res) => this.handle(nodeExchange(req, res)),
    );
    this.port = this.listener.port;
  }

  /**
   * A restart: every connection cut, down for downForMs (on the clock), then up with a fresh watch
   * cache, which holds no history before its start — a watch resumed from before gets 410. (In a
   * cluster, writes to other resources move etcd's revision meanwhile; the fresh cache starts there.)
   */
  async restart(downForMs: number): Promise<void> {
    await this.down();
    this.rv++;
    this.compact();
    await new Promise<void>((r) => this.clock.after(downForMs, r));
    await this.up();
  }

  async close(): Promise<void> {
    this.bookmarkTimer?.cancel();
    await this.down();
  }

  // ---- storage ----

  private store(p: K8sPod): void {
    this.pods.set(p.metadata.uid, p);
    let m = this.podsByNode.get(nodeOf(p));
    if (!m) this.podsByNode.set(nodeOf(p), (m = new Map()));
    m.set(p.metadata.uid, p);
  }

  private unstore(p: K8sPod): void {
    this.pods.delete(p.metadata.uid);
    this.podsByNode.get(nodeOf(p))?.delete(p.metadata.uid);
  }

  private record(e: HistoryEntry): void {
    this.history.push(e);
    const limit = this.options.historyLimit ?? 10_000;
    if (this.history.length > limit) {
      const dropped = this.history.splice(0, this.history.length - limit);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watchersFor(e)) this.deliver(w, e);
  }

  /** Watchers that may see the event: those of its nodes (before, after), and any not scoped to a node. */
  private *watchersFor(e: HistoryEntry): Iterable<Watcher> {
    const nodes = new Set([nodeOf(e.after), ...(e.before ? [nodeOf(e.before)] : [])]);
    for (const n of nodes) yield* this.watchersByNode.get(n) ?? [];
    for (const w of this.watchers) if (w.node === null) yield w;
  }

  private deliver(w: Watcher, e: HistoryEntry): void {
    const was = e.before !== null && w.match(e.before);
    const is = w.match(e.after);
    let type: string | null = null;
    if (e.type === "DELETED") type = was ? "DELETED" : null;
    else if (was && is) type = "MODIFIED";
    else if (!was && is) type = "ADDED";
    else if (was && !is) type = "DELETED";
    if (type) this.writeEvent(w, { type, object: e.after });
  }

  private writeEvent(w: Watcher, event: { type: string; object: unknown }): void {
    const line = JSON.stringify(event) + "\n";
    const n = Buffer.byteLength(line);
    w.rec.bytes += n;
    this.bytesSent += n;
    w.ex.write(line);
  }

  private dropWatcher(w: Watcher): void {
    this.watchers.delete(w);
    if (w.node !== null) this.watchersByNode.get(w.node)?.delete(w);
    w.timeout?.cancel();
  }

  private endWatch(w: Watcher): void {
    this.dropWatcher(w);
    w.ex.end();
  }

  // ---- HTTP ----

  private authenticate(ex: FakeExchange): RecordedRequest["auth"] {
    const h = ex.authorization;
    if (h?.startsWith("Bearer ") && this.tokens.has(h.slice(7))) return "token";
    if (ex.clientCertAuthorized) return "client-cert";
    return null;
  }

  private handle(ex: FakeExchange): void {
    const query = Object.fromEntries(ex.url.searchParams);
    const kind = /^\/api\/v1\/(?:namespaces\/[^/]+\/)?pods$/.test(ex.url.pathname) ? requestKind(query) : "other";
    const rec: RecordedRequest = {
      path: ex.url.pathname,
      query,
      auth: this.authenticate(ex),
      status: 0,
      watch: kind === "watch" || kind === "watch-list",
      kind,
      node: nodeOfSelector(query.fieldSelector ?? ""),
      at: this.clock.now(),
      bytes: 0,
      etcd: false,
    };
    this.requests.push(rec);
    const reply = (code: number, body: object) => {
      const text = JSON.stringify(body);
      rec.status = code;
      rec.bytes += Buffer.byteLength(text);
      this.bytesSent += Buffer.byteLength(text);
      ex.head(code, { "Content-Type": "application/json" });
      ex.end(text);
    };
    if (rec.auth === null) return reply(401, status(401, "Unauthorized", "Unauthorized"));
    if (ex.method !== "GET") return reply(405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"));
    const m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods$/.exec(ex.url.pathname);
    if (!m) return reply(404, status(404, "NotFound", "the server could not find the requested resource"));
    const ns = m[1];
    let match: Selector;
    try {
      const f = parseFieldSelector(query.fieldSelector ?? "");
      const l = parseLabelSelector(query.labelSelector ?? "");
      match = (p) => (ns === undefined || p.metadata.namespace === ns) && f(p) && l(p);
    } catch (err) {
      return reply(400, status(400, "BadRequest", (err as Error).message));
    }
    const invalid = this.validate(kind, query);
    if (invalid) return reply(422, status(422, "Invalid", invalid));
    rec.etcd = reachesEtcd(kind, query, this.options.consistentListFromCache ?? false);
    if (rec.watch) return this.watch(ex, rec, query, match);
    this.list(query, match, rec.node, reply);
  }

  /** The API server's validation of list options (the part that tells old servers from new). */
  private validate(kind: string, q: Record<string, string>): string | null {
    const rvm = q.resourceVersionMatch;
    if (kind === "watch-list") {
      if (this.options.watchList === false) return "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled";
      if (rvm !== "NotOlderThan") return "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan";
      return null;
    }
    if (kind === "watch" && rvm) return "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided";
    if (kind === "list" && rvm) {
      if (rvm !== "NotOlderThan" && rvm !== "Exact") return `resourceVersionMatch: Unsupported value: "${rvm}"`;
      if (!q.resourceVersion) return "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided";
      if (rvm === "Exact" && q.resourceVersion === "0") return "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"";
    }
    return null;
  }

  private list(query: Record<string, string>, match: Selector, node: string | null, reply: (code: number, body: object) => void): void {
    const rv = query.resourceVersion ?? "";
    if (rv !== "" && rv !== "0" && query.resourceVersionMatch !== "Exact" && Number(rv) > this.rv) return reply(504, tooLarge(rv, this.rv));
    const cont = query.continue;
    let items: K8sPod[];
    let listRv: string;
    let offset = 0;
    if (cont) {
      let tok: { rv: string; offset: number };
      try {
        tok = JSON.parse(Buffer.from(cont, "base64").toString());
      } catch {
        return reply(400, status(400, "BadRequest", "continue key is not valid"));
      }
      const snap = this.snapshots.get(tok.rv);
      if (!snap) return reply(410, status(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."));
      items = snap;
      listRv = tok.rv;
      offset = tok.offset;
    } else {
      items = this.matching(match, node).sort((a, b) => (a.metadata.namespace + "/" + a.metadata.name).localeCompare(b.metadata.namespace + "/" + b.metadata.name));
      listRv = String(this.rv);
    }
    const limit = Number(query.limit ?? 0);
    let page = items.slice(offset);
    const metadata: Record<string, unknown> = { resourceVersion: listRv };
    // resourceVersion=0 is served from the watch cache, which ignores limit (as the real one does).
    if (limit > 0 && query.resourceVersion !== "0" && page.length > limit) {
      page = page.slice(0, limit);
      this.snapshots.set(listRv, items);
      metadata.continue = Buffer.from(JSON.stringify({ rv: listRv, offset: offset + limit })).toString("base64");
      metadata.remainingItemCount = items.length - offset - limit;
    }
    reply(200, { kind: "PodList", apiVersion: "v1", metadata, items: page.map((p) => ({ ...p, kind: undefined, apiVersion: undefined })) });
  }

  private matching(match: Selector, node: string | null): K8sPod[] {
    const pool = node === null ? this.pods.values() : (this.podsByNode.get(node)?.values() ?? []);
    return [...pool].filter(match);
  }

  private watch(ex: FakeExchange, rec: RecordedRequest, query: Record<string, string>, match: Selector): void {
    const from = query.resourceVersion ?? "";
    if (rec.kind === "watch-list" && from !== "" && from !== "0" && Number(from) > this.rv) {
      const text = JSON.stringify(tooLarge(from, this.rv));
      rec.status = 504;
      rec.bytes += text.length;
      this.bytesSent += text.length;
      ex.head(504, { "Content-Type": "application/json" });
      ex.end(text);
      return;
    }
    rec.status = 200;
    ex.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    const w: Watcher = { ex, rec, match, node: rec.node, bookmarks: query.allowWatchBookmarks === "true", timeout: null };
    if (rec.kind === "watch-list") {
      // The state now (at least as new as asked: the fake's cache is always current), then the end marker.
      for (const p of this.matching(match, w.node)) this.writeEvent(w, { type: "ADDED", object: p });
      const end = { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: String(this.rv), annotations: { "k8s.io/initial-events-end": "true" } } };
      if (!this.options.withholdInitialEventsEnd) this.writeEvent(w, { type: "BOOKMARK", object: end });
    } else if (from === "" || from === "0") {
      // Unset/0: synthetic ADDED for every current object, then changes.
      for (const p of this.matching(match, w.node)) this.writeEvent(w, { type: "ADDED", object: p });
    } else {
      const n = Number(from);
      if (!Number.isFinite(n) || n < this.compactedRv) {
        this.writeEvent(w, { type: "ERROR", object: status(410, "Expired", `too old resource version: ${from} (${this.compactedRv})`) });
        ex.end();
        return;
      }
      for (const e of this.history) if (e.rv > n) this.deliver(w, e);
    }
    this.watchers.add(w);
    if (w.node !== null) {
      let set = this.watchersByNode.get(w.node);
      if (!set) this.watchersByNode.set(w.node, (set = new Set()));
      set.add(w);
    }
    const timeoutSeconds = Number(query.timeoutSeconds ?? 0);
    if (timeoutSeconds > 0) w.timeout = this.clock.after(timeoutSeconds * 1000, () => this.endWatch(w));
    ex.onClose(() => this.dropWatcher(w));
  }
}
