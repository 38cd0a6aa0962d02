// The other half of the loss invariant (docs/simulation.md, "Invariants"): every byte the collector
// counts lost (bytes_lost_total) is explained by a file that really went away unread. A loss counted
// where nothing was lost (a checkpoint left unclaimed though its file, or its .gz, was still on disk)
// is an over-count, and operators alert on any increase of that counter.
import { basename, dirname, join } from "node:path";
import { ROTATED_NAME } from "../../src/source/rotated.ts";
import type { SimFs } from "./sim-fs.ts";
import type { WrittenLine } from "./workload.ts";

/** The content of a file gone from disk unread — the file and its .gz, if the kubelet made one — by `goneAt`. */
export interface GoneUnread {
  livePath: string;
  goneAt: number;
}

/** What one collector process counted lost. */
export interface CountedLosses {
  gen: number;
  /** When it ended (Infinity: still running). */
  endedAt: number;
  /** Its bytesLost counter. */
  bytesLost: number;
  /** Each loss as its warning placed it: the file's path (or its checkpoint's live path), and the bytes. */
  losses: ReadonlyArray<{ path: string; bytes: number }>;
}

/** The live path a log file belongs to: `…/0.log.20261124-190213` and its `.gz` are `…/0.log`'s. */
export function livePathOf(path: string): string {
  const m = ROTATED_NAME.exec(basename(path));
  return m ? join(dirname(path), m[1] as string) : path;
}

/** What the bound needs to know of the simulated files (SimFs, and the kubelet's compressions). */
export interface FileHistory {
  /** The path each file was created at. */
  createdAs: ReadonlyMap<number, string>;
  /** Each file's largest size. */
  peakSize: ReadonlyMap<number, number>;
  /** The .gz made of a rotated file. */
  gzOf: ReadonlyMap<number, number>;
  /** When each freed file was freed. */
  freedAt: ReadonlyMap<number, number>;
}

/**
 * The contents gone unread: a file of one of the `excused` sets (deleted while down, forgotten, freed
 * under a stop's unfinished lines, left unfinished by a stop: leftUnfinished) together with its .gz, once both
 * are freed — a file compressed while down went away, but its content did not: the next process reads
 * its .gz —; and a file given up (`givenUp`) once it is freed: the process that gave it up reads no
 * .gz of it, nor does a restart, which knows it as read (its checkpoint done). And the largest file of
 * each live path (every estimate of a lost file's size is at most that).
 */
export function goneUnread(excused: ReadonlyArray<ReadonlySet<number>>, givenUp: ReadonlySet<number>, files: FileHistory): { gone: GoneUnread[]; largest: Map<string, number> } {
  const plainOf = new Map<number, number>();
  for (const [plain, gz] of files.gzOf) plainOf.set(gz, plain);
  const freedAt = (f: number | undefined) => (f === undefined ? Number.NEGATIVE_INFINITY : (files.freedAt.get(f) ?? Number.POSITIVE_INFINITY));
  const goneAt = new Map<number, number>(); // by the plain file
  const gone = (plain: number, at: number) => goneAt.set(plain, Math.min(at, goneAt.get(plain) ?? Number.POSITIVE_INFINITY));
  for (const set of excused) {
    for (const f of set) {
      const plain = plainOf.get(f) ?? f;
      gone(plain, Math.max(freedAt(plain), freedAt(files.gzOf.get(plain))));
    }
  }
  for (const f of givenUp) gone(f, freedAt(f));
  const out: GoneUnread[] = [];
  for (const [plain, at] of goneAt) {
    const path = files.createdAs.get(plain);
    if (path !== undefined && at !== Number.POSITIVE_INFINITY) out.push({ livePath: livePathOf(path), goneAt: at });
  }
  const largest = new Map<string, number>();
  for (const [file, path] of files.createdAs) {
    const live = livePathOf(path);
    largest.set(live, Math.max(largest.get(live) ?? 0, files.peakSize.get(file) ?? 0));
  }
  return { gone: out, largest };
}

