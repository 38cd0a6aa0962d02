// What every simulated run must show, checked against the workload's ledger and what the messenger
// acknowledged: no record corrupted, split or invented; every line of a selected, labelled pod
// delivered, or its loss explained by a documented cause and counted — and no loss counted that no file
// gone unread explains; duplicates only after a crash or a lost answer; nothing of pods that are not
// selected or lack labels.
import { PipekitRecordSchema } from "../../src/pipeline/record.ts";
import { truncateUtf8, utf8ByteLength } from "../../src/source/utf8.ts";
import { type CountedLosses, type GoneUnread, overCounts } from "./loss-bound.ts";
import type { Delivered } from "./messenger.ts";
import type { WrittenLine, Workload } from "./workload.ts";

export interface LossExcuses {
  /**
   * Files (SimFs.fileOf) deleted while no collector read them (rotation or pod removal during
   * downtime, while the next process was starting, or while one was stopping gracefully), or while
   * one ran that then crashed.
   */
  deletedWhileDown: ReadonlySet<number>;
  /** Files deleted while a collector was up that it never opened (created and gone between two looks). */
  neverOpened: ReadonlySet<number>;
  /**
   * Files under a rotated name when a first start (no checkpoints saved before it) made its first
   * scan: history, never read (docs/source.md). Their lines may be missing, and a line the newest of
   * them ends inside of arrives as its rest alone, from the live file's first bytes; no loss is counted.
   */
  historyAtFirstStart: ReadonlySet<number>;
  /** Bytes the collector counted as lost (bytesLost summed over its processes). */
  bytesLostCounted: number;
  /**
   * What each process counted lost and where, against the contents of files gone unread (a file of
   * these sets, or one a graceful stop left unfinished, with its .gz) and the largest file of each
   * live path: every loss counted must be explained by them (loss-bound.ts).
   */
  overCount: { counted: readonly CountedLosses[]; gone: readonly GoneUnread[]; largest: ReadonlyMap<string, number> };
  /**
   * Files deleted while a process ran that stopped without saving its checkpoints (the data dir disk
   * full): the next process starts from older ones, and reads again rotated files the stopped one had
   * read — from a point inside a line whose head such a file held, lost with it.
   */
  forgotten: ReadonlySet<number>;
  /**
   * Lines still being written when a collector stopped gracefully, with fragments in files deleted
   * while it ran (`lines`), and those files (`files`): the line's head lived only in the stopped
   * process's memory. Such a line may be missing; pieces of the lines of those files may arrive
   * alone (the next process resumes them from checkpoints taken while the line was pending).
   */
  unfinishedAtStop: { lines: ReadonlySet<number>; files: ReadonlySet<number> };
  /**
   * Lines a process held in memory when it stopped gracefully — read, handed to the router, waiting
   * for room in a full ring until the shutdown deadline —, every file of which was freed by the time
   * it ended (given up over maxDeletedHeldBytes while they waited, or deleted and closed with it): no
   * later process can read them again. The case of a file still open at the stop, made general.
   */
  heldAtStop: ReadonlySet<number>;
  /** Files whose last descriptor closed before they were read to their end, after they were deleted (given up over the cap). */
  givenUp: ReadonlySet<number>;
  /** Whether the collector could have known of a line before it went down (written a while before its last checkpoint save). */
  knowable: (line: WrittenLine) => boolean;
  /**
   * Whether the collector could have the metadata of the line's pod when it read the line: a process
   * ran while the API server had it, and opened a file of the line before it could be forgotten
   * (else the line is filtered: no metadata).
   */
  metadataKnowable: (line: WrittenLine) => boolean;
}

export interface Verdict {
  violations: string[];
  delivered: number;
  distinct: number;
  duplicates: number;
  missing: number;
  excused: number;
  truncated: number;
  flushedIncomplete: number;
  /** Pieces of lines whose files lost bytes to a documented cause. */
  fragments: number;
}

const ID = /^L(\d+);/;

