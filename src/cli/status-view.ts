// What `top` and `status` show of a running collector, as pure functions of what its API answered:
// /status (JSON) and /metrics (Prometheus text). Every field is optional here: a collector of
// another version may name things differently, and a missing value shows as "–", never a crash.

/** One reading of the local API. */
export interface Snapshot {
  /** Epoch ms when it was taken. */
  at: number;
  /** The /status JSON, whatever its shape. */
  status: unknown;
  /** /metrics summed per metric name (labels folded), or null when it did not answer. */
  metrics: Map<string, number> | null;
}

export interface ViewOptions {
  url: string;
  /** Terminal columns; every line is cut to fit. */
  width: number;
  /** Terminal rows; the file table gets what the rest leaves (at least `minFiles` rows). */
  height: number;
  minFiles?: number;
  /** Lines at the bottom (top's key help, or why the view is stale). */
  footer?: string[];
}

export const MISSING = "–";
const P = "pipekit_collector_";

/** Prometheus text exposition → value per metric name, summed over its series. */
export function parseMetricTotals(text: string): Map<string, number> {
  const totals = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[2]);
    if (!Number.isFinite(value)) continue;
    totals.set(m[1]!, (totals.get(m[1]!) ?? 0) + value);
  }
  return totals;
}

/** The value at a dotted path of a JSON value, or undefined when any step is missing. */
export function field(value: unknown, path: string): unknown {
  let v = value;
  for (const key of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

function num(value: unknown, path: string): number | undefined {
  const v = field(value, path);
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function str(value: unknown, path: string): string | undefined {
  const v = field(value, path);
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** 1234567 → "1.2 M"; small numbers as they are. */
export function fmtCount(n: number | undefined): string {
  if (n === undefined) return MISSING;
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)} G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  return String(Math.round(n));
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined) return MISSING;
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${Math.round(n)} B`;
}

export function fmtSeconds(s: number | undefined): string {
  if (s === undefined || s < 0) return MISSING;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

/** Seconds from an ISO time to `nowMs`, or undefined. */
function ageOf(iso: string | undefined, nowMs: number): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? Math.max(0, (nowMs - t) / 1000) : undefined;
}

/** Per second between two readings of a counter; undefined if either is missing or it went back (a restart). */
export function ratePerSecond(now: number | undefined, before: number | undefined, seconds: number): number | undefined {
  if (now === undefined || before === undefined || !(seconds > 0) || now < before) return undefined;
  return (now - before) / seconds;
}

function fmtRate(r: number | undefined): string {
  return r === undefined ? MISSING : `${fmtCount(r)}/s`;
}

/** A `[####------]` gauge of `fraction` (0..1), `width` cells between the brackets. */
export function bar(fraction: number | undefined, width: number): string {
  if (fraction === undefined || width < 1) return "";
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}]`;
}

/** `text` cut to `width` columns, with "…" where it was cut. */
export function fit(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 1 ? chars.slice(0, width).join("") : chars.slice(0, width - 1).join("") + "…";
}

function row(label: string, text: string): string {
  return `${label.padEnd(10)}${text}`;
}

function headerLines(s: unknown, opts: ViewOptions, nowMs: number): string[] {
  const version = str(s, "version") ?? MISSING;
  const commit = str(s, "commit");
  const phase = str(s, "phase") ?? MISSING;
  const ready = field(s, "ready");
  const readiness = ready === true ? "ready" : ready === false ? "NOT READY" : MISSING;
  const up = num(s, "uptimeSeconds") ?? ageOf(str(s, "startedAt"), nowMs);
  return [`pipekit-log-collector ${version}${commit ? ` (${commit})` : ""} at ${opts.url} · ${phase} · ${readiness} · up ${fmtSeconds(up)}`];
}

function healthLines(s: unknown): string[] {
  const healthy = field(s, "pipeline.healthy");
  const reasons = field(s, "pipeline.reasons");
  const list = Array.isArray(reasons) ? reasons.map(String) : [];
  if (healthy === true) return [row("health", "healthy")];
  if (healthy !== false) return [row("health", MISSING)];
  const shown = list.slice(0, 5).map((r) => row("", `· ${r}`));
  if (list.length > 5) shown.push(row("", `· … ${list.length - 5} more (curl /status | jq .pipeline)`));
  return [row("health", `UNHEALTHY: ${list.length} reason${list.length === 1 ? "" : "s"}`), ...shown];
}

function eventLines(now: Snapshot, before: Snapshot | null): string[] {
  const s = now.status;
  const dt = before ? (now.at - before.at) / 1000 : 0;
  const rate = (path: string) => ratePerSecond(num(s, path), before ? num(before.status, path) : undefined, dt);
  return [
    row(
      "events",
      `in ${fmtRate(rate("events.read"))}  out ${fmtRate(rate("events.sent"))}  filtered ${fmtRate(rate("events.filteredTotal"))}` +
        `  · read ${fmtCount(num(s, "events.read"))}  sent ${fmtCount(num(s, "events.sent"))}` +
        `  in ring ${fmtCount(num(s, "events.inRing"))}  dead-lettered ${fmtCount(num(s, "events.deadLettered"))}`,
    ),
  ];
}

function ringLines(s: unknown, width: number): string[] {
  const used = num(s, "ring.usedBytes");
  const capacity = num(s, "ring.capacityBytes");
  const fraction = used !== undefined && capacity ? used / capacity : undefined;
  const pct = fraction === undefined ? MISSING : `${(fraction * 100).toFixed(1)} %`;
  const full = field(s, "ring.full") === true ? "  FULL: reading waits" : "";
  const text = `${fmtBytes(used)} of ${fmtBytes(capacity)} (${pct})${full}  `;
  const room = Math.min(30, width - 10 - text.length - 2);
  return [row("ring", text + bar(fraction, room))];
}

function sinkLines(s: unknown, nowMs: number): string[] {
  const since = num(s, "sink.secondsSinceLastSuccess");
  const lastSuccess = str(s, "sink.lastSuccessAt");
  const ago = lastSuccess ? (since ?? ageOf(lastSuccess, nowMs)) : undefined;
  const last = lastSuccess ? `${fmtSeconds(ago)} ago` : field(s, "sink") === undefined ? MISSING : "never";
  // The collector clears lastError at the first 2xx after it: what shows here is failing now.
  const error = field(s, "sink.lastError");
  const errorText = typeof error === "string" && error !== "" ? error : error && typeof error === "object" ? JSON.stringify(error) : MISSING;
  const errorAge = errorText === MISSING ? undefined : ageOf(str(s, "sink.lastErrorAt"), nowMs);
  return [
    row("messenger", `in flight ${fmtCount(num(s, "sink.inFlight"))}  waiting ${fmtCount(num(s, "sink.waiting"))}  last success ${last}  ${str(s, "sink.url") ?? ""}`.trimEnd()),
    row("", `last error ${errorAge === undefined ? "" : `${fmtSeconds(errorAge)} ago: `}${errorText}`),
  ];
}

function metadataLines(s: unknown, nowMs: number): string[] {
  const provider = str(s, "metadata.provider") ?? MISSING;
  const synced = field(s, "metadata.synced");
  const failing = field(s, "metadata.failing");
  const state = failing === true ? "FAILING" : synced === true ? "synced" : synced === false ? "not synced yet" : MISSING;
  const lastSync = ageOf(str(s, "metadata.lastSyncAt"), nowMs);
  const error = str(s, "metadata.lastError") ?? MISSING;
  return [
    row(
      "metadata",
      `${provider}  ${state}  pods ${fmtCount(num(s, "metadata.podsKnown"))}  last sync ${lastSync === undefined ? MISSING : `${fmtSeconds(lastSync)} ago`}  last error ${error}`,
    ),
  ];
}

function processLines(now: Snapshot, before: Snapshot | null): string[] {
  const m = now.metrics;
  if (!m) return [row("process", `${MISSING} (/metrics did not answer)`)];
  const dt = before ? (now.at - before.at) / 1000 : 0;
  const cpu = ratePerSecond(m.get(`${P}process_cpu_seconds_total`), before?.metrics?.get(`${P}process_cpu_seconds_total`), dt);
  const cpuText = cpu === undefined ? MISSING : `${(cpu * 100).toFixed(1)} %`;
  return [
    row(
      "process",
      `cpu ${cpuText}  resident ${fmtBytes(m.get(`${P}process_resident_memory_bytes`))}  open files ${fmtCount(m.get(`${P}process_open_fds`))}` +
        `  deleted but held ${fmtBytes(m.get(`${P}deleted_held_bytes`))}`,
    ),
  ];
}

interface FileRow {
  lag: number | undefined;
  size: number | undefined;
  state: string;
  where: string;
  file: string;
}

function fileRows(s: unknown): FileRow[] {
  const files = field(s, "files");
  if (!Array.isArray(files)) return [];
  return files
    .map((f): FileRow => {
      const path = str(f, "path") ?? "";
      const where = [str(f, "namespace"), str(f, "pod"), str(f, "container")].filter(Boolean).join("/");
      return {
        lag: num(f, "lag"),
        size: num(f, "size"),
        state: (str(f, "state") ?? MISSING) + (field(f, "deleted") === true ? " (deleted)" : ""),
        where: where || MISSING,
        file: path.split("/").pop() || MISSING,
      };
    })
    .sort((a, b) => (b.lag ?? -1) - (a.lag ?? -1));
}

function fileLines(s: unknown, rows: number): string[] {
  const files = fileRows(s);
  const total = field(s, "files") === undefined ? MISSING : String(files.length);
  const out = [row("files", `${total} followed, most lag first`), `  ${"LAG".padStart(9)}  ${"SIZE".padStart(9)}  ${"STATE".padEnd(20)}  NAMESPACE/POD/CONTAINER  FILE`];
  for (const f of files.slice(0, Math.max(0, rows))) {
    out.push(`  ${fmtBytes(f.lag).padStart(9)}  ${fmtBytes(f.size).padStart(9)}  ${f.state.padEnd(20)}  ${f.where}  ${f.file}`);
  }
  if (files.length > rows && rows >= 0) out.push(`  … ${files.length - Math.max(0, rows)} more`);
  return out;
}

/** The whole view: one line per element, each cut to the terminal's width. */
export function renderStatusView(now: Snapshot, before: Snapshot | null, opts: ViewOptions): string[] {
  const s = now.status;
  const top = [
    ...headerLines(s, opts, now.at),
    "",
    ...healthLines(s),
    ...eventLines(now, before),
    ...ringLines(s, opts.width),
    ...sinkLines(s, now.at),
    ...metadataLines(s, now.at),
    ...processLines(now, before),
    "",
  ];
  const footer = opts.footer?.length ? ["", ...opts.footer] : [];
  // The table's title, its header and a "… more" line take three rows.
  const rows = Math.max(opts.minFiles ?? 3, opts.height - top.length - footer.length - 3);
  return [...top, ...fileLines(s, rows), ...footer].map((l) => fit(l, opts.width));
}
