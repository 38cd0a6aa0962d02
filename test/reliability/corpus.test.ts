// The bad-input corpus (issue 9, part 4) through one running collector process: each input is written
// between good lines of its own pod's log file; the process must keep running, the good lines must
// arrive, and exactly the expected counters of GET /status must move by the expected amounts.
// Inputs: test/corpus/* (regenerate with `bun test/corpus/make.ts`); the 3 MB and 50 MB lines are
// made here, at test time.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { argoPod, podListJson, prng, type SamplePod } from "../../src/dev/sample-node.ts";
import type { CollectorProcess } from "../support/collector-process.ts";
import { type Env, makeEnv, stop } from "./support.ts";

setDefaultTimeout(45_000);
const CORPUS = join(import.meta.dir, "../corpus");
const TS = "2026-11-25T11:00:00.000000001Z";
const CASES = ["garbage", "nul", "utf8", "cri", "docker", "brace-first", "long3", "long3-partials", "long50"] as const;
type Case = (typeof CASES)[number];

let env: Env;
let c: CollectorProcess;
const pods = new Map<Case, SamplePod>();
let root = "";
let podsFile = "";

beforeAll(async () => {
  const rand = prng(77);
  env = await makeEnv("corpus", (dir) => {
    root = join(dir, "pods");
    podsFile = join(dir, "pods.json");
    for (const name of CASES) pods.set(name, argoPod(rand, "corpus-wf", name.replace(/[^a-z0-9]/g, ""), ["main"]));
    mkdirSync(root, { recursive: true });
    writeFileSync(podsFile, podListJson([...pods.values()]));
    return { root, podsFile };
  });
  c = env.start(env.config({ buffer: { maxBytes: "16MiB" }, metadata: { waitForMetadataSeconds: 2 } }));
  expect(await env.ready()).toBe(true);
}, 30_000);

afterAll(async () => {
  if (c) expect(await stop(c)).toBe(0);
  await env.cleanup();
});

function logPath(pod: SamplePod, container = "main"): string {
  const d = join(root, `${pod.namespace}_${pod.name}_${pod.uid}`, container);
  mkdirSync(d, { recursive: true });
  return join(d, "0.log");
}

const good = (tag: string, n: number, format: "cri" | "docker" = "cri") => {
  const messages = Array.from({ length: n }, (_, i) => `corpus:${tag}:good:${i}`);
  const text = messages.map((m) => (format === "cri" ? `${TS} stdout F ${m}\n` : JSON.stringify({ log: `${m}\n`, stream: "stdout", time: TS }) + "\n")).join("");
  return { messages, text };
};

function delivered(): Map<string, { timestamp: string; stream: string; count: number; length: number }> {
  const out = new Map<string, { timestamp: string; stream: string; count: number; length: number }>();
  for (const r of env.messenger.received()) {
    const e = out.get(r.message);
    if (e) e.count++;
    else out.set(r.message, { timestamp: r.timestamp, stream: r.stream, count: 1, length: Buffer.byteLength(r.message) });
  }
  return out;
}

/** Waits until `messages` all arrived and the read counter stopped moving; returns /status. */
async function settle(messages: string[], timeoutMs = 30_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    const got = delivered();
    const st = await env.status();
    if (messages.every((m) => got.has(m)) && st.events.read === last && st.events.inRing === 0) return st;
    last = st.events.read;
    await Bun.sleep(300);
  }
  const got = delivered();
  throw new Error(`not delivered within ${timeoutMs} ms: ${messages.filter((m) => !got.has(m)).slice(0, 5).join(", ")}`);
}

/** Counter deltas between two /status reads, by dotted path. */
function delta(a: Record<string, any>, b: Record<string, any>, path: string): number {
  const get = (o: Record<string, any>) => path.split(".").reduce((x, k) => (x == null ? undefined : x[k]), o as any) ?? 0;
  return (get(b) as number) - (get(a) as number);
}

/** The counters that must not move unless a case says so. */
const WATCHED = [
  "events.skipped.malformed",
  "events.filteredTotal",
  "events.deadLettered",
  "source.linesTruncated",
  "source.bytesLost",
  "source.filesGivenUp",
  "source.watchdogReopens",
  "sink.bisections",
  "ring.recoverySkippedRecords",
];

