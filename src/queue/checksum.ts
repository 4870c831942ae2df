// CRC-32 (IEEE 802.3, the one of zip and zlib) of a queue entry's message,
// written in its D record and checked before any delivery. In JavaScript
// rather than node:zlib's, whose import costs every short-lived sendmail
// about 4 ms; a 100 KB message takes a fraction of a millisecond here.

let table: Int32Array | undefined;

function makeTable(): Int32Array {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
}

/** The CRC-32 of `data`, as eight lower-case hex digits. */
export function checksum(data: Uint8Array): string {
  const t = (table ??= makeTable());
  let c = -1;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ((c ^ -1) >>> 0).toString(16).padStart(8, '0');
}
