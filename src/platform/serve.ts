// The HTTP server adapter: the only place that calls Bun.serve. Everything above it speaks
// web-standard Request/Response, so the local API and the mock messenger stay runtime-neutral.

export interface ServeOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  fetch: (request: Request) => Response | Promise<Response>;
  /** Seconds a connection may stay silent before the server closes it; 0 disables (default 0). */
  idleTimeoutSeconds?: number;
  /** PEM certificate and key: serve HTTPS instead of HTTP. */
  tls?: { cert: string; key: string };
}

export interface Served {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stops listening and closes open connections (requests still running are cut). */
  stop(): Promise<void>;
}

export function serve(options: ServeOptions): Served {
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    // Bun's default (10 s) would close a deliberately slow handler; callers decide instead.
    idleTimeout: Math.min(255, options.idleTimeoutSeconds ?? 0),
    ...(options.tls ? { tls: options.tls } : {}),
    fetch: (request) => options.fetch(request),
  });
  const port = server.port;
  if (port === undefined) throw new Error(`serve: no port bound on ${options.hostname}`);
  return {
    port,
    stop: async () => {
      await server.stop(true);
    },
  };
}
