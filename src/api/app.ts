// The local API (README "Verifying it works") as a Hono app: runtime-neutral, served through
// src/platform/serve.ts by src/api/server.ts.
import { Hono } from "hono";

/** What the API reads from the running collector; every value is computed on request. */
export interface ApiView {
  /** Why /health fails (a stuck loop, shutting down); empty while the loops are alive. */
  notLive(): string[];
  /** What /ready waits for (ring open, metadata sync, first scan; or shutting down); empty once ready. */
  notReady(): string[];
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
  // A failing probe's body names its cause: `kubectl describe pod` shows it beside the 503.
  app.get("/health", (c) => {
    const reasons = view.notLive();
    return reasons.length === 0 ? c.json({ ok: true }) : c.json({ ok: false, reasons }, 503);
  });
  app.get("/ready", (c) => {
    const waiting = view.notReady();
    return waiting.length === 0 ? c.json({ ready: true }) : c.json({ ready: false, waiting }, 503);
  });
  app.get("/status", (c) => {
    const status = view.status() as object;
    // `?pretty` (any value but 0 or false): indented, for a person reading it through curl.
    const pretty = c.req.query("pretty");
    if (pretty === undefined || pretty === "0" || pretty === "false") return c.json(status);
    return c.body(JSON.stringify(status, null, 2) + "\n", 200, { "Content-Type": "application/json" });
  });
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
