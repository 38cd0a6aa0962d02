// Durability ordering (issue 3): a SIGKILL cannot reveal a missing fsync (the page cache survives
// it), so the writer runs under strace and we check, syscall by syscall, that every "durable N"
// report comes after an fdatasync of the ring file that began after record N was appended and
// returned before the report. Needs strace (Debian: `apt-get install strace`).
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupDirs, tempDir } from "./helpers.ts";

afterAll(cleanupDirs);
const WRITER = join(import.meta.dir, "crash-writer.ts");

interface Sync {
  start: number;
  end: number;
}

export function checkTrace(trace: string, ringPath: string): { durableReports: number; syncs: number; problems: string[] } {
  const lines = trace.split("\n");
  const open = new Map<string, number>(); // pid -> line index of an unfinished sync of the ring file
  const syncs: Sync[] = [];
  const appending: Array<{ idx: number; first: number; last: number }> = [];
  const problems: string[] = [];
  let durableReports = 0;
  const syncRe = /^(\d+)\s+(fdatasync|fsync|msync)\((\d+)<([^>]*)>/;
  const resumedRe = /^(\d+)\s+<\.\.\. (fdatasync|fsync|msync) resumed>.*=\s*(-?\d+)/;
  const writeRe = /^(\d+)\s+write\(1<[^>]*>, "(appending|durable) (\d+)(?: (\d+))?\\n"/;
  lines.forEach((line, idx) => {
    let m = syncRe.exec(line);
    if (m) {
      if (m[4] !== ringPath) return;
      if (line.includes("<unfinished ...>")) open.set(m[1]!, idx);
      else if (/=\s*0\s*$/.test(line)) syncs.push({ start: idx, end: idx });
      return;
    }
    m = resumedRe.exec(line);
    if (m) {
      const start = open.get(m[1]!);
      if (start !== undefined) {
        open.delete(m[1]!);
        if (m[3] === "0") syncs.push({ start, end: idx });
      }
      return;
    }
    m = writeRe.exec(line);
    if (!m) return;
    if (m[2] === "appending") {
      appending.push({ idx, first: Number(m[3]), last: Number(m[4]) });
      return;
    }
    durableReports++;
    const seq = Number(m[3]);
    // The last "appending" line that announced this record, before the report.
    let announced = -1;
    for (let i = appending.length - 1; i >= 0; i--) {
      const a = appending[i]!;
      if (a.idx < idx && a.first <= seq && seq <= a.last) {
        announced = a.idx;
        break;
      }
    }
    if (announced < 0) {
      // Records from before this process (recovered at open) are covered by the open's own sync.
      if (!syncs.some((s) => s.end < idx)) problems.push(`line ${idx + 1}: durable ${seq} before any sync of the ring file`);
      return;
    }
    if (!syncs.some((s) => s.start > announced && s.end < idx)) {
      problems.push(`line ${idx + 1}: durable ${seq} without a completed fdatasync of ${ringPath} begun after record ${seq} was appended (line ${announced + 1})`);
    }
  });
  return { durableReports, syncs: syncs.length, problems };
}

test("every durable report follows an fdatasync of the ring file (strace)", async () => {
  const strace = Bun.which("strace");
  if (!strace) throw new Error("strace is not installed (Debian: apt-get install strace); this test needs it");
  const dir = tempDir("ringstrace-");
  const tracePath = join(dir, "trace.txt");
  const child = Bun.spawn(
    [strace, "-f", "-y", "-qq", "-e", "trace=fdatasync,fsync,msync,write", "-o", tracePath, process.execPath, WRITER, join(dir, "data"), String(192 * 1024), "10", "1200"],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [code, out, err] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]);
  if (code !== 0) throw new Error(`writer under strace exited ${code}: ${err.slice(-2000)}`);
  expect(out).toContain("closed");
  const trace = readFileSync(tracePath, "utf8");
  const result = checkTrace(trace, join(dir, "data", "ring.dat"));
  console.log(`strace: ${result.syncs} fdatasyncs of the ring file, ${result.durableReports} durable reports checked`);
  expect(result.problems).toEqual([]);
  expect(result.durableReports).toBeGreaterThan(5);
  expect(result.syncs).toBeGreaterThan(5);
}, 60_000);

test("the trace check catches a durable report that no sync covers", () => {
  const ring = "/d/ring.dat";
  const ok = [
    `1 write(1<pipe:[1]>, "appending 1 10\\n", 15) = 15`,
    `2 fdatasync(6<${ring}> <unfinished ...>`,
    `2 <... fdatasync resumed>)          = 0`,
    `1 write(1<pipe:[1]>, "durable 10\\n", 11) = 11`,
  ];
  expect(checkTrace(ok.join("\n"), ring).problems).toEqual([]);
  // The sync began before the records were appended: it cannot have covered them.
  const early = [ok[1]!, ok[0]!, ok[2]!, ok[3]!];
  expect(checkTrace(early.join("\n"), ring).problems.length).toBe(1);
  // A report with the sync still running.
  const running = [ok[0]!, ok[1]!, ok[3]!, ok[2]!];
  expect(checkTrace(running.join("\n"), ring).problems.length).toBe(1);
  // A sync of another file does not count.
  const other = ok.map((l) => l.replace(ring, "/d/other"));
  expect(checkTrace(other.join("\n"), ring).problems.length).toBe(1);
});
