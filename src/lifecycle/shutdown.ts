// The graceful stop (README "Command line": SIGTERM/SIGINT stop reading, deliver what is buffered
// within shutdownTimeoutMs, sync the ring and the checkpoints; what was not delivered is sent after
// the next start). Reading stops and the sender drains at the same time: the source may be
// waiting on a full ring that only the sender can empty.
import type { Ring } from "../buffer/types.ts";
import type { Logger } from "../log.ts";
import type { Clock, Timer } from "../platform/types.ts";
import type { Sender } from "../sink/sender.ts";
import type { Source } from "../source/source.ts";
import type { Cleanups } from "./cleanups.ts";

export interface ShutdownParts {
  source: Pick<Source, "stop" | "close">;
  ring: Pick<Ring, "sync" | "close" | "stats">;
  /** The live sender at the moment of the stop. */
  sender(): Pick<Sender, "drain" | "stop">;
  /** shutdownTimeoutMs of the effective config (a SIGHUP may change it). */
  timeoutMs(): number;
  cleanups: Cleanups;
  log: Logger;
  clock: Clock;
}

/** After the deadline, this long for a source waiting on the (now closed) ring to notice. */
const SOURCE_GRACE_MS = 1000;

export class Shutdown {
  private started = false;

  constructor(private readonly parts: ShutdownParts) {}

  get stopping(): boolean {
    return this.started;
  }

  /** Resolves once everything is synced and closed; `delivered` says whether the ring was emptied. */
  async run(): Promise<{ delivered: boolean }> {
    if (this.started) return { delivered: false };
    this.started = true;
    const { source, ring, log } = this.parts;
    const timeoutMs = this.parts.timeoutMs();
    const clock = this.parts.clock;
    const deadline = clock.now() + timeoutMs;
    log.info("shutting down: reading stopped, delivering what is buffered", { deadlineMs: timeoutMs });
    let sourceStopped = false;
    const sourceStop = source.stop().then(() => {
      sourceStopped = true;
    });
    const sender = this.parts.sender();
    const drained = sender.drain(deadline);
    await raceUntil(clock, sourceStop, deadline);
    const { complete } = await drained;
    if (!sourceStopped) {
      // Still waiting for room in the ring at the deadline: closing the ring releases it; the
      // lines it held were never appended, so its checkpoint stays before them.
      log.warn("shutdown deadline: the source was still waiting for room in the ring");
      await ring.sync();
      await ring.close();
      await raceUntil(clock, sourceStop, clock.now() + SOURCE_GRACE_MS);
      // A hand-over that ignores the closed ring is a stuck loop: its checkpoints are still safe.
      if (!sourceStopped) log.error("the source loop did not stop; closing it anyway");
    }
    await ring.sync();
    source.close(); // checkpoints of what is durable
    await sender.stop();
    const left = ring.stats().records;
    await this.parts.cleanups.run();
    log.info("stopped", { delivered: complete, ringRecords: left });
    return { delivered: complete };
  }
}

/** Waits for `p` or until epoch ms `t`, whichever comes first; leaves no timer behind. */
async function raceUntil(clock: Clock, p: Promise<void>, t: number): Promise<void> {
  let timer: Timer | undefined;
  const until = new Promise<void>((r) => (timer = clock.after(Math.max(0, t - clock.now()), r)));
  try {
    await Promise.race([p, until]);
  } finally {
    timer?.cancel();
  }
}
