import { expect, test } from "bun:test";
import { FULL_GC_ANON_FLOOR_BYTES, GcPacer } from "../../src/buffer/gc-pacer.ts";

const MB = 1 << 20;

test("minor collections only while anonymous memory stays under the floor, or is unknown", () => {
  const p = new GcPacer();
  for (const anon of [10 * MB, 60 * MB, FULL_GC_ANON_FLOOR_BYTES, -1, 95 * MB]) expect(p.full(anon)).toBe(false);
});

test("above the floor: one full collection, then the baseline it left plus the headroom", () => {
  const p = new GcPacer(96 * MB, 48 * MB);
  expect(p.full(120 * MB)).toBe(true);
  // The next point takes the baseline (what the full collection left): 110 + 48 = 158 MB.
  expect(p.full(110 * MB)).toBe(false);
  expect(p.full(150 * MB)).toBe(false);
  expect(p.full(159 * MB)).toBe(true);
  // It freed a lot: the threshold falls back to the floor, not below it.
  expect(p.full(40 * MB)).toBe(false);
  expect(p.full(90 * MB)).toBe(false);
  expect(p.full(97 * MB)).toBe(true);
});

test("never two full collections at consecutive paced points, whatever the memory does", () => {
  const p = new GcPacer();
  let previous = false;
  let fulls = 0;
  for (let i = 0; i < 1000; i++) {
    const anon = Math.floor(Math.abs(Math.sin(i * 7.3)) * 600 * MB);
    const full = p.full(anon);
    expect(full && previous).toBe(false);
    previous = full;
    if (full) fulls++;
  }
  expect(fulls).toBeGreaterThan(0);
});