export function checkRun(workload: Workload, delivered: readonly Delivered[], maxLineBytes: number, excuses: LossExcuses, duplicatesAllowed: boolean): Verdict {
  const violations: string[] = [];
  const say = (msg: string) => {
    if (violations.length < 20) violations.push(msg);
  };
  const seen = new Map<number, number>();
  let truncated = 0;
  let flushedIncomplete = 0;
  let fragments = 0;
  // A line whose file lost bytes to a documented cause may arrive in pieces: its head cut where
  // the lost bytes began, or its tail without its head.
  // So may a line written across a file of its container given up unread (over maxDeletedHeldBytes)
  // that holds none of it: the collector ends a line pending across such a gap, as its rest may have
  // been in the bytes lost (docs/source.md) — here it was not, and the line arrives split there.
  const acrossGap = gapsInside(workload, excuses.givenUp);
  const lossy = (line: WrittenLine) =>
    line.files.some((i) => excuses.deletedWhileDown.has(i) || excuses.neverOpened.has(i) || excuses.givenUp.has(i) || excuses.historyAtFirstStart.has(i)) || acrossGap(line);
  const inLostHead = (line: WrittenLine) => line.files.some((i) => excuses.unfinishedAtStop.files.has(i));
  const unknown: Array<{ message: string; podName: string; containerName: string; stream: string; timestamp: string }> = [];
  const swallowed = new Set<number>();
  // A record of such a line cut at maxLineBytes cannot show what it swallowed (whole, or cut before
  // its gap, the rest dropped): the first line of its stream after it in a file that lost nothing —
  // the one glued to it — is excused with it.
  const swallowHidden = (of: WrittenLine, message: string) => {
    if (utf8ByteLength(message) <= maxLineBytes - 4) return;
    const same = (l: WrittenLine) => l.pod === of.pod && l.container === of.container && l.restart === of.restart && l.stream === of.stream;
    const next = workload.lines.find((l) => l.id > of.id && same(l) && !lossy(l));
    if (next) swallowed.add(next.id);
  };
  for (const d of delivered) {
    const parsed = PipekitRecordSchema.safeParse(d.record);
    if (!parsed.success) {
      say(`a record breaks the messenger contract: ${JSON.stringify(d.record).slice(0, 200)}`);
      continue;
    }
    const r = parsed.data;
    const m = ID.exec(r.message);
    const line = m ? workload.byId.get(Number(m[1])) : undefined;
    if (!line) {
      unknown.push(r);
      continue;
    }
    seen.set(line.id, (seen.get(line.id) ?? 0) + 1);
    const kind = checkRecord(line, r, maxLineBytes);
    if (kind === "truncated") {
      truncated++;
      if (lossy(line)) swallowHidden(line, r.message); // its gap came after the cut
    } else if (kind === "flushed") flushedIncomplete++;
    else if (kind !== "whole") {
      if (lossy(line) || inLostHead(line)) {
        // Cut where its lost bytes began — or, when a lost file held the rest of a partial line, glued
        // to the fragments read next (no collector can tell a gap it never saw): the lines swallowed
        // that way are excused with it.
        fragments++;
        for (const m of r.message.slice(1).matchAll(/L(\d+);/g)) swallowed.add(Number(m[1]));
        swallowHidden(line, r.message);
      } else say(`line ${line.id} (inodes ${line.inodes.join(",")}, files ${line.files.join(",")}, written at ${line.timestamp}): ${kind}`);
    }
  }
  // A tail whose head's file was forgotten by a process that stopped without saving its checkpoints.
  const headForgotten = (l: WrittenLine) => excuses.forgotten.has(l.files[0] as number);
  const excusable = (l: WrittenLine) => lossy(l) || headForgotten(l) || inLostHead(l);
  for (const record of unknown) {
    const message = record.message;
    // Of the record's own stream: a short piece ("L") may be a piece of lines of other containers too.
    const ofStream = (l: WrittenLine) => l.pod.name === record.podName && l.container === record.containerName && l.stream === record.stream;
    const paused = workload.lines.find((l) => l.pausedAt.length > 0 && ofStream(l) && pausePieces(l, maxLineBytes).has(message) && (!l.message.startsWith(message) || l.timestamp === record.timestamp));
    if (paused) {
      fragments++; // the rest of a line whose writer paused for partialFlushMs (its head flushed)
      // Or its head, when the writer paused inside "L<id>;": too short to show the id, it is the
      // line's record as a head that does show it would be (seed 2647: "L1016", then ";…"); its
      // timestamp, the line's first fragment's, says which line's (seed 2647 again: an "L" of another
      // container's line paused there too was credited with it).
      if (paused.message.startsWith(message)) seen.set(paused.id, (seen.get(paused.id) ?? 0) + 1);
      continue;
    }
    // A piece of a line from a file that lost bytes: it begins somewhere inside that line (and may be
    // cut or glued at its end as the line's head is).
    const body = message.replace(/^\uFFFD+/, "");
    const probe = body.slice(0, PROBE_CHARS);
    let of = probe.length > 0 ? workload.lines.find((l) => excusable(l) && l.message.includes(probe)) : undefined;
    // Too short for the probe: only replacement characters, or glued to the next piece read before it.
    if (!of) {
      const stream = workload.lines.filter((l) => l.pod.name === record.podName && l.container === record.containerName && l.stream === record.stream);
      const short = shortPiece(message, stream.filter(excusable), stream);
      of = short?.of;
      for (const id of short?.glued ?? []) swallowed.add(id);
    }
    if (of) {
      fragments++;
      swallowHidden(of, message);
    } else {
      const whose = probe.length > 0 ? workload.lines.find((l) => l.message.includes(probe)) : undefined;
      const from = whose ? ` — it begins inside line ${whose.id} (${whose.pod.name}/${whose.container}/${whose.restart} at ${whose.timestamp}, inodes ${whose.inodes.join(",")} (files ${whose.files.join(",")}), ${whose.message.indexOf(probe)} chars in)` : "";
      say(`a record that is no line written (invented, or the tail of a split line)${from}: ${JSON.stringify(message.slice(0, 120))}`);
    }
  }
  let duplicates = 0;
  for (const n of seen.values()) duplicates += n - 1;
  if (duplicates > 0 && !duplicatesAllowed) say(`${duplicates} duplicate records without a crash or a lost answer`);
  let missing = 0;
  let excused = 0;
  let excusedBytes = 0;
  let uncountedBytes = 0;
  let uncountedExample: string | undefined;
  for (const line of workload.lines) {
    const must = line.pod.kind === "argo" && excuses.metadataKnowable(line);
    if (!must) {
      if (seen.has(line.id) && line.pod.kind !== "argo") say(`line ${line.id} of a ${line.pod.kind} pod was delivered`);
      if (line.pod.kind === "argo" && !seen.has(line.id)) excused++;
      continue;
    }
    if (seen.has(line.id)) continue;
    const heldAtStop = excuses.heldAtStop.has(line.id);
    if (lossy(line) || swallowed.has(line.id) || excuses.unfinishedAtStop.lines.has(line.id) || heldAtStop) {
      excused++;
      excusedBytes += line.content.length;
      // Written while a collector ran, in a file it followed, deleted while it was down: it must say so
      // (what was written while it was down into a file deleted before it came back, it cannot know;
      // nor a line that also had fragments in a file it never saw, lost with that file whatever it did).
      const neverSeen = line.files.some((i) => excuses.neverOpened.has(i) || excuses.historyAtFirstStart.has(i));
      // So must a stopped process's held lines: their files' checkpoints stayed before them. Not a
      // line swallowed by another's record: it was read, glued to a line cut by a loss before it,
      // whatever happened to its files afterwards (seed 162: read, then its files deleted while the
      // process that had read them ran on, then crashed).
      if (excuses.knowable(line) && !neverSeen && !swallowed.has(line.id) && (heldAtStop || line.files.some((i) => excuses.deletedWhileDown.has(i)))) {
        uncountedBytes += line.content.length;
        uncountedExample ??= `line ${line.id} (${line.pod.name}/${line.container}/${line.restart}, written at ${line.timestamp}, inodes ${line.inodes.join(",")})`;
      }
      continue;
    }
    missing++;
    if (missing <= 5) say(`line ${line.id} (${line.pod.name}/${line.container}/${line.restart}, ${line.content.length} B, ${line.complete ? "complete" : "incomplete"}, inodes ${line.inodes.join(",")}) never arrived`);
  }
  if (missing > 5) say(`… ${missing} lines missing in all`);
  if (uncountedBytes > 0 && excuses.bytesLostCounted === 0) say(`${uncountedBytes} B of lines written while the collector ran, in files deleted while it was down, and no loss counted (e.g. ${uncountedExample})`);
  for (const v of overCounts(excuses.overCount.counted, excuses.overCount.gone, excuses.overCount.largest)) say(v);
  return { violations, delivered: delivered.length, distinct: seen.size, duplicates, missing, excused, truncated, flushedIncomplete, fragments };
}

