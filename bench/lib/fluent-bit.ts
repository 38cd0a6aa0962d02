// Fluent Bit as a benchmark agent (issue 20, deliver 5): the configuration it runs with in the
// side-by-side comparison, and the process. The setup mirrors what the collector does in the
// throughput scenario: tail every container log file from its first byte with the CRI multiline
// parser, buffer on disk (filesystem storage), and POST JSON arrays to the same counting sink, up to
// four requests at a time, flushing every second. The content key is renamed `message` so that the
// counting sink finds each line's sequence number as it does in the collector's records.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Agent, AgentProcess } from "./harness.ts";
import { API_KEY, stopProcess } from "./harness.ts";
import { INGEST_PATH, API_KEY_HEADER } from "../../src/sink/wire.ts";

export interface FluentBitSetup {
  /** The pods' log directory: <root>/<ns>_<pod>_<uid>/<container>/*.log. */
  root: string;
  /** Fluent Bit's own state: the tail offsets database and the filesystem storage. */
  dataDir: string;
  sinkHost: string;
  sinkPort: number;
  apiKey: string;
  gzip: boolean;
}

/** The date key Fluent Bit's http output writes first in every record (the counting sink's recordStart). */
export const FLUENT_BIT_DATE_KEY = "timestamp";

/** Fluent Bit's classic configuration for a run (every version since 1.8 reads it). */
export function fluentBitConfig(s: FluentBitSetup): string {
  for (const [what, v] of Object.entries({ root: s.root, dataDir: s.dataDir, sinkHost: s.sinkHost, apiKey: s.apiKey })) {
    // One value per line, no comment marker: anything else would change the configuration's meaning.
    if (/[\n\r#]/.test(v) || v.trim() !== v || v === "") throw new Error(`fluent-bit config: ${what} cannot be written as a value: ${JSON.stringify(v)}`);
  }
  const lines = [
    "[SERVICE]",
    "    flush                     1",
    "    grace                     5",
    "    log_level                 warn",
    "    http_server               off",
    `    storage.path              ${join(s.dataDir, "storage")}`,
    "    storage.sync              normal",
    "    storage.checksum          off",
    "    storage.max_chunks_up     128",
    "    storage.backlog.mem_limit 5M",
    "",
    "[INPUT]",
    "    name              tail",
    "    tag               kube.*",
    `    path              ${join(s.root, "*", "*", "*.log")}`,
    "    multiline.parser  cri",
    "    read_from_head    true",
    "    refresh_interval  1",
    "    buffer_chunk_size 256k",
    "    buffer_max_size   1M",
    "    skip_long_lines   off",
    `    db                ${join(s.dataDir, "tail.db")}`,
    "    db.sync           normal",
    "    storage.type      filesystem",
    "",
    "[FILTER]",
    "    name   modify",
    "    match  *",
    "    rename log message",
    "",
    "[OUTPUT]",
    "    name             http",
    "    match            *",
    `    host             ${s.sinkHost}`,
    `    port             ${s.sinkPort}`,
    `    uri              ${INGEST_PATH}`,
    "    format           json",
    `    json_date_key    ${FLUENT_BIT_DATE_KEY}`,
    "    json_date_format iso8601",
    `    header           ${API_KEY_HEADER} ${s.apiKey}`,
    "    workers          4",
    "    retry_limit      no_limits",
    ...(s.gzip ? ["    compress         gzip"] : []),
    "",
  ];
  return lines.join("\n");
}

/** The Fluent Bit executable named by FLUENT_BIT, or null (the comparison is skipped). */
export function fluentBitFromEnv(env: Record<string, string | undefined> = process.env): string | null {
  const bin = env.FLUENT_BIT?.trim();
  return bin ? bin : null;
}

/** `fluent-bit --version`'s first line, or throws when the executable cannot run. */
export function fluentBitVersion(bin: string): string {
  const r = Bun.spawnSync([bin, "--version"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${bin} --version exited ${r.exitCode}: ${r.stderr.toString().slice(0, 500)}`);
  return r.stdout.toString().split("\n")[0]!.trim();
}

/**
 * How the binary was compiled, from the compiler's record in its debug strings (readelf, binutils):
 * "-O2", "unoptimised (no -O)" — a build made with Fluent Bit's default FLB_DEBUG=On is -O0 and runs
 * about half as fast as a release one —, or "unknown" (stripped, or no readelf).
 */
export function fluentBitOptimization(bin: string): string {
  const r = Bun.spawnSync(["readelf", "--string-dump=.debug_str", bin], { stdout: "pipe", stderr: "ignore" });
  const producer = r.exitCode === 0 ? /GNU C[^\n\]]*/.exec(r.stdout.toString())?.[0] : undefined;
  if (!producer) return "unknown";
  return /(^|\s)-O[0-9sfz]/.exec(producer)?.[0].trim() ?? "unoptimised (no -O)";
}

/** Fluent Bit as a benchmark Agent: writes its configuration into the run's directory and starts it. */
export function fluentBitAgent(bin: string, opts: { gzip: boolean }): Agent {
  return {
    name: "fluent-bit",
    recordStart: `{"${FLUENT_BIT_DATE_KEY}"`,
    async spawn(dir, setup): Promise<AgentProcess> {
      const sink = new URL(setup.sinkUrl);
      const dataDir = join(setup.dataDir, "fluent-bit");
      mkdirSync(dataDir, { recursive: true });
      const configPath = join(dir, "fluent-bit.conf");
      writeFileSync(configPath, fluentBitConfig({ root: setup.root, dataDir, sinkHost: sink.hostname, sinkPort: Number(sink.port), apiKey: API_KEY, gzip: opts.gzip }));
      const stderrPath = join(dir, "fluent-bit.stderr");
      const spawnedAt = Date.now();
      const proc = Bun.spawn([bin, "-c", configPath], { cwd: dir, stdin: "ignore", stdout: Bun.file(join(dir, "fluent-bit.stdout")), stderr: Bun.file(stderrPath) });
      return {
        proc,
        pid: proc.pid,
        spawnedAt,
        stderrPath,
        // No readiness endpoint is configured (its HTTP server is off, as the collector's API costs nothing here): alive is ready.
        ready: async () => proc.exitCode === null,
        stop: (timeoutMs) => stopProcess(proc, timeoutMs),
        metric: async () => null,
      };
    },
  };
}