async function runCase(
  name: Case,
  bad: Uint8Array | string,
  expected: { moved: Record<string, number>; deliveredToo?: string[]; format?: "cri" | "docker"; badFirst?: boolean },
): Promise<{ after: Record<string, any>; got: ReturnType<typeof delivered> }> {
  const before = await env.status();
  const format = expected.format ?? "cri";
  const a = good(`${name}:before`, 5, format);
  const z = good(`${name}:after`, 5, format);
  const path = logPath(pods.get(name)!);
  // One write: the file's first line is what decides its format (badFirst puts the bad input there).
  appendFileSync(path, expected.badFirst ? Buffer.concat([Buffer.from(bad), Buffer.from(a.text), Buffer.from(z.text)]) : Buffer.concat([Buffer.from(a.text), Buffer.from(bad), Buffer.from(z.text)]));
  const after = await settle([...a.messages, ...z.messages, ...(expected.deliveredToo ?? [])]);
  const got = delivered();
  // Alive, and nothing else went wrong.
  expect((await fetch(`http://127.0.0.1:${env.port}/health`)).status).toBe(200);
  expect(c.proc.exitCode).toBeNull();
  for (const key of WATCHED) expect(`${key} moved by ${delta(before, after, key)}`).toBe(`${key} moved by ${expected.moved[key] ?? 0}`);
  for (const [key, n] of Object.entries(expected.moved)) expect(`${key} moved by ${delta(before, after, key)}`).toBe(`${key} moved by ${n}`);
  expect(after.events.accountingImbalance).toBe(0);
  for (const m of [...a.messages, ...z.messages]) expect(got.get(m)?.count).toBe(1);
  return { after, got };
}

describe("bad input in a log file: counted, skipped, the rest arrives", () => {
  test("binary garbage (4 KiB of random bytes): every garbage line counted malformed", async () => {
    const garbage = readFileSync(join(CORPUS, "binary-garbage.bin"));
    const bad = Buffer.concat([garbage, Buffer.from("\n")]);
    const lines = bad.toString("latin1").split("\n").slice(0, -1);
    expect(lines.some((l) => /^\d{4}-\d\d-\d\dT/.test(l))).toBe(false); // precondition: none can parse
    await runCase("garbage", bad, { moved: { "events.skipped.malformed": lines.length, "events.read": lines.length + 10 } });
  });

  test("NUL runs (a crashed node's unwritten blocks): a NUL-only line is malformed; a good line right after NULs arrives", async () => {
    const { got } = await runCase("nul", readFileSync(join(CORPUS, "nul-runs.log")), {
      moved: { "events.skipped.malformed": 1 },
      deliveredToo: ["corpus:nul:glued-to-nuls", "corpus:nul:after-the-runs"],
    });
    expect(got.get("corpus:nul:glued-to-nuls")?.count).toBe(1);
  });

  test("invalid UTF-8: replaced with U+FFFD, delivered, nothing counted as malformed", async () => {
    const { got } = await runCase("utf8", readFileSync(join(CORPUS, "invalid-utf8.log")), { moved: { "events.read": 17 } });
    const utf8 = [...got.keys()].filter((m) => m.startsWith("corpus:utf8:") && !m.includes(":good:"));
    expect(utf8.length).toBe(7);
    for (const m of utf8) {
      expect(m).toContain("\uFFFD");
      expect(m.endsWith(":end") || m.startsWith("corpus:utf8:line-ends-mid-char:")).toBe(true);
    }
  });

  test("CRI lines with bad timestamps, unknown streams, bad tags: 10 malformed; odd but valid ones delivered as written", async () => {
    const { got } = await runCase("cri", readFileSync(join(CORPUS, "cri-malformed.log")), {
      moved: { "events.skipped.malformed": 10 },
      deliveredToo: ["corpus:cri:tagged", "corpus:cri:impossible-date", "corpus:cri:stderr", " corpus:cri:leading-space"],
    });
    expect(got.get("corpus:cri:impossible-date")?.timestamp).toBe("2026-13-45T99:99:99.000000000Z"); // passes through as written
    expect(got.get("corpus:cri:stderr")?.stream).toBe("stderr");
    for (const m of got.keys()) expect(m).not.toMatch(/unknown-stream|upper-stream|bad-tag|bad-time|slashes|double-space/);
  });

  test("broken docker json-file lines: 7 malformed, one without time filtered (missing-timestamp), partials merged", async () => {
    const { got } = await runCase("docker", readFileSync(join(CORPUS, "docker-broken.log")), {
      format: "docker",
      moved: { "events.skipped.malformed": 7, "events.filteredTotal": 1, "events.filtered.missing-timestamp": 1 },
      deliveredToo: ["corpus:docker:first", "corpus:docker:partial-joined", 'corpus:docker:escapes "q" \\ \t \u0001 ✓'],
    });
    expect(got.get('corpus:docker:escapes "q" \\ \t \u0001 ✓')?.stream).toBe("stderr");
  });

  test("a CRI file whose first line is garbage starting with '{': one malformed line, the CRI lines after it still arrive", async () => {
    await runCase("brace-first", '{"this is not": "a CRI line"\n', { badFirst: true, moved: { "events.skipped.malformed": 1 } });
  });
});

