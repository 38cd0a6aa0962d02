// The messenger's wire contract (docs/pipeline.md, README "Architecture"): where batches go and how the key travels.
export const INGEST_PATH = "/api/messenger/v1/logs/ingest/batch";
export const API_KEY_HEADER = "X-PIPEKIT-API-KEY";

/** `{baseUri}/api/messenger/v1/logs/ingest/batch`, keeping any path prefix of the base URI. */
export function ingestUrl(baseUri: string): string {
  return baseUri.replace(/\/+$/, "") + INGEST_PATH;
}

/** A URL fit for logs and /status: user-info (credentials) and query removed. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    return u.toString();
  } catch {
    return "(invalid URL)";
  }
}
