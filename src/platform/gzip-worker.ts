// A worker thread that gzips request bodies (README "Design choices", gzip): the main thread, which
// reads, encodes and sends, only posts a message per batch. Bodies in a SharedArrayBuffer are not
// copied on the way in, and the worker writes its output into shared memory the caller provides, so
// nothing larger than a few numbers crosses between the threads.
//
// The worker's code is the function below, turned into source text: it runs the same from
// `bun src/main.ts` and from the compiled executable (where a worker file would have to be a build
// entry point of its own), and it is type-checked with the rest. It must use nothing from outside.

import type { Gzipper } from "./types.ts";

/** One job: the body, and shared memory for the result (null: the result comes in fresh memory). */
interface GzipRequest {
  id: number;
  level: number;
  input: Uint8Array;
  output: Uint8Array | null;
}

type GzipReply = { id: number; length: number; bytes?: Uint8Array<ArrayBuffer> } | { id: number; error: string };

/** The worker's whole program. Runs in the worker: it may refer to nothing outside its body. */
function workerMain(gcEveryBytes: number): void {
  const scope = globalThis as unknown as {
    onmessage: (e: { data: GzipRequest }) => void;
    postMessage: (msg: GzipReply, transfer?: ArrayBuffer[]) => void;
  };
  let sinceGc = 0;
  scope.onmessage = (e) => {
    const { id, level, input, output } = e.data;
    let out: Uint8Array<ArrayBuffer>;
    try {
      out = Bun.gzipSync(input as Uint8Array<ArrayBuffer>, { level: level as 1 });
    } catch (err) {
      scope.postMessage({ id, error: String(err) });
      return;
    }
    if (output !== null && out.length <= output.length) {
      output.set(out);
      scope.postMessage({ id, length: out.length });
    } else scope.postMessage({ id, length: out.length, bytes: out }, [out.buffer]);
    // Each result is fresh memory outside the worker's small heap, which would not make it collect
    // soon (the same reason the ring paces collections: src/buffer/gc-pacer.ts).
    sinceGc += out.length + input.length;
    if (sinceGc >= gcEveryBytes) {
      sinceGc = 0;
      Bun.gc(false);
    }
  };
}

/** Collect in the worker after this many bytes in and out. */
const WORKER_GC_EVERY_BYTES = 64 << 20;

let url: string | null = null;

/** The worker's program as a blob URL: made once, kept for the life of the process (a worker may start at any reload). */
function workerUrl(): string {
  url ??= URL.createObjectURL(new Blob([`(${workerMain.toString()})(${WORKER_GC_EVERY_BYTES});`], { type: "application/javascript" }));
  return url;
}

interface Waiting {
  resolve: (bytes: Uint8Array<ArrayBuffer>) => void;
  reject: (err: Error) => void;
  output: Uint8Array | null;
}

/** Thrown for the jobs of a worker that was closed or failed. */
export class GzipWorkerClosed extends Error {}

export class GzipWorker implements Gzipper {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 0;
  #failure: Error | null = null;

  constructor(private readonly level = 1) {
    this.#worker = new Worker(workerUrl());
    this.#worker.unref(); // an idle worker does not keep the process alive
    this.#worker.onmessage = (e: MessageEvent<GzipReply>) => this.#settle(e.data);
    this.#worker.onerror = (e: ErrorEvent) => this.#fail(new GzipWorkerClosed(`gzip worker failed: ${e.message}`));
  }

  /**
   * Gzips `input` (read in place when its memory is a SharedArrayBuffer, else copied once). The
   * result is `output.subarray(0, n)` when it fits in `output` (shared memory), else fresh memory.
   * Rejects with GzipWorkerClosed once the worker was closed or failed.
   */
  gzip(input: Uint8Array, output: Uint8Array | null): Promise<Uint8Array<ArrayBuffer>> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise<Uint8Array<ArrayBuffer>>((resolve, reject) => {
      if (this.#waiting.size === 0) this.#worker.ref(); // a job in progress keeps the process alive
      this.#waiting.set(id, { resolve, reject, output });
      this.#worker.postMessage({ id, level: this.level, input, output } satisfies GzipRequest);
    });
  }

  /** Ends the worker; jobs not finished reject. */
  close(): void {
    this.#fail(new GzipWorkerClosed("gzip worker closed"));
  }

  #settle(reply: GzipReply): void {
    const w = this.#waiting.get(reply.id);
    if (!w) return;
    this.#waiting.delete(reply.id);
    if (this.#waiting.size === 0) this.#worker.unref();
    if ("error" in reply) w.reject(new Error(`gzip failed: ${reply.error}`));
    else w.resolve(reply.bytes ?? ((w.output as Uint8Array).subarray(0, reply.length) as Uint8Array<ArrayBuffer>));
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#worker.terminate();
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }
}
