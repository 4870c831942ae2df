// The message body as it goes over the wire after DATA (RFC 5321 4.5.2):
// queued LF line ends become CRLF, a line that starts with "." gets a second
// one, and a bare CR becomes a line end too, so no receiver that treats a
// lone CR or LF as a line end can be made to see an early end of data (SMTP
// smuggling). Lines already ending in CRLF are left alone. The copy is made
// a chunk at a time, never the whole message at once, and the queued Buffer
// is only read, so many connections can send one message at the same time.

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BYTE = Buffer.from('.');
export const END_OF_DATA = Buffer.from('.\r\n');
// Big enough that a write is worth a system call, small enough to stay out of the old heap.
export const CHUNK_BYTES = 64 * 1024;

/** The body in wire form, in chunks of about `chunkBytes`, ending with CRLF (not the final dot). */
export function* wireChunks(data: Buffer, chunkBytes = CHUNK_BYTES): Generator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for (const piece of wirePieces(data)) {
    parts.push(piece);
    size += piece.length;
    if (size >= chunkBytes) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size) yield Buffer.concat(parts, size);
}

/** Slices of `data` (no copies) with the inserted bytes between them. */
function* wirePieces(data: Buffer): Generator<Buffer> {
  let start = 0;
  // The next CR at or after `start`, found once: searching again on every line would be quadratic.
  let cr = data.indexOf(CR);
  while (start < data.length) {
    if (cr >= 0 && cr < start) cr = data.indexOf(CR, start);
    const end = lineEnd(data, start, cr);
    if (data[start] === DOT) yield DOT_BYTE;
    // A line ends at LF, at CRLF, or at a bare CR: the content stops before them.
    const stop = end > start && data[end] === LF && data[end - 1] === CR ? end - 1 : end;
    if (stop > start) yield data.subarray(start, stop);
    yield CRLF;
    start = end + 1;
  }
}

/** Index of the LF (or bare CR) that ends the line starting at `from`, or data.length. */
function lineEnd(data: Buffer, from: number, cr: number): number {
  let lf = data.indexOf(LF, from);
  if (lf < 0) lf = data.length;
  // A CR right before the LF is the CRLF pair; any other CR before it is bare and ends the line.
  if (cr < 0 || cr >= lf || (cr + 1 === lf && lf < data.length)) return lf;
  return cr;
}

/** The size in wire form, for the SIZE= parameter (RFC 1870), without building it. */
export function wireSize(data: Buffer): number {
  let size = 0;
  for (const piece of wirePieces(data)) size += piece.length;
  return size;
}

/** Whether the body has any byte over 127, so BODY=8BITMIME should be declared. */
export function hasEightBit(data: Buffer): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] > 0x7f) return true;
  return false;
}
