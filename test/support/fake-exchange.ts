// One request/answer of a Kubernetes fake, independent of the transport: real HTTPS on 127.0.0.1
// (tests, the demo) or in-process, a fetch function that calls the fake directly (the fleet
// simulation: a thousand watch streams without a thousand sockets, on a virtual clock).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";

export interface FakeExchange {
  method: string;
  url: URL;
  authorization: string | undefined;
  /** The TLS client certificate was verified against the fake's CA. */
  clientCertAuthorized: boolean;
  head(status: number, headers: Record<string, string>): void;
  write(chunk: string): void;
  end(chunk?: string): void;
  /** Cuts the connection, as a dying server or a reset does. */
  destroy(): void;
  /** Called once when the exchange is over, whoever ended it (server, client, reset). */
  onClose(fn: () => void): void;
}

export type FakeHandler = (ex: FakeExchange) => void;

/** A node:https request as a FakeExchange. */
export function nodeExchange(req: IncomingMessage, res: ServerResponse): FakeExchange {
  return {
    method: req.method ?? "GET",
    url: new URL(req.url ?? "/", "https://x"),
    authorization: req.headers.authorization,
    clientCertAuthorized: (req.socket as TLSSocket).authorized === true,
    head: (status, headers) => {
      res.writeHead(status, headers);
      res.flushHeaders();
    },
    write: (chunk) => void res.write(chunk),
    end: (chunk) => void res.end(chunk),
    destroy: () => req.socket.destroy(),
    onClose: (fn) => void req.on("close", fn),
  };
}

/** What fetch rejects with when nothing listens (the code is what the collector's messages show). */
export function connectionRefused(url: string): Error {
  return Object.assign(new Error(`Unable to connect. Is the computer able to access the url? (${url})`), { code: "ECONNREFUSED" });
}

const encoder = new TextEncoder();

/**
 * A fetch that hands each request to `handler` in this process. The answer's body is a stream the
 * handler writes into; aborting the request (or cancelling the body) closes the exchange; destroy()
 * makes the body's reader fail as a reset connection does. `up()` false refuses the connection.
 */
export function inProcessFetch(handler: FakeHandler, up: () => boolean): (url: string, init: RequestInit) => Promise<Response> {
  return (url, init) => {
    if (!up()) return Promise.reject(connectionRefused(url));
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Response>((resolve, reject) => {
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      let answered = false;
      let over = false;
      const closers: Array<() => void> = [];
      const finish = (fail?: unknown) => {
        if (over) return;
        over = true;
        signal?.removeEventListener("abort", onAbort);
        try {
          if (fail === undefined) controller.close();
          else controller.error(fail);
        } catch {
          // the reader already let go
        }
        if (!answered && fail !== undefined) reject(fail);
        for (const fn of closers) fn();
      };
      const onAbort = () => finish(signal?.reason ?? new DOMException("The operation was aborted.", "AbortError"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const body = new ReadableStream<Uint8Array>({
        start: (c) => void (controller = c),
        cancel: () => finish(),
      });
      const headers = new Headers(init.headers as ConstructorParameters<typeof Headers>[0]);
      const ex: FakeExchange = {
        method: init.method ?? "GET",
        url: new URL(url),
        authorization: headers.get("authorization") ?? undefined,
        clientCertAuthorized: false,
        head: (status, h) => {
          answered = true;
          resolve(new Response(body, { status, headers: h }));
        },
        write: (chunk) => {
          if (!over) controller.enqueue(encoder.encode(chunk));
        },
        end: (chunk) => {
          if (chunk !== undefined) ex.write(chunk);
          finish();
        },
        destroy: () => finish(Object.assign(new Error("The socket connection was closed unexpectedly"), { code: "ECONNRESET" })),
        onClose: (fn) => void closers.push(fn),
      };
      handler(ex);
    });
  };
}
