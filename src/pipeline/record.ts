// The messenger contract (SPEC §3): exactly these fields, nothing else.
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

export const REQUIRED_FIELDS = [
  "orgUUID",
  "runUUID",
  "pipeUUID",
  "nodeID",
  "podName",
  "containerName",
  "timestamp",
] as const;

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
export type OutputField = (typeof OUTPUT_FIELDS)[number];
export type RequiredField = (typeof REQUIRED_FIELDS)[number];
