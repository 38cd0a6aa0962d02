// A fake kubelet read-only API: GET /pods answers a core/v1 PodList of the node's pods, as the
// kubelet does on :10250 (bearer-token auth; 401 Unauthorized otherwise). Over HTTPS — the serving
// certificate is whatever the test gives, often self-signed as real kubelets' are — or in-process
// through `fetch` (the fleet simulation), where `bytes` counts what it answered.
import { type FakeExchange, inProcessFetch, nodeExchange } from "./fake-exchange.ts";
import { type HttpsListener, listenHttps } from "./https-listener.ts";
import type { K8sPod } from "./podlist.ts";

export interface FakeKubeletOptions {
  cert?: string;
  key?: string;
  tokens?: string[];
  port?: number;
}

export class FakeKubelet {
  readonly tokens: Set<string>;
  /** Pods by UID; tests add, change and remove pods directly. */
  readonly pods = new Map<string, K8sPod>();
  /** One entry per /pods request: its HTTP status. */
  readonly requests: number[] = [];
  /** Answer the next N requests with this status (e.g. 500, 503). */
  failNext: { count: number; status: number } | null = null;
  /** Body bytes answered. */
  bytes = 0;
  /** In-process transport: a fetch that calls this kubelet directly. */
  readonly fetch = inProcessFetch((ex) => this.handle(ex), () => true);
  private listener: HttpsListener | null = null;
  port = 0;

  private constructor(private readonly options: FakeKubeletOptions) {
    this.tokens = new Set(options.tokens ?? []);
  }

  /** Reached only through `fetch` (no socket). */
  static inProcess(options: Pick<FakeKubeletOptions, "tokens">): FakeKubelet {
    return new FakeKubelet(options);
  }

  static async start(options: FakeKubeletOptions): Promise<FakeKubelet> {
    const k = new FakeKubelet(options);
    k.port = options.port ?? 0;
    await k.up();
    return k;
  }

  get url(): string {
    return this.options.cert ? `https://127.0.0.1:${this.port}` : "http://fake-kubelet.invalid";
  }

  get polls(): number {
    return this.requests.length;
  }

  setPod(pod: K8sPod): void {
    this.pods.set(pod.metadata.uid, structuredClone(pod));
  }

  deletePod(uid: string): void {
    this.pods.delete(uid);
  }

  async up(): Promise<void> {
    if (this.listener || !this.options.cert || !this.options.key) return;
    this.listener = await listenHttps({ cert: this.options.cert, key: this.options.key }, this.port, (req, res) =>
      this.handle(nodeExchange(req, res)),
    );
    this.port = this.listener.port;
  }

  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    await listener?.close();
  }

  private handle(ex: FakeExchange): void {
    const reply = (code: number, body: string, type = "application/json") => {
      this.requests.push(code);
      this.bytes += Buffer.byteLength(body);
      ex.head(code, { "Content-Type": type });
      ex.end(body);
    };
    const path = ex.url.pathname;
    if (path !== "/pods" && path !== "/pods/") return reply(404, "404 page not found\n", "text/plain; charset=utf-8");
    const h = ex.authorization;
    if (!h?.startsWith("Bearer ") || !this.tokens.has(h.slice(7))) return reply(401, "Unauthorized", "text/plain; charset=utf-8");
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count--;
      return reply(this.failNext.status, "internal error\n", "text/plain; charset=utf-8");
    }
    reply(200, JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: {}, items: [...this.pods.values()] }));
  }
}
