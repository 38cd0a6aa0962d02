// The Pipekit chain (docs/pipeline.md): transform (extract identifiers) → filter (drop records
// missing a required field, with a reason) → reshape (exactly the messenger's fields).
//
// Identifiers are constant for a file's pod and container, so the chain is compiled once per
// (pod metadata, container) into an encoder that only splices the per-line fields into pre-built
// JSON fragments. The object form (`reshape`) is the reference the encoder is tested against.
import type { Config } from "../config/schema.ts";
import type { PodMeta } from "../metadata/types.ts";
import { NEEDS_SPACE, rewriteJsonStringBody, writeJsonStringBody } from "./json-bytes.ts";
import type { RecordBuffer } from "./packed.ts";
import { type PipekitRecord, REQUIRED_FIELDS, type RequiredField } from "./record.ts";

export type FieldMap = Config["pipeline"]["fields"];
export type Stream = "stdout" | "stderr";

/** The per-file fields after transform; absent when the pod does not carry them. */
export interface Identity {
  orgUUID?: string;
  runUUID?: string;
  pipeUUID?: string;
  nodeID?: string;
  podName?: string;
  containerName?: string;
}

export interface LineFields {
  timestamp: string;
  stream: Stream;
  message: string;
}

/** no-metadata: the pod is unknown; record-too-large: even with its message cut, the record is larger than the ring. */
export type FilterReason = "no-metadata" | "record-too-large" | `missing-${RequiredField}`;

/** Every reason a record can be filtered, for counters that start at zero. */
export const FILTER_REASONS: readonly FilterReason[] = ["no-metadata", "record-too-large", ...REQUIRED_FIELDS.map((f) => `missing-${f}` as const)];

const IDENTITY_KEYS = ["orgUUID", "runUUID", "pipeUUID", "nodeID"] as const;

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

/** Transform: where each identifier comes from (labels/annotations), plus pod and container names. */
export function transform(pod: PodMeta, containerName: string, fields: FieldMap): Identity {
  const id: Identity = { podName: nonEmpty(pod.name), containerName: nonEmpty(containerName) };
  for (const key of IDENTITY_KEYS) {
    const src = fields[key];
    id[key] = nonEmpty("label" in src ? pod.labels[src.label] : pod.annotations[src.annotation]);
  }
  return id;
}

/** Filter, the per-file part: the first missing identifier, in the contract's order. */
export function missingIdentity(id: Identity): FilterReason | null {
  if (!id.orgUUID) return "missing-orgUUID";
  if (!id.runUUID) return "missing-runUUID";
  if (!id.pipeUUID) return "missing-pipeUUID";
  if (!id.nodeID) return "missing-nodeID";
  if (!id.podName) return "missing-podName";
  if (!id.containerName) return "missing-containerName";
  return null;
}

/** Filter: a record missing any required field gets a reason; null keeps it. */
export function filter(id: Identity, line: LineFields): FilterReason | null {
  return missingIdentity(id) ?? (line.timestamp === "" ? "missing-timestamp" : null);
}

/** Reshape: exactly the contract's fields, in its order. Call only after filter returned null. */
export function reshape(id: Identity, line: LineFields): PipekitRecord {
  return {
    orgUUID: id.orgUUID as string,
    runUUID: id.runUUID as string,
    pipeUUID: id.pipeUUID as string,
    nodeID: id.nodeID as string,
    podName: id.podName as string,
    containerName: id.containerName as string,
    timestamp: line.timestamp,
    stream: line.stream,
    message: line.message,
  };
}

/** Encodes one kept line as the JSON record; returns null (with the reason) for a filtered one. */
export interface RecordEncoder {
  /** Non-null when every line of this file is filtered (a missing identifier). */
  readonly fileReason: FilterReason | null;
  encode(timestamp: string, stream: Stream, message: string): string | null;
  /**
   * The byte path: writes and closes in `out` the record of a line given as bytes — timestamp
   * src[tsStart, tsEnd), content src[contentStart, contentEnd) — byte for byte
   * TextEncoder.encode(encode(latin1(timestamp), stream, utf8(content))). Returns false, having
   * written nothing, when only the string path gives that: content that is not valid UTF-8, or a
   * timestamp that is empty or not plain (a byte outside [0-9A-Za-z:.+-]).
   * `escaped`: the content is a JSON string's body as escaped in the file (a docker line), and the
   * record carries its value (JSON.parse of it), re-escaped; refused also for a lone surrogate.
   */
  writeBytes(src: Uint8Array, tsStart: number, tsEnd: number, stderr: boolean, contentStart: number, contentEnd: number, out: RecordBuffer, escaped?: boolean): boolean;
  /**
   * Writes and closes in `out` the record encode() gave — compact (its prefix id, then the JSON
   * from the timestamp on) when the encoder was compiled with a compact head, else whole.
   */
  writeEncoded(json: string, out: RecordBuffer): void;
  /** Bytes a record written by this encoder grows by when expanded to its full JSON (0: stored whole). */
  readonly expansion: number;
}

