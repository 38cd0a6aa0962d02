// The counting sink's ledger on a thread of its own at the lowest CPU priority (nice 19). The real
// messenger runs on other machines; this stand-in shares the development machine's two cores with
// the collector it measures. Counting a body (gunzip, decode, scan) is ~45 % of a core in the gzip
// scenario, so counting it as it arrived took CPU from the collector that a remote messenger would
// not. At nice 19 the ledger gets only what the collector leaves, and counts the rest afterwards:
// its figures are timed by each body's arrival (sink-ledger.ts), so the lag changes none of them.
//
// The HTTP front (counting-sink.ts) answers each request, then posts the body here, transferred
// (not copied). Messages are handled in the order posted: a control or reset applies to the bodies
// after it, and a stats request answers once every body before it was counted.
import { dlopen } from "bun:ffi";
import { type LedgerControl, type LedgerStats, SinkLedger } from "./sink-ledger.ts";

export type VerifierMessage =
  | { kind: "body"; wire: Uint8Array; gzipped: boolean; arrivedAt: number }
  | { kind: "control"; control: LedgerControl }
  | { kind: "reset" }
  | { kind: "stats"; id: number };

export type VerifierReply = { id: number; stats: LedgerStats } | { niceness: number };

const PRIO_PROCESS = 0;
const LOWEST = 19;

/** Lowers this thread's priority: on Linux a nice value belongs to the thread, and `who` 0 is the caller. Returns the nice value set, or null. */
function lowerThisThread(): number | null {
  try {
    const libc = dlopen("libc.so.6", { setpriority: { args: ["i32", "u32", "i32"], returns: "i32" } });
    const rc = libc.symbols.setpriority(PRIO_PROCESS, 0, LOWEST);
    libc.close();
    return rc === 0 ? LOWEST : null;
  } catch {
    return null;
  }
}

declare const self: { onmessage: (e: MessageEvent<VerifierMessage>) => void; postMessage(m: VerifierReply): void };

if (typeof self !== "undefined" && !Bun.isMainThread) {
  const ledger = new SinkLedger();
  self.postMessage({ niceness: lowerThisThread() ?? 0 });
  self.onmessage = (e) => {
    const m = e.data;
    if (m.kind === "body") ledger.ingest(m.wire, m.gzipped, m.arrivedAt, true);
    else if (m.kind === "control") ledger.control(m.control);
    else if (m.kind === "reset") ledger.reset();
    else self.postMessage({ id: m.id, stats: ledger.stats() });
  };
}