/** Whether a line's fragments went to files on both sides of a given-up file of its container instance. */
function gapsInside(workload: Workload, givenUp: ReadonlySet<number>): (line: WrittenLine) => boolean {
  const instance = (l: WrittenLine) => `${l.pod.uid}/${l.container}/${l.restart}`;
  const gaps = new Map<string, number[]>(); // file ids grow with creation: a container's files in rotation order
  for (const l of workload.lines) {
    for (const file of l.files) {
      if (!givenUp.has(file)) continue;
      const list = gaps.get(instance(l)) ?? [];
      if (!list.includes(file)) list.push(file);
      gaps.set(instance(l), list);
    }
  }
  return (line) => {
    const list = gaps.get(instance(line));
    if (!list || line.files.length < 2) return false;
    const first = Math.min(...line.files);
    const last = Math.max(...line.files);
    return list.some((g) => g > first && g < last && !line.files.includes(g));
  };
}

const PROBE_CHARS = 24;

/**
 * The line a message is a piece of when its first characters cannot tell (`checkRun` matches
 * PROBE_CHARS of them): a piece that is only replacement characters (the continuation bytes of a
 * character its line's head ended inside of, in a file that lost them), or a piece shorter than that
 * which was glued to the next one read (a line's head cut inside its id, say). Pieces of the
 * excusable lines of its stream (`lossy`); what is glued after one is another such piece, or a line
 * by its id (swallowed, and excused with it: `glued`). Undefined when it is no such piece.
 */
