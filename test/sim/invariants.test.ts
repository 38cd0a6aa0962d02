// The invariants' attribution of pieces too short for their probe (invariants.ts, shortPiece): a
// piece of a line whose file lost bytes is excused, anything else stays a violation.
import { expect, test } from "bun:test";
import { shortPiece } from "./invariants.ts";
import type { WrittenLine } from "./workload.ts";

const enc = new TextEncoder();
const line = (id: number, text: string): WrittenLine => {
  const content = enc.encode(`L${id};${text}`);
  return { id, content, message: new TextDecoder().decode(content) } as WrittenLine;
};

test("only replacement characters: the continuation bytes of a character in a lossy line, not any line's", () => {
  const lossy = line(4206, "qf9v 0日本"); // a piece of it may be the last bytes of 本 alone
  const ascii = line(4207, "plain text");
  expect(shortPiece("\uFFFD", [lossy], [lossy, ascii])?.of).toBe(lossy);
  expect(shortPiece("\uFFFD\uFFFD", [lossy], [lossy, ascii])?.of).toBe(lossy);
  expect(shortPiece("\uFFFD", [ascii], [lossy, ascii])).toBeUndefined();
  expect(shortPiece("\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD", [lossy], [lossy, ascii])).toBeUndefined(); // more than its bytes make
});

test("a lossy line's head cut inside its id, glued to a piece of another lossy line or to a line by its id", () => {
  const head = line(1644, ";ko]xd 3qh,6c}4");
  const tail = line(1719, "/np8{[_bkj5spwx\\1.yn[xhbu€ldr\"3 0tc{:3");
  const healthy = line(1720, "whole and well, written where nothing was lost");
  expect(shortPiece("L1644spwx\\1.yn[xhbu€ldr\"3 0tc", [head, tail], [head, tail, healthy])).toEqual({ of: head, glued: [] });
  expect(shortPiece("L1644L1720;whole and well", [head, tail], [head, tail, healthy])).toEqual({ of: head, glued: [1720] });
  // The middle of a line that lost nothing glued after it: not excused.
  expect(shortPiece("L1644and well, written where", [head, tail], [head, tail, healthy])).toBeUndefined();
  expect(shortPiece("L1644spwx\\1.yn[xhbu€ldr\"3 0tc", [head], [head, tail, healthy])).toBeUndefined();
});
