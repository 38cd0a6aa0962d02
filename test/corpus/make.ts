// Regenerates the committed bad-input corpus (deterministic): `bun test/corpus/make.ts`.
// The big inputs (3 MB and 50 MB lines) and the ring files are made at test time, never committed.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { prng } from "../../src/dev/sample-node.ts";

const dir = import.meta.dir;
const rand = prng(9);
const TS = "2026-11-25T10:00:00.000000001Z";

// 4 KiB of random bytes; no run of it looks like a CRI line (it has no "YYYY-" at a line start).
const garbage = new Uint8Array(4096);
for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(rand() * 256);
writeFileSync(join(dir, "binary-garbage.bin"), garbage);

// NUL runs as a crashed node leaves them (preallocated, never written), one glued to a good line.
writeFileSync(
  join(dir, "nul-runs.log"),
  Buffer.concat([
    Buffer.alloc(4096, 0), Buffer.from("\n"),
    Buffer.alloc(10, 0), Buffer.from(`${TS} stdout F corpus:nul:glued-to-nuls\n`),
    Buffer.from(`${TS} stdout F corpus:nul:after-the-runs\n`),
  ]),
);

// Invalid UTF-8 in content: lone continuation, truncated sequences, overlong encodings, surrogates, 0xFF.
const bad = (label: string, bytes: number[]) => Buffer.concat([Buffer.from(`${TS} stdout F corpus:utf8:${label}:`), Buffer.from(bytes), Buffer.from(":end\n")]);
writeFileSync(
  join(dir, "invalid-utf8.log"),
  Buffer.concat([
    bad("lone-continuation", [0x80, 0xbf]),
    bad("truncated-3byte", [0xe2, 0x82]),
    bad("overlong-slash", [0xc0, 0xaf]),
    bad("surrogate", [0xed, 0xa0, 0x80]),
    bad("ff-fe", [0xff, 0xfe]),
    bad("beyond-max", [0xf4, 0x90, 0x80, 0x80]),
    Buffer.concat([Buffer.from(`${TS} stdout F corpus:utf8:line-ends-mid-char:`), Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from("\n")]),
  ]),
);

// CRI lines: malformed ones (counted, skipped) and odd-but-valid ones (delivered as written).
const cri = [
  "not-a-timestamp stdout F corpus:cri:bad-time", // malformed
  "2026/11/25 10:00:00 stdout F corpus:cri:slashes", // malformed
  `${TS} stdlog F corpus:cri:unknown-stream`, // malformed
  `${TS} STDOUT F corpus:cri:upper-stream`, // malformed
  `${TS} stdout X corpus:cri:bad-tag`, // malformed
  `${TS} stdout Fx corpus:cri:bad-tag-suffix`, // malformed
  `${TS} stdout`, // malformed: no tag
  `${TS}`, // malformed
  "", // malformed: empty line
  `${TS}  stdout F corpus:cri:double-space`, // malformed
  `${TS} stdout F:tag1,tag2 corpus:cri:tagged`, // valid
  "2026-13-45T99:99:99.000000000Z stdout F corpus:cri:impossible-date", // valid shape: passes through as written
  `${TS} stderr F corpus:cri:stderr`, // valid
  `${TS} stdout F  corpus:cri:leading-space`, // valid: content " corpus:..."
];
writeFileSync(join(dir, "cri-malformed.log"), cri.join("\n") + "\n");

// docker json-file: the first line is valid (format detection), then broken ones.
const d = (o: unknown) => JSON.stringify(o);
const docker = [
  d({ log: "corpus:docker:first\n", stream: "stdout", time: TS }), // valid
  '{"log":"corpus:docker:unterminated-json\\n","stream":"stdout"', // malformed
  "{not json at all}", // malformed
  d({ log: 42, stream: "stdout", time: TS }), // malformed: log not a string
  d({ log: "corpus:docker:no-stream\n", time: TS }), // malformed
  d({ log: "corpus:docker:bad-stream\n", stream: "stdin", time: TS }), // malformed
  d([1, 2, 3]), // malformed
  "null", // malformed
  d({ log: "corpus:docker:no-time\n", stream: "stdout" }), // parsed; filtered: missing-timestamp
  d({ log: "corpus:docker:partial-", stream: "stdout", time: TS }), // partial ...
  d({ log: "joined\n", stream: "stdout", time: TS }), // ... merged: "corpus:docker:partial-joined"
  d({ log: "corpus:docker:escapes \"q\" \\ \t \u0001 ✓\n", stream: "stderr", time: TS }), // valid
];
writeFileSync(join(dir, "docker-broken.log"), docker.join("\n") + "\n");

// A PodList with broken items beside one good pod (uids as the test's paths use them).
const labels = {
  "workflows.argoproj.io/workflow": "corpus-wf",
  "workflows.pipekit.io/org_uuid": "org-1",
  "workflows.pipekit.io/run_uuid": "run-1",
  "workflows.pipekit.io/pipe_uuid": "pipe-1",
};
writeFileSync(
  join(dir, "podlist-missing-fields.json"),
  JSON.stringify(
    {
      kind: "PodList",
      apiVersion: "v1",
      metadata: { resourceVersion: "1" },
      items: [
        { metadata: { name: "good-pod", namespace: "argo", uid: "00000000-0000-4000-a000-000000000001", labels, annotations: { "workflows.argoproj.io/node-id": "good-pod" } }, spec: { containers: [{ name: "main" }] } },
        { metadata: { name: "no-uid-pod", namespace: "argo", labels }, spec: {} },
        { metadata: { namespace: "argo", uid: "00000000-0000-4000-a000-000000000003", labels }, spec: {} },
        { metadata: { name: "no-labels-pod", namespace: "argo", uid: "00000000-0000-4000-a000-000000000004" } },
        { metadata: { name: "labels-not-object", namespace: "argo", uid: "00000000-0000-4000-a000-000000000005", labels: "oops" } },
        { spec: { containers: [] } },
        null,
        42,
        { metadata: { name: "no-annotation-pod", namespace: "argo", uid: "00000000-0000-4000-a000-000000000006", labels } },
      ],
    },
    null,
    2,
  ),
);
console.log("corpus written to", dir);
