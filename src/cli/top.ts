// `top` and `status`: a running collector seen through its local API (/status and /metrics).
// `top` redraws every second until q or Ctrl-C; `status` prints one reading and exits. What is
// shown is status-view.ts; this file fetches, and drives the terminal.
import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";
import { parseMetricTotals, renderStatusView, type Snapshot } from "./status-view.ts";

export const DEFAULT_URL = "http://127.0.0.1:8686";
const REFRESH_MS = 1000;
const TIMEOUT_MS = 2000;

/** Nothing usable answered at the URL; the message says what happened. */
export class NotAnsweringError extends Error {
  override readonly name = "NotAnsweringError";
}

function describeFailure(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === "TimeoutError" || e.name === "AbortError") return `no answer within ${TIMEOUT_MS / 1000} s`;
  if (e.code === "ConnectionRefused" || e.code === "ECONNREFUSED") return "connection refused";
  return e.message ?? String(err);
}

async function get(url: string): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), headers: { accept: "application/json, text/plain" } });
}

/** One reading of /status and /metrics. /status must answer with JSON; /metrics may fail. */
export async function readSnapshot(base: string): Promise<Snapshot> {
  const [status, metrics] = await Promise.allSettled([get(`${base}/status`), get(`${base}/metrics`)]);
  if (status.status === "rejected") throw new NotAnsweringError(`nothing answers at ${base} (${describeFailure(status.reason)})`);
  const res = status.value;
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (!res.ok || body === null || typeof body !== "object") {
    throw new NotAnsweringError(`${base}/status answered HTTP ${res.status}${body === undefined ? ", not JSON" : ""}: is this a pipekit-log-collector's API?`);
  }
  let totals: Map<string, number> | null = null;
  if (metrics.status === "fulfilled" && metrics.value.ok) totals = parseMetricTotals(await metrics.value.text());
  return { at: Date.now(), status: body, metrics: totals };
}

function flags(args: string[], command: string): { url: string; json: boolean } {
  try {
    const { values } = parseArgs({ args, options: { url: { type: "string", short: "u" }, json: { type: "boolean" } }, strict: true });
    if (values.json && command !== "status") throw new Error("--json is an option of status");
    const raw = values.url ?? DEFAULT_URL;
    const url = new URL(/^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`);
    return { url: url.origin, json: values.json === true };
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

function notAnswering(command: string, err: unknown): number {
  if (!(err instanceof NotAnsweringError)) throw err;
  process.stderr.write(
    `pipekit-log-collector ${command}: ${err.message}.\n` +
      `Is the collector running? Its API listens on api.address (default 127.0.0.1:8686); --url names another.\n` +
      `In Kubernetes: kubectl -n <namespace> exec -it ds/<collector DaemonSet> -- pipekit-log-collector ${command}\n`,
  );
  return 1;
}

/** `status [--url URL] [--json]`: one reading, printed plainly (or the /status JSON, indented). */
export async function runStatus(args: string[]): Promise<number> {
  const { url, json } = flags(args, "status");
  let snap: Snapshot;
  try {
    snap = await readSnapshot(url);
  } catch (err) {
    return notAnswering("status", err);
  }
  if (json) {
    process.stdout.write(JSON.stringify(snap.status, null, 2) + "\n");
    return 0;
  }
  const width = process.stdout.isTTY ? process.stdout.columns : 160;
  const lines = renderStatusView(snap, null, { url, width, height: 0, minFiles: 10 });
  process.stdout.write(lines.join("\n") + "\n");
  return 0;
}

const CSI = "\x1b[";

/** `top [--url URL]`: the view, redrawn every second, until q, Ctrl-C or SIGTERM. */
export async function runTop(args: string[]): Promise<number> {
  const { url } = flags(args, "top");
  let current: Snapshot;
  try {
    current = await readSnapshot(url);
  } catch (err) {
    return notAnswering("top", err);
  }
  const out = process.stdout;
  const tty = out.isTTY === true;
  let previous: Snapshot | null = null;
  let stale: string | null = null;

  const draw = () => {
    const footer = [stale ?? `q quits · every ${REFRESH_MS / 1000} s · ${new Date().toLocaleTimeString()}`];
    const lines = renderStatusView(current, previous, { url, width: tty ? out.columns : 160, height: tty ? out.rows : 40, footer });
    // Home, each line cleared to its end, the rest of the screen cleared: no flicker, no scrolling.
    out.write(tty ? `${CSI}H${lines.join(`${CSI}K\n`)}${CSI}K${CSI}J` : lines.join("\n") + "\n\n");
  };

  return new Promise<number>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      process.off("SIGINT", finish).off("SIGTERM", finish);
      out.off("resize", draw);
      if (process.stdin.isTTY) {
        process.stdin.setRawMode(false);
        process.stdin.pause();
      }
      if (tty) out.write(`${CSI}?25h${CSI}?1049l`); // cursor back, main screen back
      resolve(0);
    };
    const tick = async () => {
      try {
        const next = await readSnapshot(url);
        previous = current;
        current = next;
        stale = null;
      } catch (err) {
        // Keep the last reading on screen and say why it does not move.
        stale = `NOT ANSWERING since ${new Date().toLocaleTimeString()}: ${(err as Error).message} (the view shows the last answer)`;
      }
      if (done) return;
      draw();
      timer = setTimeout(tick, REFRESH_MS);
    };
    process.on("SIGINT", finish).on("SIGTERM", finish);
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      process.stdin.resume();
      process.stdin.on("data", (key: Buffer) => {
        const k = key.toString();
        if (k === "q" || k === "Q" || k === "\x03") finish();
      });
    }
    if (tty) {
      out.write(`${CSI}?1049h${CSI}?25l`); // alternate screen, cursor hidden
      out.on("resize", draw);
    }
    draw();
    timer = setTimeout(tick, REFRESH_MS);
  });
}
