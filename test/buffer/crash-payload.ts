// The payload the crash writer appends as record `seq`: JSON of a size and content that depend on
// the sequence number only, so a reader can check any record byte for byte.
const enc = new TextEncoder();
export function expectedPayload(seq: number): Uint8Array {
  const n = 20 + ((seq * 7919) % 900);
  let body = "";
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (let i = 0; i < n; i++) body += alphabet[(seq * 31 + i * 17) % alphabet.length];
  return enc.encode(`{"seq":${seq},"body":"${body}"}`);
}
