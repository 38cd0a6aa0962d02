// A metadata configuration the collector cannot run with (missing NODE_NAME, podsFile, an
// unreadable CA...). The CLI turns it into exit status 2 with this message.
export class MetadataConfigError extends Error {
  override readonly name = "MetadataConfigError";
}
