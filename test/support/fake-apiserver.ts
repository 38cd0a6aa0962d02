// A fake Kubernetes API server for pods, over HTTPS with the test PKI, speaking the real wire
// format: GET /api/v1/pods (and /api/v1/namespaces/{ns}/pods) with fieldSelector, labelSelector,
// resourceVersion, limit/continue, and watch=true — a chunked stream of WatchEvent JSON lines
// (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR carrying a 410 Status once history is compacted).
// Authentication as a real API server: a bearer token from `tokens`, or a client certificate
// signed by the CA. Fault injection for tests: cut watch streams (mid-line), compact history,
// stop listening and listen again on the same port. Used by tests, the demo and benchmarks.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { type HttpsListener, listenHttps } from "./https-listener.ts";
import type { K8sPod } from "./podlist.ts";

export interface FakeApiServerOptions {
  /** Server certificate and key (PEM) and the CA that signs accepted client certificates. */
  cert: string;
  key: string;
  clientCa?: string;
  /** Accepted bearer tokens (mutable later through `tokens`). */
  tokens?: string[];
  /** 0 = any free port. */
  port?: number;
  /** Watch events kept for resuming; older resourceVersions get 410 Gone. Default 10,000. */
  historyLimit?: number;
  /** Send BOOKMARKs to bookmark-enabled watches at this interval (default: only on demand). */
  bookmarkIntervalMs?: number;
}

export interface RecordedRequest {
  path: string;
  query: Record<string, string>;
  auth: "token" | "client-cert" | null;
  status: number;
  watch: boolean;
}

interface HistoryEntry {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  /** Object before (null for ADDED) and after (the deleted object for DELETED). */
  before: K8sPod | null;
  after: K8sPod;
}

interface Watcher {
  res: ServerResponse;
  socket: Socket;
  match: (pod: K8sPod) => boolean;
  bookmarks: boolean;
  timeout: ReturnType<typeof setTimeout> | null;
}

type Selector = (pod: K8sPod) => boolean;

const clone = <T>(v: T): T => structuredClone(v);

function status(code: number, reason: string, message: string): object {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

const FIELDS: Record<string, (p: K8sPod) => string> = {
  "metadata.name": (p) => p.metadata.name,
  "metadata.namespace": (p) => p.metadata.namespace,
  "spec.nodeName": (p) => p.spec.nodeName ?? "",
  "status.phase": (p) => p.status.phase ?? "",
};

/** fieldSelector: `a=b`, `a==b`, `a!=b`, comma-separated (AND). Throws a message for 400. */
export function parseFieldSelector(s: string): Selector {
  const terms = s
    .split(",")
    .filter((t) => t.trim() !== "")
    .map((t) => {
      const m = /^([^!=]+)(==|!=|=)(.*)$/.exec(t.trim());
      if (!m) throw new Error(`invalid field selector: '${t}'`);
      const get = FIELDS[m[1]!];
      if (!get) throw new Error(`field label not supported: ${m[1]}`);
      const want = m[3]!;
      return m[2] === "!=" ? (p: K8sPod) => get(p) !== want : (p: K8sPod) => get(p) === want;
    });
  return (p) => terms.every((f) => f(p));
}

/** labelSelector: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, comma-separated. */
export function parseLabelSelector(s: string): Selector {
  const terms: Selector[] = [];
  const parts = s.match(/(?:[^,(]|\([^)]*\))+/g) ?? [];
  for (const raw of parts) {
    const t = raw.trim();
    if (t === "") continue;
    let m: RegExpExecArray | null;
    const labels = (p: K8sPod) => p.metadata.labels ?? {};
    if ((m = /^!\s*([\w./-]+)$/.exec(t))) {
      const k = m[1]!;
      terms.push((p) => !Object.hasOwn(labels(p), k));
    } else if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t))) {
      const k = m[1]!;
      const set = new Set(m[3]!.split(",").map((v) => v.trim()));
      const neg = m[2] === "notin";
      terms.push((p) => {
        const v = labels(p)[k];
        return neg ? v === undefined || !set.has(v) : v !== undefined && set.has(v);
      });
    } else if ((m = /^([\w./-]+)\s*(==|!=|=)\s*([\w.-]*)$/.exec(t))) {
      const k = m[1]!;
      const v = m[3]!;
      terms.push(m[2] === "!=" ? (p) => labels(p)[k] !== v : (p) => labels(p)[k] === v);
    } else if ((m = /^([\w./-]+)$/.exec(t))) {
      const k = m[1]!;
      terms.push((p) => Object.hasOwn(labels(p), k));
    } else throw new Error(`unable to parse requirement: ${t}`);
  }
  return (p) => terms.every((f) => f(p));
}

export class FakeApiServer {
  /** Accepted bearer tokens; tests rotate by editing this set. */
  readonly tokens: Set<string>;
  readonly requests: RecordedRequest[] = [];
  private readonly pods = new Map<string, K8sPod>();
  private history: HistoryEntry[] = [];
  /** Lowest resourceVersion a watch may resume from without 410. */
  private compactedRv = 0;
  private rv = 1000;
  private readonly watchers = new Set<Watcher>();
  private readonly snapshots = new Map<string, K8sPod[]>();
  private listener: HttpsListener | null = null;
  private bookmarkTimer: ReturnType<typeof setInterval> | null = null;
  port = 0;

  private constructor(private readonly options: FakeApiServerOptions) {
    this.tokens = new Set(options.tokens ?? []);
  }

