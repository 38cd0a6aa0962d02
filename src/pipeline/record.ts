// The messenger contract (docs/pipeline.md): exactly these fields, nothing else.
// The single source of truth for tests and the mock messenger; not run per event on the hot path.
import { z } from "zod";

export const OUTPUT_FIELDS = [
  "orgUUID",
  "runUUID",
  "pipeUUID",
  "nodeID",
  "podName",
  "containerName",
  "timestamp",
  "stream",
  "message",
] as const;

export type OutputField = (typeof OUTPUT_FIELDS)[number];

/** Always filled from the line itself (the message may be empty): never a reason to filter. */
const FROM_EVERY_LINE = ["stream", "message"] as const;
export type RequiredField = Exclude<OutputField, (typeof FROM_EVERY_LINE)[number]>;

/** A record missing one of these is filtered, counted per field (docs/pipeline.md). */
export const REQUIRED_FIELDS: readonly RequiredField[] = OUTPUT_FIELDS.filter(
  (f): f is RequiredField => !(FROM_EVERY_LINE as readonly string[]).includes(f),
);

const required = z.string().min(1);

export const PipekitRecordSchema = z.strictObject({
  orgUUID: required,
  runUUID: required,
  pipeUUID: required,
  nodeID: required,
  podName: required,
  containerName: required,
  timestamp: required,
  stream: z.enum(["stdout", "stderr"]),
  message: z.string(),
});

export const PipekitBatchSchema = z.array(PipekitRecordSchema);

export type PipekitRecord = z.infer<typeof PipekitRecordSchema>;
