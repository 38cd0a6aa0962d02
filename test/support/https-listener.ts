// An HTTPS server on 127.0.0.1 for the Kubernetes fakes, closed the way a crashed peer goes away:
// every open connection (watch streams included) is cut, not waited for.
import { createServer, type ServerOptions } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface HttpsListener {
  /** The port bound (0 asked for a free one). */
  port: number;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

export async function listenHttps(
  options: ServerOptions,
  port: number,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<HttpsListener> {
  const srv = createServer(options, handler);
  const sockets = new Set<Socket>();
  srv.on("secureConnection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    port: (srv.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}