describe("over-long lines: truncated at maxLineBytes (1 MiB), counted, memory bounded", () => {
  const MiB = 1024 * 1024;
  test("a 3 MB line", async () => {
    const content = "corpus:long3:" + "x".repeat(3_000_000);
    const { got } = await runCase("long3", `${TS} stdout F ${content}\n`, { moved: { "source.linesTruncated": 1 } });
    const m = [...got.entries()].find(([k]) => k.startsWith("corpus:long3:x"));
    expect(m?.[1].length).toBeLessThanOrEqual(MiB);
    expect(m?.[1].length).toBeGreaterThan(MiB - 16);
  });

  test("a 3 MB line split by the runtime into 16 KiB partials", async () => {
    const content = "corpus:long3p:" + "y".repeat(3_000_000);
    let text = "";
    for (let i = 0; i < content.length; i += 16 * 1024) text += `${TS} stdout ${i + 16 * 1024 >= content.length ? "F" : "P"} ${content.slice(i, i + 16 * 1024)}\n`;
    const { got } = await runCase("long3-partials", text, { moved: { "source.linesTruncated": 1 } });
    const m = [...got.entries()].find(([k]) => k.startsWith("corpus:long3p:y"));
    expect(m?.[1].length).toBeLessThanOrEqual(MiB);
    expect(m?.[1].length).toBeGreaterThan(MiB - 16);
  });

  test("a 50 MB line: truncated once; resident memory stays far below the line's size", async () => {
    const path = logPath(pods.get("long50")!);
    const before = await env.status();
    const a = good("long50:before", 5);
    writeFileSync(path, a.text);
    const fd = openSync(path, "a");
    writeSync(fd, `${TS} stdout F corpus:long50:`);
    const block = Buffer.alloc(1024 * 1024, "z");
    for (let i = 0; i < 50; i++) writeSync(fd, block);
    writeSync(fd, "\n");
    const z = good("long50:after", 5);
    writeSync(fd, z.text);
    closeSync(fd);
    const after = await settle([...a.messages, ...z.messages]);
    expect(delta(before, after, "source.linesTruncated")).toBe(1);
    expect(delta(before, after, "events.skipped.malformed")).toBe(0);
    const m = [...delivered().entries()].find(([k]) => k.startsWith("corpus:long50:z"));
    expect(m?.[1].length).toBeLessThanOrEqual(MiB);
    const metrics = await (await fetch(`http://127.0.0.1:${env.port}/metrics`)).text();
    const rss = Number(/^pipekit_collector_process_resident_memory_bytes (\S+)/m.exec(metrics)?.[1]);
    expect(rss).toBeGreaterThan(0);
    expect(rss).toBeLessThan(300 * 1024 * 1024);
  }, 60_000);
});

describe("a PodList with missing fields (static provider, reloaded while running)", () => {
  test("broken items are counted and ignored; the good pod's lines arrive; a pod without labels is skipped; an unknown pod is held, then filtered", async () => {
    const before = await env.status();
    const list = readFileSync(join(CORPUS, "podlist-missing-fields.json"), "utf8");
    const items = (JSON.parse(list) as { items: Array<{ metadata?: { name?: string; uid?: string } }> }).items;
    // The good pod, the pod without labels and the one without annotation keep their uids; the
    // no-uid pod's file is under a uid that no item has.
    const file = (name: string, uid: string) => {
      const d = join(root, `argo_${name}_${uid}`, "main");
      mkdirSync(d, { recursive: true });
      return join(d, "0.log");
    };
    writeFileSync(podsFile, list);
    await Bun.sleep(1500); // the provider reloads on change
    const g = good("podlist:good-pod", 5);
    writeFileSync(file("good-pod", "00000000-0000-4000-a000-000000000001"), g.text);
    writeFileSync(file("no-labels-pod", "00000000-0000-4000-a000-000000000004"), good("podlist:no-labels", 3).text);
    writeFileSync(file("no-annotation-pod", "00000000-0000-4000-a000-000000000006"), good("podlist:no-annotation", 4).text);
    writeFileSync(file("no-uid-pod", "00000000-0000-4000-a000-000000000002"), good("podlist:no-uid", 2).text);
    // The held files give up after waitForMetadataSeconds (2 s).
    const deadline = Date.now() + 20_000;
    let after = await env.status();
    while (Date.now() < deadline && delta(before, after, "events.filteredTotal") < 6) {
      await Bun.sleep(300);
      after = await env.status();
    }
    after = await settle(g.messages);
    expect((await fetch(`http://127.0.0.1:${env.port}/health`)).status).toBe(200);
    const valid = items.filter((i) => i && typeof i === "object" && i.metadata?.uid && i.metadata?.name).length;
    expect(after.metadata.counters.invalidPods).toBe(items.length - valid);
    expect(after.metadata.podsKnown).toBe(valid);
    expect(delta(before, after, "source.filesSkipped")).toBe(1); // no workflow label: never read
    // Held, then filtered: the unknown uid as no-metadata, the pod without the node-id annotation as missing-nodeID.
    expect(delta(before, after, "events.filtered.no-metadata")).toBe(2);
    expect(delta(before, after, "events.filtered.missing-nodeID")).toBe(4);
    const got = delivered();
    for (const m of g.messages) expect(got.get(m)?.count).toBe(1);
    for (const m of got.keys()) expect(m).not.toMatch(/podlist:(no-labels|no-annotation|no-uid)/);
  }, 40_000);
});
