// The messenger API key: from the config (messenger.apiKey, or PIPEKIT_API_KEY) or from the key file,
// which is read here and nowhere else — when the sender is made, on SIGHUP and after a 401 (the secret
// may have been rotated on disk). Every key seen is registered as a secret (config/secrets.ts) before
// anything could print it. A key that cannot go into an HTTP header refuses the start (a ConfigError:
// the CLI exits 2); read again later, it is ignored and the previous key stays.
import { readFileSync } from "node:fs";
import { ConfigError } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { apiKeyProblem, registerSecret, urlPassword } from "../config/secrets.ts";
import type { Logger } from "../log.ts";
import type { HealthReasons } from "./stats.ts";

export class Credentials {
  #key: string | null;

  /** Reads the key file now; throws a ConfigError for a key that cannot be sent. */
  constructor(
    private readonly cfg: Pick<Config["messenger"], "apiKey" | "apiKeyFile" | "baseUri">,
    private readonly log: Logger,
    private readonly reasons: HealthReasons,
  ) {
    registerSecret(cfg.apiKey);
    registerSecret(urlPassword(cfg.baseUri));
    const problem = cfg.apiKey === null ? null : apiKeyProblem(cfg.apiKey);
    if (problem) throw new ConfigError(`messenger.apiKey (or PIPEKIT_API_KEY): the key ${problem}`);
    this.#key = cfg.apiKey;
    this.#load(true);
  }

  /** The key to send, or null when there is none (the messenger will answer 401). */
  get key(): string | null {
    return this.#key;
  }

  /** Re-reads messenger.apiKeyFile (SIGHUP, or the messenger refused the key). */
  reload(): void {
    this.#load(false);
  }

  #load(atStart: boolean): void {
    const file = this.cfg.apiKeyFile;
    if (!file) {
      if (!this.#key) this.reasons.set("key-source", "no messenger API key configured (messenger.apiKey, PIPEKIT_API_KEY or messenger.apiKeyFile)");
      return;
    }
    let key: string;
    try {
      key = readFileSync(file, "utf8").trim();
    } catch (err) {
      this.reasons.set("key-source", `cannot read messenger API key file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
      return;
    }
    if (key === "") {
      this.reasons.set("key-source", `messenger API key file ${file} is empty`);
      return;
    }
    registerSecret(key);
    const problem = apiKeyProblem(key);
    if (problem) {
      if (atStart) throw new ConfigError(`messenger.apiKeyFile ${file}: the key ${problem}`);
      this.log.error("messenger API key file holds a key that cannot be sent; keeping the previous key", { file, problem });
      return;
    }
    if (key !== this.#key) this.log.info("messenger API key loaded", { file });
    this.#key = key;
    this.reasons.delete("key-source");
  }
}