/**
 * The files freed while process `gen` ran (before its stop: `freedRunning`) that its graceful stop
 * left unfinished, their checkpoints saved before their end, for the next process to count lost when
 * it finds them gone:
 * - read and closed, but pinned by a line whose rest the process had not read when it stopped (in a
 *   file held for its pod's metadata, say, and closed unread at the stop: `freedStopping`): the
 *   checkpoint stays before the line's first fragment (seed 402: a huge line of a pod unknown to the
 *   API, across twenty files);
 * - a .gz it read whole into memory (found rotated before it was read), freed on disk while the
 *   process still held its content, unread (seed 2042: held for metadata behind it).
 * Called when the process ends, before its descriptors close.
 */
export function leftUnfinished(gen: number, fs: SimFs, lines: readonly WrittenLine[], freedRunning: ReadonlySet<number>, freedStopping: ReadonlySet<number>): number[] {
  const out = new Set<number>();
  const unread = fs.unreadBy(gen);
  for (const f of freedStopping) if (fs.closedUnread.has(f)) unread.add(f);
  if (unread.size > 0) for (const l of lines) if (l.files.some((f) => unread.has(f))) for (const f of l.files) if (freedRunning.has(f)) out.add(f);
  for (const f of fs.readWhole.get(gen) ?? []) if (freedRunning.has(f) || freedStopping.has(f)) out.add(f);
  return [...out];
}

/**
 * The losses no file gone unread explains. The collector counts a loss in two places, each at most
 * the largest file of its live path:
 * - at start (Checkpointer.forgetUnclaimed), one per checkpoint of a file gone: its size at the save,
 *   or its largest rotated sibling on disk (a .gz by the size its trailer declares), whichever is
 *   larger, less the saved offset — an estimate: a crashed process may have read more after its last
 *   save, and the file may not have grown as large as its siblings. A process forgets them once; one
 *   that crashes before its next save leaves them to the next, which counts them again: so each
 *   process is held to the files gone by its end;
 * - a file given up over maxDeletedHeldBytes (SafetyNets.enforceDeletedCap): its size less where its
 *   last whole line ended, once.
 * So a process may count, per live path, at most the largest file of that path for each of its
 * files gone unread by the process's end. A loss counted under a live path none of whose files went
 * away unread (their content still on disk, or read) is an over-count; so is a counter its warnings
 * do not place, and — the bound without the warnings — a total over the sum of all of it.
 */
export function overCounts(processes: readonly CountedLosses[], gone: readonly GoneUnread[], largest: ReadonlyMap<string, number>): string[] {
  const out: string[] = [];
  let counted = 0;
  let allowed = 0;
  for (const p of processes) {
    counted += p.bytesLost;
    const allowance = new Map<string, number>();
    for (const g of gone) if (g.goneAt <= p.endedAt) allowance.set(g.livePath, (allowance.get(g.livePath) ?? 0) + (largest.get(g.livePath) ?? 0));
    for (const a of allowance.values()) allowed += a;
    const byPath = new Map<string, number>();
    for (const l of p.losses) byPath.set(livePathOf(l.path), (byPath.get(livePathOf(l.path)) ?? 0) + l.bytes);
    const placed = [...byPath.values()].reduce((s, n) => s + n, 0);
    if (placed !== p.bytesLost) out.push(`process ${p.gen} counted ${p.bytesLost} B lost, and its warnings place ${placed} B`);
    for (const [path, bytes] of byPath) {
      const may = allowance.get(path) ?? 0;
      const files = gone.filter((g) => g.livePath === path && g.goneAt <= p.endedAt).length;
      if (bytes > may) out.push(`process ${p.gen} counted ${bytes} B lost of ${path}, where ${files === 0 ? "no file went away unread" : `${files} file(s) went away unread, at most ${largest.get(path) ?? 0} B each`}: an over-count`);
    }
  }
  if (counted > allowed) out.push(`${counted} B counted lost in all, more than the ${allowed} B the files gone unread can explain`);
  return out;
}