export function shortPiece(message: string, lossy: readonly WrittenLine[], stream: readonly WrittenLine[]): { of: WrittenLine; glued: number[] } | undefined {
  const onlyReplaced = (m: string) => m.length > 0 && /^\uFFFD+$/.test(m);
  const bytesOf = (m: string) => lossy.find((l) => decodesTo(l.content, m));
  if (onlyReplaced(message)) {
    const of = bytesOf(message);
    return of && { of, glued: [] };
  }
  const body = message.replace(/^\uFFFD+/, "");
  for (let k = Math.min(PROBE_CHARS - 1, body.length - 1); k >= 1; k--) {
    const of = lossy.find((l) => l.message.includes(body.slice(0, k)));
    if (!of) continue;
    // Where two pieces meet inside characters, one character may belong to neither.
    for (const rest of [body.slice(k), body.slice(k + 1)]) {
      const id = /^L(\d+);/.exec(rest);
      if (id && stream.some((l) => l.id === Number(id[1]))) return { of, glued: [...rest.matchAll(/L(\d+);/g)].map((m) => Number(m[1])) };
      const probe = rest.replace(/^\uFFFD+/, "").slice(0, PROBE_CHARS);
      if (probe.length > 0 ? lossy.some((l) => l.message.includes(probe)) : onlyReplaced(rest) && bytesOf(rest)) return { of, glued: [] };
    }
  }
  return undefined;
}

