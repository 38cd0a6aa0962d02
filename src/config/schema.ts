// The configuration schema (README "Configuration"): every key optional, every default here.
// Unknown keys are refused (a typo must not silently fall back to a default).
import { z } from "zod";
import { parseDuration, parseSize } from "./units.ts";

/** A value written with units ("500MB", "5s") or as a plain number, resolved by `parse`. */
const withUnits = (parse: (v: unknown) => number | string, expected: string) => (def: string | number) =>
  z
    .union([z.number(), z.string()], { error: `must be ${expected}` })
    .default(def)
    .transform((v, ctx) => {
      const r = parse(v);
      if (typeof r === "string") {
        ctx.addIssue({ code: "custom", message: r });
        return z.NEVER;
      }
      return r;
    });

const size = withUnits(parseSize, 'a size such as "500MB" or "64KiB", or a number of bytes');
const duration = withUnits(parseDuration, 'a duration such as "500ms" or "5s", or a number of milliseconds');

const seconds = (def: number) => z.number().min(0, "must be zero or more seconds").default(def);
const positiveInt = (def: number) => z.number().int("must be a whole number").positive("must be at least 1").default(def);
const nullableString = z.string().min(1, "must not be empty (use null to unset)").nullable().default(null);

const httpUrl = z
  .string()
  .refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === "http:" || u.protocol === "https:";
    } catch {
      return false;
    }
  }, "must be an http:// or https:// URL")
  .nullable()
  .default(null);

const fieldSource = z.union(
  [z.strictObject({ label: z.string().min(1) }), z.strictObject({ annotation: z.string().min(1) })],
  { error: "must be { label: <pod label key> } or { annotation: <pod annotation key> }" },
);

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

export const ConfigSchema = z.strictObject({
  dataDir: z.string().min(1).default("/var/lib/pipekit-log-collector"),
  source: z
    .strictObject({
      root: z.string().min(1).default("/var/log/pods"),
      include: z.array(z.string().min(1)).default(["**/*.log"]),
      exclude: z.array(z.string().min(1)).default([]),
      excludeContainers: z.array(z.string().min(1)).default([]),
      readFrom: z.enum(["beginning", "end"]).default("beginning"),
      maxLineBytes: size("1MiB").refine((n) => n >= 1024, "must be at least 1KiB"),
      format: z.enum(["cri", "docker", "auto"]).default("auto"),
      partialFlushMs: duration(5000),
      scanIntervalMs: duration(10000).refine((n) => n >= 100, "must be at least 100ms"),
      readSliceBytes: size("256KiB").refine((n) => n >= 4096, "must be at least 4KiB"),
      maxDeletedHeldBytes: size("1GB"),
      watchdogSeconds: seconds(60),
    })
    .prefault({}),
  metadata: z
    .strictObject({
      provider: z.enum(["apiserver", "kubelet", "static"]).default("apiserver"),
      apiserverUrl: httpUrl,
      kubeconfig: nullableString,
      kubeletUrl: httpUrl,
      pollIntervalMs: duration(5000).refine((n) => n >= 100, "must be at least 100ms"),
      caFile: nullableString,
      tokenFile: nullableString,
      insecureSkipTlsVerify: z.boolean().default(false),
      podsFile: nullableString,
      deletionGraceSeconds: seconds(60),
      waitForMetadataSeconds: seconds(30),
      selectorLabel: z.string().min(1).default("workflows.argoproj.io/workflow"),
      // apiserver provider: ask the kubelet's /pods about a pod the API server never showed (docs/metadata.md).
      kubeletFallback: z.boolean().default(false),
      // apiserver provider: reconnects and resyncs after a broken watch or a 410 are spread over this window.
      reconnectWindowSeconds: seconds(15),
    })
    .prefault({}),
  pipeline: z
    .strictObject({
      fields: z
        .strictObject({
          orgUUID: fieldSource.default({ label: "workflows.pipekit.io/org_uuid" }),
          runUUID: fieldSource.default({ label: "workflows.pipekit.io/run_uuid" }),
          pipeUUID: fieldSource.default({ label: "workflows.pipekit.io/pipe_uuid" }),
          nodeID: fieldSource.default({ annotation: "workflows.argoproj.io/node-id" }),
        })
        .prefault({}),
    })
    .prefault({}),
  buffer: z
    .strictObject({
      maxBytes: size("500MB").refine((n) => n >= 65536, "must be at least 64KiB"),
      syncIntervalMs: duration(1000).refine((n) => n >= 1, "must be at least 1ms"),
    })
    .prefault({}),
  messenger: z
    .strictObject({
      baseUri: httpUrl,
      apiKey: nullableString,
      apiKeyFile: nullableString,
      batchMaxEvents: positiveInt(1024),
      batchMaxBytes: size("4MB").refine((n) => n >= 1024, "must be at least 1KB"),
      flushIntervalMs: duration(1000),
      concurrency: positiveInt(4),
      compression: z.enum(["none", "gzip"]).default("none"),
      timeoutMs: duration(30000).refine((n) => n >= 1, "must be at least 1ms"),
      retryInitialBackoffMs: duration(1000),
      retryMaxBackoffMs: duration(60000),
      caFile: nullableString,
      insecureSkipTlsVerify: z.boolean().default(false),
      deadLetterMaxBytes: size("100MB"),
    })
    .prefault({})
    .refine((m) => m.retryMaxBackoffMs >= m.retryInitialBackoffMs, {
      message: "retryMaxBackoffMs must not be below retryInitialBackoffMs",
      path: ["retryMaxBackoffMs"],
    }),
  api: z
    .strictObject({
      address: z
        .string()
        .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, "must be host:port, e.g. 127.0.0.1:8686")
        .refine((a) => Number(a.slice(a.lastIndexOf(":") + 1)) <= 65535, "port must be at most 65535")
        .default("127.0.0.1:8686"),
    })
    .prefault({}),
  health: z
    .strictObject({
      sinkFailingSeconds: seconds(120),
      bufferFullSeconds: seconds(300),
    })
    .prefault({}),
  shutdownTimeoutMs: duration(30000),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default("info") }).prefault({}),
  // Node identity; normally from the environment (NODE_NAME, NODE_IP, POD_UID), which overrides these.
  node: z
    .strictObject({
      name: nullableString,
      ip: nullableString,
      podUid: nullableString,
    })
    .prefault({}),
});

/** The input shape: what a file may contain. */
export type ConfigInput = z.input<typeof ConfigSchema>;
/** The effective configuration, every default applied and every unit resolved. */
export type Config = z.output<typeof ConfigSchema>;
