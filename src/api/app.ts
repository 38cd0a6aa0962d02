// The local API (README "Verifying it works") as a Hono app: runtime-neutral, served through
// src/platform/serve.ts by src/api/server.ts.
import { Hono } from "hono";

/** What the API reads from the running collector; every value is computed on request. */
export interface ApiView {
  /** Loops alive and not shutting down. */
  live(): boolean;
  /** Config loaded, ring open, first scan done. */
  ready(): boolean;
  /** JSON for /status; must never contain secrets. */
  status(): unknown;
  /** Prometheus text exposition. */
  metrics(): Promise<string> | string;
  metricsContentType(): string;
}

export function createApiApp(view: ApiView): Hono {
  const app = new Hono();
  // Probes and scrapers must never be cached by a proxy in between.
  app.use("*", async (c, next) => {
    await next();
    c.header("Cache-Control", "no-store");
  });
  app.get("/health", (c) => (view.live() ? c.json({ ok: true }) : c.json({ ok: false }, 503)));
  app.get("/ready", (c) => (view.ready() ? c.json({ ready: true }) : c.json({ ready: false }, 503)));
  app.get("/status", (c) => c.json(view.status() as object));
  app.get("/metrics", async (c) => c.body(await view.metrics(), 200, { "Content-Type": view.metricsContentType() }));
  app.onError((err, c) => c.json({ error: "internal error", message: err.message }, 500));
  app.notFound((c) => c.json({ error: "not found", endpoints: ["/health", "/ready", "/status", "/metrics"] }, 404));
  return app;
}

/** Splits `host:port` (IPv6 in brackets). */
export function parseAddress(address: string): { hostname: string; port: number } {
  const i = address.lastIndexOf(":");
  let hostname = address.slice(0, i);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  return { hostname, port: Number(address.slice(i + 1)) };
}
