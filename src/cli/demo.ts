// `demo`: the whole product on a sample node, needing nothing outside the package. Writes a
// node into a temp dir, starts the mock messenger, runs the real collector on it, appends more
// lines while it runs, and checks that every expected event arrives exactly once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Collector, startCollector } from "../collector.ts";
import type { Config } from "../config/schema.ts";
import { parseConfig } from "../config/load.ts";
import { setLogLevel } from "../log.ts";
import { type MockMessenger, startMockMessenger } from "../dev/mock-messenger.ts";
import type { PipekitRecord } from "../pipeline/record.ts";
import { INGEST_PATH } from "../sink/wire.ts";
import { type SampleNode, writeSampleNode } from "../dev/sample-node.ts";

const DEMO_KEY = "demo-api-key";
const TIMEOUT_MS = 90_000;

type Out = (s: string) => void;

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { lines: { type: "string" }, keep: { type: "boolean" } }, strict: true });
  const linesPerContainer = values.lines ? Number(values.lines) : 300;
  if (!Number.isInteger(linesPerContainer) || linesPerContainer < 1) {
    process.stderr.write("demo: --lines must be a whole number of at least 1\n");
    return 2;
  }
  const out: Out = (s) => process.stdout.write(s);
  const dir = mkdtempSync(join(tmpdir(), "pipekit-demo-"));
  const started = performance.now();
  setLogLevel("warn");
  const node = writeSampleNode(dir, { linesPerContainer });
  const messenger = await startMockMessenger({ apiKey: DEMO_KEY });
  out(`demo: sample node in ${dir}\n`);
  out(`demo: ${node.pods.length} pods (${node.pods.filter((p) => p.expected === "delivered").length} Argo workflow pods, ` +
    `1 Argo pod missing a Pipekit label, 1 system pod), mock messenger at ${messenger.url}\n`);

  const collector = await startCollector(demoConfig(dir, node, messenger));
  out(`demo: collector running (local API on 127.0.0.1:${collector.apiPort})\n`);
  // Lines written while the collector runs are followed too, so the expected total grows; the
  // demo is not done before they are written.
  let appended = false;
  setTimeout(() => {
    appendWhileRunning(node, out);
    appended = true;
  }, 500);
  const done = await waitForDelivery(collector, messenger, node, () => appended, out);
  await collector.stop();
  const received = messenger.received();
  await messenger.stop();

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const problems = summarise(collector, node, received, seconds, out);
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  if (!done) problems.unshift(`timed out after ${TIMEOUT_MS / 1000}s`);
  if (problems.length) {
    out(`\ndemo FAILED: ${problems.join("; ")}\n`);
    return 1;
  }
  out(`\ndemo OK: every expected event delivered exactly once; nothing from the system pod or the unlabelled pod\n`);
  return 0;
}

/** The collector's config for the sample node: short intervals, so the demo ends in seconds. */
function demoConfig(dir: string, node: SampleNode, messenger: MockMessenger): Config {
  return parseConfig({
    dataDir: join(dir, "data"),
    source: { root: node.root, partialFlushMs: 1000 },
    metadata: { provider: "static", podsFile: node.podsFile, waitForMetadataSeconds: 2 },
    buffer: { maxBytes: "16MiB", syncIntervalMs: 200 },
    messenger: { baseUri: messenger.url, apiKey: DEMO_KEY, flushIntervalMs: 200 },
    api: { address: "127.0.0.1:0" },
    shutdownTimeoutMs: 10_000,
  });
}

function appendWhileRunning(node: SampleNode, out: Out): void {
  const filteredBefore = node.expectedFiltered;
  const added = node.appendLines(25);
  out(
    `demo: 25 more lines per container written while the collector runs (it follows growing files): ` +
      `${added} more events expected, ${node.expectedFiltered - filteredBefore} more to be filtered\n`,
  );
}

/**
 * Prints progress until every expected event is delivered and filtered, once `allWritten` says no
 * more lines are coming; false when TIMEOUT_MS passed first.
 */
async function waitForDelivery(
  collector: Collector,
  messenger: MockMessenger,
  node: SampleNode,
  allWritten: () => boolean,
  out: Out,
): Promise<boolean> {
  let lastLine = "";
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    await Bun.sleep(250);
    const delivered = messenger.stats().distinctEvents;
    const filtered = Object.values(collector.router.counters.eventsFiltered).reduce((a, b) => a + b, 0);
    const expected = node.expectedMessages.size;
    const line =
      `demo: read ${collector.router.counters.eventsRead}, delivered ${delivered}/${expected}, ` +
      `filtered ${filtered}/${node.expectedFiltered}`;
    if (line !== lastLine) out(line + "\n");
    lastLine = line;
    if (delivered >= expected && filtered >= node.expectedFiltered && allWritten()) return true;
  }
  return false;
}

/** Prints one received record and the summary; returns what went wrong (missing, duplicate or unexpected events). */
function summarise(collector: Collector, node: SampleNode, received: PipekitRecord[], seconds: string, out: Out): string[] {
  const seen = new Map<string, number>();
  for (const r of received) seen.set(r.message, (seen.get(r.message) ?? 0) + 1);
  const missing = [...node.expectedMessages].filter((m) => !seen.has(m));
  const duplicates = [...seen.values()].filter((n) => n > 1).length;
  const unexpected = received.filter((r) => !node.expectedMessages.has(r.message));
  const c = collector.router.counters;

  if (received[0]) {
    out(`\none record as the messenger received it (an element of the JSON array POSTed to ${INGEST_PATH}):\n`);
    out(JSON.stringify(received[0], null, 2).replace(/^/gm, "  ") + "\n");
  }
  out("\nsummary\n");
  out(`  events read        ${c.eventsRead}\n`);
  for (const [reason, n] of Object.entries(c.eventsFiltered)) if (n > 0) out(`  filtered ${reason.padEnd(10)}${String(n).padStart(8)}\n`);
  out(`  files skipped      ${collector.source.counters.filesSkipped} (pods without the workflow label)\n`);
  out(`  delivered          ${seen.size} of ${node.expectedMessages.size} expected (${received.length} records received)\n`);
  out(`  seconds            ${seconds}\n`);

  const problems: string[] = [];
  if (missing.length) problems.push(`${missing.length} expected events never arrived (first: ${JSON.stringify(missing[0])})`);
  if (duplicates) problems.push(`${duplicates} events arrived more than once`);
  if (unexpected.length) problems.push(`${unexpected.length} unexpected events arrived (first: ${JSON.stringify(unexpected[0]?.message)})`);
  return problems;
}
