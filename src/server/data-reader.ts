// The DATA phase: turns the dot-stuffed stream after "354" into the message,
// and finds the one end that counts, CRLF "." CRLF (RFC 5321 4.1.1.4).
// How: input is cut into lines with Buffer.indexOf, so JavaScript runs once
// per line, never per byte; kept bytes are subarrays of the input chunks,
// joined once at the end. A line ends the message only when it is exactly
// ".\r\n" and the line before it ended with CRLF (or it is the first line).
// Every look-alike ("\n.\n", "\n.\r", "\r.\n", "\r.\r", "\n.\r\n",
// "\r.\r\n", "\r\n\0.\r\n") is data, and a bare CR, bare LF or NUL marks the
// message bad, so the transaction is refused at the real end: one message
// never becomes two (SMTP smuggling), as with Postfix's
// smtpd_forbid_bare_newline = reject. Line ends stay CRLF here; the queue
// module's normalizing turns them into LF.

export type DataFault = 'bare-newline' | 'nul' | 'long-line' | 'too-big';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const NUL = 0x00;
/** RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF, not counting a stuffing dot. */
export const MAX_TEXT_LINE = 1000;

export class DataReader {
  /** Why the message must be refused; the first fault found wins. */
  fault: DataFault | undefined;
  /** Bytes of message kept so far (after unstuffing; line ends as sent). */
  size = 0;
  private parts: Buffer[] = [];
  private lineLength = 0;
  private atLineStart = true;
  /** The line before this one ended with CRLF; true at the start (". CRLF" first ends an empty message). */
  private lastEndedCrlf = true;
  /** The byte before the current chunk, to see a CRLF split across chunks. */
  private prevByte = LF;
  /** "." or ".\r" at a line start at the end of a chunk: undecided until more comes. */
  private held: Buffer | undefined;

  constructor(private readonly maxSize: number) {}

  /** Take a chunk; returns what follows the end marker once the message has ended, else undefined. */
  push(input: Buffer): Buffer | undefined {
    const chunk = this.held ? Buffer.concat([this.held, input]) : input;
    this.held = undefined;
    let pos = 0;
    let keepFrom = 0;
    let nextCr = -2;
    let nextNul = -2;
    while (pos < chunk.length) {
      if (this.atLineStart && chunk[pos] === DOT) {
        const left = chunk.length - pos;
        if (left === 1 || (left === 2 && chunk[pos + 1] === CR)) {
          this.keep(chunk, keepFrom, pos);
          this.prevByte = pos > 0 ? chunk[pos - 1] : this.prevByte;
          this.held = chunk.subarray(pos);
          return undefined;
        }
        if (this.lastEndedCrlf && chunk[pos + 1] === CR && chunk[pos + 2] === LF) {
          this.keep(chunk, keepFrom, pos);
          return chunk.subarray(pos + 3);
        }
        // A stuffing dot: dropped, and not counted in the line's length.
        this.keep(chunk, keepFrom, pos);
        keepFrom = ++pos;
      }
      this.atLineStart = false;
      const lf = chunk.indexOf(LF, pos);
      const end = lf < 0 ? chunk.length : lf + 1;
      if (!this.fault) {
        if (nextNul < pos && nextNul !== -1) nextNul = chunk.indexOf(NUL, pos);
        if (nextCr < pos && nextCr !== -1) nextCr = chunk.indexOf(CR, pos);
        this.checkLine(chunk, pos, lf, end, nextCr, nextNul);
      }
      this.count(end - pos);
      if (lf >= 0) {
        this.lastEndedCrlf = (lf > 0 ? chunk[lf - 1] : this.prevByte) === CR;
        this.atLineStart = true;
        this.lineLength = 0;
      }
      pos = end;
    }
    this.keep(chunk, keepFrom, chunk.length);
    this.prevByte = chunk.length ? chunk[chunk.length - 1] : this.prevByte;
    return undefined;
  }

  /** The message as received (CRLF line ends, unstuffed). Only meaningful without a fault. */
  message(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }

  /** Bare LF, bare CR, NUL and over-long lines, for the line at [pos, end). */
  private checkLine(chunk: Buffer, pos: number, lf: number, end: number, nextCr: number, nextNul: number): void {
    if (nextNul >= 0 && nextNul < end) return this.setFault('nul');
    if (lf >= 0 && (lf > 0 ? chunk[lf - 1] : this.prevByte) !== CR) return this.setFault('bare-newline');
    // A CR must be the one just before this line's LF (or the chunk's last byte, its LF still to come).
    if (pos === 0 && this.prevByte === CR && chunk[0] !== LF) return this.setFault('bare-newline');
    const lastAllowed = lf >= 0 ? lf - 1 : chunk.length - 1;
    if (nextCr >= 0 && nextCr < end && nextCr !== lastAllowed) return this.setFault('bare-newline');
    this.lineLength += end - pos;
    if (this.lineLength > MAX_TEXT_LINE) this.setFault('long-line');
  }

  private count(n: number): void {
    this.size += n;
    if (this.size > this.maxSize && !this.fault) this.setFault('too-big');
  }

  private setFault(f: DataFault): void {
    this.fault = f;
    // A refused message is only read to its end; nothing of it is kept.
    this.parts = [];
  }

  private keep(chunk: Buffer, from: number, to: number): void {
    if (to > from && !this.fault) this.parts.push(chunk.subarray(from, to));
  }
}
