// The local API as the collector serves it. Bound first thing at start-up, so that a port in use
// refuses the start before anything is read or sent, and probes get answers while the ring opens
// and metadata syncs: /health 200, /ready 503, /status `phase: "starting"`, the process metrics.
// The stages' metrics, then their probes and status, are attached as soon as they exist.
import { type Served, serve } from "../platform/serve.ts";
import { VERSION } from "../version.ts";
import { createApiApp, parseAddress } from "./app.ts";
import { type Metrics, processMetricsText } from "./metrics.ts";

export class AddressInUseError extends Error {
  override readonly name = "AddressInUseError";
}

/** The running collector's probes and status document. */
export interface RunningView {
  /** Why /health fails; empty while live. */
  notLive(): string[];
  /** What /ready waits for; empty once ready. */
  notReady(): string[];
  status(): unknown;
}

/** /health's reason after a failed start, while the socket is still open. */
const START_FAILED = "start-up failed; the process is exiting";

const PROCESS_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export class LocalApi {
  private metrics: Pick<Metrics, "text" | "contentType"> | null = null;
  private running: RunningView | null = null;
  private abandoned = false;
  /** What start-up still has to do, for /ready until the collector is attached. */
  private startSteps: string[] = ["start-up"];
  private readonly served: Served;
  private readonly hostname: string;

  /** Binds `host:port`; throws AddressInUseError when it cannot. */
  constructor(address: string) {
    const app = createApiApp({
      notLive: () => (this.running ? this.running.notLive() : this.abandoned ? [START_FAILED] : []),
      notReady: () => (this.running ? this.running.notReady() : this.abandoned ? [START_FAILED] : this.startSteps),
      status: () =>
        this.running ? this.running.status() : { phase: this.abandoned ? "stopping" : "starting", version: VERSION, ready: false, waiting: this.startSteps },
      metrics: () => (this.metrics ? this.metrics.text() : processMetricsText()),
      metricsContentType: () => this.metrics?.contentType ?? PROCESS_METRICS_CONTENT_TYPE,
    });
    this.hostname = parseAddress(address).hostname;
    this.served = listen(address, (req) => app.fetch(req));
  }

  /** The port bound (the one asked for, or a free one for port 0). */
  get port(): number {
    return this.served.port;
  }

  /** `host:port` as bound, for logs. */
  get address(): string {
    return `${this.hostname}:${this.port}`;
  }

  serveMetrics(metrics: Pick<Metrics, "text" | "contentType">): void {
    this.metrics = metrics;
  }

  /** Start-up progress: the steps left before the collector can be attached (shown by /ready). */
  waitingFor(steps: string[]): void {
    this.startSteps = steps;
  }

  attach(running: RunningView): void {
    this.running = running;
  }

  /** The start failed: /health answers 503 until the socket is closed. */
  abandon(): void {
    this.abandoned = true;
  }

  async stop(): Promise<void> {
    await this.served.stop();
  }
}

function listen(address: string, fetch: (req: Request) => Response | Promise<Response>): Served {
  const { hostname, port } = parseAddress(address);
  try {
    return serve({ hostname, port, fetch });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "EADDRINUSE" || /in use/i.test(e.message) ? "the port is already in use (another collector, or another program)" : e.message;
    throw new AddressInUseError(`cannot listen on api.address ${address}: ${why}`);
  }
}