// A timestamp as written is normally plain RFC 3339; anything needing escapes goes through JSON.
const PLAIN_TIMESTAMP = /^[0-9A-Za-z:.+-]*$/;
const PLAIN_TIMESTAMP_BYTE = new Uint8Array(256);
for (const c of "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz:.+-") PLAIN_TIMESTAMP_BYTE[c.charCodeAt(0)] = 1;

const te = new TextEncoder();

/** A record whose every line is filtered: it writes nothing. */
export function filteredEncoder(fileReason: FilterReason): RecordEncoder {
  return { fileReason, encode: () => null, writeBytes: () => false, writeEncoded: () => {}, expansion: 0 };
}

/**
 * The constant start of every record of a file (its prefix, docs/ring-format.md "Compact records"):
 * the identifiers, up to and including `"timestamp":`. Call only when missingIdentity(id) is null.
 */
export function recordHead(id: Identity): string {
  return (
    `{"orgUUID":${JSON.stringify(id.orgUUID)},"runUUID":${JSON.stringify(id.runUUID)},` +
    `"pipeUUID":${JSON.stringify(id.pipeUUID)},"nodeID":${JSON.stringify(id.nodeID)},` +
    `"podName":${JSON.stringify(id.podName)},"containerName":${JSON.stringify(id.containerName)},"timestamp":`
  );
}

/**
 * Compiles transform → filter → reshape for one file into pre-built JSON fragments (as strings and
 * as bytes). `compact`: the bytes that stand for recordHead(id) in the ring (the compact record's
 * tag and prefix id); without it records are stored whole.
 */
export function compileEncoder(id: Identity, compact: Uint8Array | null = null): RecordEncoder {
  const fileReason = missingIdentity(id);
  if (fileReason) return filteredEncoder(fileReason);
  const head = recordHead(id);
  const stdoutMid = `,"stream":"stdout","message":`;
  const stderrMid = `,"stream":"stderr","message":`;
  const fullHeadBytes = te.encode(head);
  // What the records start with in the ring, with the timestamp's opening quote; the other
  // fragments with the quotes around them.
  const storedHead = compact ?? fullHeadBytes;
  const headBytes = new Uint8Array(storedHead.length + 1);
  headBytes.set(storedHead);
  headBytes[storedHead.length] = 0x22; // "

  const stdoutMidBytes = te.encode('"' + stdoutMid + '"');
  const stderrMidBytes = te.encode('"' + stderrMid + '"');
  const writeBytes = (src: Uint8Array, tsStart: number, tsEnd: number, stderr: boolean, contentStart: number, contentEnd: number, out: RecordBuffer, escaped = false): boolean => {
    if (tsEnd <= tsStart) return false;
    const mid = stderr ? stderrMidBytes : stdoutMidBytes;
    const fixed = headBytes.length + (tsEnd - tsStart) + mid.length + 2;
    const len = contentEnd - contentStart;
    // Room for the content unescaped plus a little; escapes beyond that ask for the worst case
    // (already escaped content never grows).
    out.reserve(fixed + len + 64);
    for (;;) {
      // Byte loops, not set(): these are a few dozen bytes, where a call to set() costs more.
      const dst = out.bytes;
      let at = out.at;
      for (let i = 0; i < headBytes.length; i++) dst[at++] = headBytes[i] as number;
      for (let i = tsStart; i < tsEnd; i++) {
        const c = src[i] as number;
        if (PLAIN_TIMESTAMP_BYTE[c] === 0) return false; // nothing committed: out.at is unchanged
        dst[at++] = c;
      }
      for (let i = 0; i < mid.length; i++) dst[at++] = mid[i] as number;
      const r = escaped ? rewriteJsonStringBody(src, contentStart, contentEnd, dst, at) : writeJsonStringBody(src, contentStart, contentEnd, dst, at);
      if (r === NEEDS_SPACE) {
        out.reserve(fixed + 6 * len);
        continue;
      }
      if (r < 0) return false; // only the string path gives its bytes: nothing committed
      dst[r] = 0x22; // "
      dst[r + 1] = 0x7d; // }
      out.at = r + 2;
      out.end();
      return true;
    }
  };
  return {
    fileReason: null,
    encode(timestamp, stream, message) {
      if (timestamp === "") return null;
      const ts = PLAIN_TIMESTAMP.test(timestamp) ? `"${timestamp}"` : JSON.stringify(timestamp);
      return head + ts + (stream === "stdout" ? stdoutMid : stderrMid) + JSON.stringify(message) + "}";
    },
    writeBytes,
    writeEncoded(json, out) {
      if (compact) {
        out.writeBytes(compact);
        out.writeString(json.slice(head.length));
      } else out.writeString(json);
      out.end();
    },
    expansion: fullHeadBytes.length - storedHead.length,
  };
}
