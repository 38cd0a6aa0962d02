// The simulated Pipekit messenger behind a fetch function: it answers after a latency, with faults
// drawn from the run's schedule — 5xx, 429 with Retry-After, 413/400 for a poisoned record, 401 for a
// wrong key, requests that hang until the client gives up, outages (connection refused) — and keeps
// every record it acknowledged, duplicates included.
import { gunzipSync } from "node:zlib";
import type { Clock } from "../../src/platform/types.ts";
import type { Rng } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";

export const INGEST = "/api/messenger/v1/logs/ingest/batch";

export interface Delivered {
  /** The record as JSON (parsed). */
  record: Record<string, unknown>;
  /** Virtual time of the acknowledgement. */
  at: number;
  /** The collector process (its generation) that sent it. */
  gen: number;
  /** Kept, but the answer was lost: the sender sends it again (not a crash's duplicate). */
  answerLost: boolean;
}

export interface MessengerFaults {
  /** Refuse connections (an outage). */
  down: boolean;
  /** Probability of a 503 / a 429 (with Retry-After) / a hang. */
  error5xx: number;
  error429: number;
  hang: number;
  /** Probability that an acknowledged request's answer is lost (the client sees an error after the messenger kept the records). */
  lostAnswer: number;
  /** Answer 401 to every request. */
  wrongKey: boolean;
  latencyMs: [number, number];
}

export const HEALTHY: MessengerFaults = { down: false, error5xx: 0, error429: 0, hang: 0, lostAnswer: 0, wrongKey: false, latencyMs: [1, 30] };

interface SimResponse {
  ok: boolean;
  status: number;
  headers: Headers;
  arrayBuffer(): Promise<ArrayBuffer>;
}

const dec = new TextDecoder();

export class SimMessenger {
  readonly delivered: Delivered[] = [];
  faults: MessengerFaults = { ...HEALTHY };
  readonly stats = { requests: 0, acknowledged: 0, refused: 0, hung: 0, lostAnswers: 0, badBodies: 0 };
  /** Called for every record acknowledged. */
  onDelivered: (record: Record<string, unknown>) => void = () => {};
  /** Bodies that were not a JSON array of records: a contract violation by the collector. */
  readonly violations: string[] = [];

  constructor(
    private readonly clock: Scheduler,
    private readonly rng: Rng,
    readonly key: string,
  ) {}

  /** A fetch for one process's sender (its clock: answers to a crashed process never come). */
  fetchFor(clock: Clock, gen: number): (input: string | URL | Request, init?: RequestInit) => Promise<SimResponse> {
    return (input, init) => this.request(clock, gen, input, init);
  }

  private request(clock: Clock, gen: number, input: string | URL | Request, init?: RequestInit): Promise<SimResponse> {
    this.stats.requests++;
    const url = String(input instanceof Request ? input.url : input);
    const signal = init?.signal ?? null;
    return new Promise<SimResponse>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      if (signal?.aborted) return fail(abortError(signal));
      const f = this.faults;
      if (f.down) return clock.soon(() => fail(Object.assign(new TypeError("fetch failed: connection refused"), { code: "ECONNREFUSED" })));
      const hang = this.rng.chance(f.hang);
      const latency = this.rng.int(f.latencyMs[0], f.latencyMs[1]);
      let settled = false;
      signal?.addEventListener(
        "abort",
        () => {
          if (settled) return;
          settled = true;
          fail(abortError(signal));
        },
        { once: true },
      );
      if (hang) {
        this.stats.hung++;
        return;
      }
      clock.after(latency, () => {
        if (settled) return;
        settled = true;
        const kept = this.delivered.length;
        const answer = this.answer(url, gen, init);
        if (answer.status >= 200 && answer.status < 300 && this.rng.chance(f.lostAnswer)) {
          this.stats.lostAnswers++;
          for (let i = kept; i < this.delivered.length; i++) (this.delivered[i] as Delivered).answerLost = true;
          return fail(new TypeError("fetch failed: connection reset"));
        }
        resolve(answer);
      });
    });
  }

  private answer(url: string, gen: number, init?: RequestInit): SimResponse {
    const f = this.faults;
    const headers = new Headers(init?.headers as ConstructorParameters<typeof Headers>[0]);
    if (!url.endsWith(INGEST)) return response(404, "not found");
    if (f.wrongKey || headers.get("x-pipekit-api-key") !== this.key) return response(401, "unauthorized");
    if (this.rng.chance(f.error429)) return response(429, "slow down", { "retry-after": String(this.rng.int(0, 3)) });
    if (this.rng.chance(f.error5xx)) return response(503, "unavailable");
    let records: unknown;
    try {
      let body = init?.body as Uint8Array;
      if (headers.get("content-encoding") === "gzip") body = new Uint8Array(gunzipSync(body));
      records = JSON.parse(dec.decode(body));
    } catch (err) {
      this.stats.badBodies++;
      this.violations.push(`request body is not JSON: ${(err as Error).message}`);
      return response(400, "bad json");
    }
    if (!Array.isArray(records)) {
      this.violations.push("request body is not an array");
      return response(400, "not an array");
    }
    const at = this.clock.peek();
    for (const r of records) {
      this.delivered.push({ record: r as Record<string, unknown>, at, gen, answerLost: false });
      this.onDelivered(r as Record<string, unknown>);
    }
    this.stats.acknowledged += records.length;
    return response(200, "{}");
  }
}

function response(status: number, body: string, extra: Record<string, string> = {}): SimResponse {
  const bytes = new TextEncoder().encode(body);
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: new Headers({ "content-type": "application/json", ...extra }),
    arrayBuffer: () => Promise.resolve(bytes.buffer.slice(0) as ArrayBuffer),
  };
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error("The operation was aborted."), { name: "AbortError" });
}
