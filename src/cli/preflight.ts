// Every check `run` makes before it creates or touches anything, in one function that `validate`
// calls too, so that "valid" means "would start" (README "Command line"). The collector's own
// start-up then only meets what a config cannot show: the data dir locked by another collector,
// the API port in use, a damaged ring.
//
// The stages' own checks are run, not copied: the metadata provider is built (its constructor
// reads the files it names and checks NODE_NAME; nothing connects before start()), and the
// sink's credentials read the key file. Nothing here writes.
import { accessSync, constants, statfsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileBytesFor } from "../buffer/format.ts";
import { RING_FILE } from "../buffer/ring.ts";
import { ConfigError } from "../config/load.ts";
import { runnableProblems } from "./runnable.ts";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import { createMetadataProvider, MetadataConfigError, PodCache } from "../metadata/index.ts";
import { Credentials } from "../sink/credentials.ts";
import { HealthReasons } from "../sink/stats.ts";

/** The stages log what they find (a key loaded, the API server chosen); a check has nothing to say. */
const QUIET: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => QUIET };

/** Throws one ConfigError listing every problem ("key: what is wrong", one a line), or returns. */
export function preflight(config: Config, source = "config"): void {
  const dataDir = dataDirProblems(config.dataDir);
  const problems = [
    ...runnableProblems(config),
    ...(dataDir.length ? dataDir : ringSpaceProblems(config)),
    ...metadataProblems(config),
    ...apiKeyFileProblems(config),
  ];
  if (problems.length) throw new ConfigError(`invalid ${source}:\n${problems.map((p) => `  ${p}`).join("\n")}`);
}

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/**
 * The data dir must be a writable directory, or not exist yet with a writable directory as its
 * parent: the collector creates the data dir itself, never its parents — a typo in the path
 * would otherwise fill whatever disk the new tree landed on.
 */
export function dataDirProblems(dataDir: string): string[] {
  const dir = resolve(dataDir);
  try {
    if (!statSync(dir).isDirectory()) return [`dataDir: ${dataDir} is not a directory`];
    return writable(dir) ? [] : [`dataDir: ${dataDir} is not writable: ${writeError(dir)}`];
  } catch (err) {
    if (errno(err) !== "ENOENT") return [`dataDir: ${dataDir} cannot be used: ${errno(err) === "ENOTDIR" ? "a part of its path is not a directory" : errno(err)}`];
  }
  const parent = dirname(dir);
  let isDir: boolean;
  try {
    isDir = statSync(parent).isDirectory();
  } catch (err) {
    const why = errno(err) === "ENOENT" ? "does not exist" : `cannot be read (${errno(err)})`;
    return [`dataDir: ${dataDir}: its parent ${parent} ${why}; the collector creates the data dir, never its parents (create it, or correct the path)`];
  }
  if (!isDir) return [`dataDir: ${dataDir}: its parent ${parent} is not a directory`];
  return writable(parent) ? [] : [`dataDir: ${dataDir} cannot be created: ${parent} is not writable: ${writeError(parent)}`];
}

/**
 * `run` allocates the whole ring file at start (a full disk later must not lose records); one it
 * cannot allocate refuses the start, so the space is checked here first. A ring file of the right
 * size already there needs nothing more; a new one, or one of another size (copied into a new
 * file), needs all of it.
 */
export function ringSpaceProblems(config: Pick<Config, "dataDir" | "buffer">): string[] {
  const fileBytes = fileBytesFor(config.buffer.maxBytes);
  const dir = resolve(config.dataDir);
  let present = 0;
  try {
    present = statSync(join(dir, RING_FILE)).size;
  } catch {
    // no ring yet
  }
  if (present === fileBytes) return [];
  let free: number;
  try {
    const fs = statfsSync(present > 0 || existsDir(dir) ? dir : dirname(dir));
    free = fs.bavail * fs.bsize;
  } catch {
    return []; // the data dir check says why
  }
  if (free >= fileBytes) return [];
  return [
    `buffer.maxBytes: the ring file needs ${fileBytes} bytes and the file system of dataDir ${config.dataDir} has ${free} bytes free; free disk space or lower buffer.maxBytes`,
  ];
}

function existsDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function writable(dir: string): boolean {
  return writeError(dir) === null;
}

function writeError(dir: string): string | null {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return null;
  } catch (err) {
    return errno(err);
  }
}

/** What the metadata provider refuses (NODE_NAME, podsFile, kubeconfig, CA and token files, ...). */
function metadataProblems(config: Config): string[] {
  try {
    createMetadataProvider(config, new PodCache({ deletionGraceSeconds: config.metadata.deletionGraceSeconds }), QUIET);
    return [];
  } catch (err) {
    if (err instanceof MetadataConfigError) return [err.message];
    throw err;
  }
}

/** The key file must hold a key that can be sent (one in the config was checked with the schema). */
function apiKeyFileProblems(config: Config): string[] {
  const file = config.messenger.apiKeyFile;
  if (!file) return [];
  const reasons = new HealthReasons(QUIET, "");
  try {
    // Reads the file as the sender will, and registers the key as a secret before anything prints.
    new Credentials(config.messenger, QUIET, reasons);
    return reasons.values().map((r) => `messenger.apiKeyFile: ${r}`);
  } catch (err) {
    if (err instanceof ConfigError) return [err.message];
    throw err;
  }
}
