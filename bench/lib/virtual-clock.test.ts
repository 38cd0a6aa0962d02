import { describe, expect, test } from "bun:test";
import { VirtualClock } from "./virtual-clock.ts";

describe("VirtualClock (the fleet simulation's time)", () => {
  test("fires timers in time order, then in the order they were set; time moves only in runUntil", async () => {
    const c = new VirtualClock(1000);
    const seen: string[] = [];
    c.after(50, () => seen.push(`b@${c.now()}`));
    c.after(10, () => seen.push(`a@${c.now()}`));
    c.after(50, () => seen.push(`c@${c.now()}`));
    const cancelled = c.after(20, () => seen.push("never"));
    cancelled.cancel();
    expect(c.now()).toBe(1000);
    await c.runUntil(1040);
    expect(seen).toEqual(["a@1010"]);
    expect(c.now()).toBe(1040);
    await c.runUntil(2000);
    expect(seen).toEqual(["a@1010", "b@1050", "c@1050"]);
    expect(c.now()).toBe(2000);
  });

  test("work started by a timer settles before time moves on: a chain of awaits and the timers it sets", async () => {
    const c = new VirtualClock(0);
    const seen: number[] = [];
    const sleep = (ms: number) => new Promise<void>((r) => c.after(ms, r));
    void (async () => {
      for (let i = 0; i < 5; i++) {
        await sleep(100);
        await Promise.resolve();
        await new Promise((r) => setImmediate(r)); // real I/O-like turn of the event loop
        seen.push(c.now());
      }
    })();
    await c.runUntil(1000);
    expect(seen).toEqual([100, 200, 300, 400, 500]);
  });

  test("every() repeats until cancelled", async () => {
    const c = new VirtualClock(0);
    let n = 0;
    const t = c.every(100, () => n++);
    await c.runUntil(350);
    expect(n).toBe(3);
    t.cancel();
    await c.runUntil(1000);
    expect(n).toBe(3);
  });
});
