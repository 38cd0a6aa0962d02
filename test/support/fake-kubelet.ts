// A fake kubelet read-only API over HTTPS: GET /pods answers a core/v1 PodList of the node's pods,
// as the kubelet does on :10250 (bearer-token auth; 401 Unauthorized otherwise). The serving
// certificate is whatever the test gives — often self-signed, as real kubelets' are.
import type { IncomingMessage, ServerResponse } from "node:http";
import { type HttpsListener, listenHttps } from "./https-listener.ts";
import type { K8sPod } from "./podlist.ts";

export interface FakeKubeletOptions {
  cert: string;
  key: string;
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
  private listener: HttpsListener | null = null;
  port = 0;

  private constructor(private readonly options: FakeKubeletOptions) {
    this.tokens = new Set(options.tokens ?? []);
  }

  static async start(options: FakeKubeletOptions): Promise<FakeKubelet> {
    const k = new FakeKubelet(options);
    k.port = options.port ?? 0;
    await k.up();
    return k;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
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
    if (this.listener) return;
    this.listener = await listenHttps({ cert: this.options.cert, key: this.options.key }, this.port, (req, res) =>
      this.handle(req, res),
    );
    this.port = this.listener.port;
  }

  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    await listener?.close();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const reply = (code: number, body: string, type = "application/json") => {
      this.requests.push(code);
      res.writeHead(code, { "Content-Type": type });
      res.end(body);
    };
    const path = new URL(req.url ?? "/", "https://x").pathname;
    if (path !== "/pods" && path !== "/pods/") return reply(404, "404 page not found\n", "text/plain; charset=utf-8");
    const h = req.headers.authorization;
    if (!h?.startsWith("Bearer ") || !this.tokens.has(h.slice(7))) return reply(401, "Unauthorized", "text/plain; charset=utf-8");
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count--;
      return reply(this.failNext.status, "internal error\n", "text/plain; charset=utf-8");
    }
    reply(200, JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: {}, items: [...this.pods.values()] }));
  }
}
