// One queue entry, one file: qf<ID> holds the envelope, the message and the
// journal, as Postfix's queue files do. One file is one inode to allocate,
// one fsync and one unlink a message instead of two of each.
//
//   V1                          control records (control.ts), one a line
//   I... T... S... R...
//   D<bytes> <crc32>            the message's length and checksum; the message
//   <bytes of message>          follows at once, not necessarily ending in \n
//   X... F... P... N... Y...    journal records appended after delivery steps
//
// The head is parsed strictly (an unknown record makes the entry corrupt);
// the tail is a journal a crash may tear: a record that does not parse is
// skipped. A file shorter than its D record, or whose message does not match
// the checksum, is damaged: it is never delivered (queue-run quarantines it).
// Entries written before this layout (no D record: the control records in
// qf<ID>, the message in df<ID>) are still read, so that mail queued by an
// older mailtk goes out.

import fs from 'node:fs';
import path from 'node:path';
import { checksum } from './checksum.ts';
import { type Control, parseControl, parseJournal, serializeControl } from './control.ts';

/** What a first read takes: the head and, for most messages, the message too. */
const FIRST_READ = 8 << 10;
const D_RECORD = /^D(\d+) ([0-9a-f]{8})$/;
/** The first read's buffer, reused: a listing of 100,000 entries allocates nothing per entry for it. */
const scratch = Buffer.allocUnsafe(FIRST_READ);

export class DamagedEntry extends Error {
  /**
   * The envelope, when the damage is past it; where the entry was set aside
   * (relative to queue_dir), once it was.
   */
  constructor(message: string, readonly control?: Control, readonly where?: string) {
    super(message);
  }
}

export interface EntryFile {
  control: Control;
  file: string;
  /** Where the message starts in the file; -1 for an older entry (the message is in df<ID>). */
  dataOffset: number;
  /** The message, when the first read held it (checked by readMessage, not here). */
  data?: Buffer;
  /** Bytes after the message (the journal); for an older entry, the whole control file. */
  journalBytes: number;
}

/** The bytes of a new entry's file: head, D record, message. */
export function entryBytes(c: Control, data: Buffer): Buffer[] {
  return [Buffer.from(`${serializeControl(c)}D${data.length} ${checksum(data)}\n`), data];
}

/**
 * Read an entry's envelope and journal (ENOENT when it is gone); with
 * `message`, also keep the message when the first read held it.
 */
export function readEntry(file: string, opts: { message?: boolean } = {}): EntryFile {
  const fd = fs.openSync(file, 'r');
  try {
    let buf = scratch;
    let have = fs.readSync(fd, buf, 0, buf.length, 0);
    // A short read of a regular file is its end: no fstat needed.
    const size = have < buf.length ? have : fs.fstatSync(fd).size;
    let d = findDRecord(buf, have);
    while (!d && have < size) {
      const more = Buffer.allocUnsafe(Math.min(size, buf.length * 4));
      buf.copy(more, 0, 0, have);
      buf = more;
      have += fs.readSync(fd, buf, have, buf.length - have, have);
      d = findDRecord(buf, have);
    }
    if (!d) return { control: parseControl(buf.toString('utf8', 0, have)), file, dataOffset: -1, journalBytes: size };
    const control = parseControl(buf.toString('utf8', 0, d.start));
    control.size = d.size;
    control.crc = d.crc;
    const dataOffset = d.end;
    const tailOffset = dataOffset + d.size;
    if (tailOffset > size) throw new DamagedEntry(`file of ${size} bytes holds ${size - dataOffset} of the message's ${d.size}`, control);
    let tail: string;
    if (size <= have) tail = buf.toString('utf8', tailOffset, size);
    else {
      const rest = Buffer.allocUnsafe(size - tailOffset);
      const inBuf = Math.max(0, have - tailOffset);
      if (inBuf > 0) buf.copy(rest, 0, tailOffset, have);
      fs.readSync(fd, rest, inBuf, rest.length - inBuf, tailOffset + inBuf);
      tail = rest.toString('utf8');
    }
    if (tail) parseJournal(tail, control);
    const data = opts.message && tailOffset <= have ? Buffer.from(buf.subarray(dataOffset, tailOffset)) : undefined;
    return { control, file, dataOffset, data, journalBytes: size - tailOffset };
  } finally {
    fs.closeSync(fd);
  }
}

function findDRecord(buf: Buffer, have: number): { start: number; end: number; size: number; crc: string } | undefined {
  for (let at = buf.indexOf('\nD', 0, 'latin1'); at >= 0 && at < have; at = buf.indexOf('\nD', at + 1, 'latin1')) {
    const nl = buf.indexOf(10, at + 1);
    if (nl < 0 || nl >= have) return undefined;
    const m = D_RECORD.exec(buf.toString('latin1', at + 1, nl));
    if (m) return { start: at + 1, end: nl + 1, size: Number(m[1]), crc: m[2] };
  }
  return undefined;
}

/** The message of an entry, checked against its length and checksum (DamagedEntry when not whole). */
export function readMessage(e: EntryFile): Buffer {
  const c = e.control;
  let data = e.data;
  if (e.dataOffset < 0) {
    try {
      data = fs.readFileSync(legacyDataFile(e.file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DamagedEntry('its data file is missing');
      throw err;
    }
    if (data.length !== c.size) throw new DamagedEntry(`data file of ${data.length} bytes, ${c.size} expected`);
    return data;
  }
  if (!data) {
    data = Buffer.allocUnsafe(c.size);
    const fd = fs.openSync(e.file, 'r');
    try {
      const n = fs.readSync(fd, data, 0, c.size, e.dataOffset);
      if (n !== c.size) throw new DamagedEntry(`${n} of the message's ${c.size} bytes`);
    } finally {
      fs.closeSync(fd);
    }
  }
  if (checksum(data) !== c.crc) throw new DamagedEntry(`the message does not match its checksum ${c.crc}`);
  e.data = data;
  return data;
}

/** Where an older entry keeps its message. */
export function legacyDataFile(controlFile: string): string {
  return path.join(path.dirname(controlFile), 'df' + path.basename(controlFile).slice(2));
}