  static async start(options: FakeApiServerOptions): Promise<FakeApiServer> {
    const s = new FakeApiServer(options);
    s.port = options.port ?? 0;
    await s.up();
    if (options.bookmarkIntervalMs) {
      s.bookmarkTimer = setInterval(() => s.sendBookmarks(), options.bookmarkIntervalMs);
      s.bookmarkTimer.unref?.();
    }
    return s;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
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
    this.pods.set(p.metadata.uid, p);
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
    this.pods.set(uid, p);
    this.record({ rv: this.rv, type: "MODIFIED", before: old, after: p });
    return clone(p);
  }

  deletePod(uid: string): void {
    const old = this.pods.get(uid);
    if (!old) throw new Error(`no pod uid ${uid}`);
    this.pods.delete(uid);
    const p = clone(old);
    p.metadata.resourceVersion = String(++this.rv);
    this.record({ rv: this.rv, type: "DELETED", before: old, after: p });
  }

  getPods(): K8sPod[] {
    return [...this.pods.values()].map(clone);
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

  /** Cuts every open watch: with midLine, half an event is written first, then the socket dies. */
  cutWatches(options: { midLine?: boolean } = {}): void {
    for (const w of [...this.watchers]) {
      if (options.midLine) w.res.write('{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"tru');
      this.watchers.delete(w);
      if (w.timeout) clearTimeout(w.timeout);
      w.socket.destroy();
    }
  }

  sendBookmarks(): void {
    for (const w of this.watchers) {
      if (w.bookmarks) this.writeEvent(w, { type: "BOOKMARK", object: { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  /** Stops listening and drops every connection (the API server is down). State is kept. */
  async down(): Promise<void> {
    for (const w of this.watchers) if (w.timeout) clearTimeout(w.timeout);
    this.watchers.clear();
    const listener = this.listener;
    this.listener = null;
    await listener?.close();
  }

  /** Listens again (on the same port once one was assigned). */
  async up(): Promise<void> {
    if (this.listener) return;
    this.listener = await listenHttps(
      {
        cert: this.options.cert,
        key: this.options.key,
        ...(this.options.clientCa ? { ca: this.options.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
      },
      this.port,
      (req, res) => this.handle(req, res),
    );
    this.port = this.listener.port;
  }

  async close(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    await this.down();
  }

  // ---- HTTP ----

  private record(e: HistoryEntry): void {
    this.history.push(e);
    const limit = this.options.historyLimit ?? 10_000;
    if (this.history.length > limit) {
      const dropped = this.history.splice(0, this.history.length - limit);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watchers) this.deliver(w, e);
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
    w.res.write(JSON.stringify(event) + "\n");
  }

  private endWatch(w: Watcher): void {
    this.watchers.delete(w);
    if (w.timeout) clearTimeout(w.timeout);
    w.res.end();
  }

  private authenticate(req: IncomingMessage): RecordedRequest["auth"] {
    const h = req.headers.authorization;
    if (h?.startsWith("Bearer ") && this.tokens.has(h.slice(7))) return "token";
    if ((req.socket as TLSSocket).authorized) return "client-cert";
    return null;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "https://x");
    const query = Object.fromEntries(url.searchParams);
    const isWatch = query.watch === "true" || query.watch === "1";
    const rec: RecordedRequest = { path: url.pathname, query, auth: this.authenticate(req), status: 0, watch: isWatch };
    this.requests.push(rec);
    const reply = (code: number, body: object) => {
      rec.status = code;
      res.writeHead(code, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (rec.auth === null) return reply(401, status(401, "Unauthorized", "Unauthorized"));
    if (req.method !== "GET") return reply(405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"));
    const m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods$/.exec(url.pathname);
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
    if (isWatch) return this.watch(req, res, rec, query, match);

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
      items = [...this.pods.values()].filter(match).sort((a, b) => (a.metadata.namespace + "/" + a.metadata.name).localeCompare(b.metadata.namespace + "/" + b.metadata.name));
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
    reply(200, { kind: "PodList", apiVersion: "v1", metadata, items: page.map((p) => ({ ...clone(p), kind: undefined, apiVersion: undefined })) });
  }

  private watch(req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, query: Record<string, string>, match: Selector): void {
    rec.status = 200;
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    const w: Watcher = { res, socket: req.socket, match, bookmarks: query.allowWatchBookmarks === "true", timeout: null };
    const from = query.resourceVersion ?? "";
    if (from === "" || from === "0") {
      // Unset/0: synthetic ADDED for every current object, then changes.
      for (const p of this.pods.values()) if (match(p)) this.writeEvent(w, { type: "ADDED", object: p });
    } else {
      const n = Number(from);
      if (!Number.isFinite(n) || n < this.compactedRv) {
        this.writeEvent(w, { type: "ERROR", object: status(410, "Expired", `too old resource version: ${from} (${this.compactedRv})`) });
        res.end();
        return;
      }
      for (const e of this.history) if (e.rv > n) this.deliver(w, e);
    }
    this.watchers.add(w);
    const timeoutSeconds = Number(query.timeoutSeconds ?? 0);
    if (timeoutSeconds > 0) w.timeout = setTimeout(() => this.endWatch(w), timeoutSeconds * 1000);
    req.on("close", () => {
      if (w.timeout) clearTimeout(w.timeout);
      this.watchers.delete(w);
    });
  }
}