/** Whether some byte range of `content` decodes to `text`: replacement characters, of bytes ≥ 0x80 only (at most 4 each). */
function decodesTo(content: Uint8Array, text: string): boolean {
  for (let start = 0; start < content.length; start++) {
    for (let end = start + 1; end <= Math.min(content.length, start + 4 * text.length) && (content[end - 1] as number) >= 0x80; end++) {
      if (utf8.decode(content.subarray(start, end)) === text) return true;
    }
  }
  return false;
}

type RecordCheck = "whole" | "truncated" | "flushed" | string;

function checkRecord(line: WrittenLine, r: Record<string, string>, maxLineBytes: number): RecordCheck {
  const labels = line.pod.meta.labels;
  const want: Record<string, string | undefined> = {
    orgUUID: labels["workflows.pipekit.io/org_uuid"],
    runUUID: labels["workflows.pipekit.io/run_uuid"],
    pipeUUID: labels["workflows.pipekit.io/pipe_uuid"],
    nodeID: line.pod.meta.annotations["workflows.argoproj.io/node-id"],
    podName: line.pod.name,
    containerName: line.container,
    timestamp: line.timestamp,
    stream: line.stream,
  };
  for (const [k, v] of Object.entries(want)) if (r[k] !== v) return `field ${k} is ${JSON.stringify(r[k])}, written ${JSON.stringify(v)}`;
  const message = r.message as string;
  if (line.pausedAt.length > 0 && pausePieces(line, maxLineBytes).has(message)) return "flushed"; // its writer paused for partialFlushMs there
  if (message === line.message && (line.complete || utf8ByteLength(message) <= maxLineBytes)) return line.complete ? "whole" : "flushed";
  const full = line.message;
  const over = utf8ByteLength(full) > maxLineBytes;
  if (over && message === truncateUtf8(full, maxLineBytes)) return "truncated";
  if (over && sameBarLastChar(message, truncateUtf8(full, maxLineBytes)) && utf8ByteLength(message) <= maxLineBytes) return "truncated";
  if (!line.complete && full.startsWith(message)) return "flushed";
  if (full.startsWith(message)) return `arrived cut: ${utf8ByteLength(message)} of ${utf8ByteLength(full)} bytes (a line split into two records?)`;
  return `message differs from what was written (first 80: ${JSON.stringify(message.slice(0, 80))} vs ${JSON.stringify(full.slice(0, 80))})`;
}

const pieces = new WeakMap<WrittenLine, Set<string>>();
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * The records a line may arrive as when its writer paused for partialFlushMs or more between two
 * fragments (a busy CPU delays writers too; the collector flushes the line there, as documented):
 * its bytes between two such pauses, or a pause and an end, decoded — not the whole line; a piece
 * over maxLineBytes (the collector need not flush at every pause) arrives cut there, as any line.
 */
function pausePieces(line: WrittenLine, maxLineBytes: number): Set<string> {
  let set = pieces.get(line);
  if (set) return set;
  set = new Set();
  const cuts = [0, ...line.pausedAt, line.content.length];
  for (let i = 0; i < cuts.length; i++) {
    for (let j = i + 1; j < cuts.length; j++) {
      if (i === 0 && j === cuts.length - 1) continue;
      const piece = utf8.decode(line.content.subarray(cuts[i] as number, cuts[j] as number));
      set.add(utf8ByteLength(piece) > maxLineBytes ? truncateUtf8(piece, maxLineBytes) : piece);
    }
  }
  pieces.set(line, set);
  return set;
}

/** Equal but for a replacement character at the end (a character cut at the truncation point). */
function sameBarLastChar(a: string, b: string): boolean {
  const strip = (s: string) => (s.endsWith("\uFFFD") ? s.slice(0, -1) : s);
  return strip(a) === strip(b) || strip(a) === b || a === strip(b);
}
