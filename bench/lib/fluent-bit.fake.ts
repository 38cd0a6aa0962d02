// A stand-in for the fluent-bit executable, for the runner's own test only (there is no Fluent Bit
// on the development machine): it reads the classic configuration bench/lib/fluent-bit.ts writes —
// the tail path glob, the output's host, port, uri, header, date key and the renamed content key —
// reads every matching CRI file once and POSTs its F lines as Fluent Bit's http output does (a JSON
// array, the date key first), then waits to be stopped.
//
//   bun bench/lib/fluent-bit.fake.ts --version | -c FILE
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

if (process.argv.includes("--version")) {
  console.log("Fluent Bit v0.0.0-fake (bench/lib/fluent-bit.fake.ts)");
  process.exit(0);
}
const config = readFileSync(process.argv[process.argv.indexOf("-c") + 1]!, "utf8");
/** The values of `key` in the configuration, in order. */
const values = (key: string) => [...config.matchAll(new RegExp(`^\\s+${key.replace(".", "\\.")}\\s+(.+)$`, "gm"))].map((m) => m[1]!.trim());
const pathGlob = values("path")[0]!;
const [from, to] = values("rename")[0]!.split(/\s+/) as [string, string];
const [headerName, ...headerValue] = values("header")[0]!.split(/\s+/);
const url = `http://${values("host")[0]}:${values("port")[0]}${values("uri")[0]}`;
const dateKey = values("json_date_key")[0]!;
if (!pathGlob.endsWith("/*/*/*.log")) throw new Error(`unexpected tail path ${pathGlob}`);

const root = pathGlob.slice(0, -"/*/*/*.log".length);
const records: string[] = [];
for (const pod of readdirSync(root)) {
  for (const container of readdirSync(join(root, pod))) {
    for (const f of readdirSync(join(root, pod, container)).filter((n) => n.endsWith(".log"))) {
      for (const l of readFileSync(join(root, pod, container, f), "utf8").split("\n")) {
        const m = /^(\S+) (stdout|stderr) F (.*)$/.exec(l);
        if (m) records.push(JSON.stringify({ [dateKey]: m[1], time: m[1], stream: m[2], _p: "F", [from === "log" ? to : "log"]: m[3] }));
      }
    }
  }
}
for (let i = 0; i < records.length; i += 1000) {
  const res = await fetch(url, { method: "POST", body: `[${records.slice(i, i + 1000).join(",")}]`, headers: { "content-type": "application/json", [headerName!]: headerValue.join(" ") } });
  if (!res.ok) throw new Error(`sink answered ${res.status}`);
}
process.on("SIGTERM", () => process.exit(0));
setInterval(() => {}, 1 << 30);
