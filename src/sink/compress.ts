// Body compression. Bun.gzipSync at level 1 costs about a sixth of CompressionStream per batch
// and a JSON log batch still shrinks 5-10x; the one Bun-specific call of the sink lives here.

export function gzip(data: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  return Bun.gzipSync(data, { level: 1 });
}
