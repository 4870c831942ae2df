// Fills a mailtk queue with COUNT deferred entries for bench/queue-scale.sh:
// each entry was tried once ("Deferred: Connection refused") and has one
// recipient, someone@dead.example, a domain the bench's transport_map sends
// to a loopback port where nothing listens. MODE "notdue": next try in an
// hour; "due": next try a minute ago. Each control file's mtime is set to its
// next-try time (the queue's convention, Postfix's: a run decides due-ness
// with a stat, see src/queue/scan.ts).
// Written directly with the queue's own serializer, not through enqueue(): no
// fsync, no tf rename (this is a fixture, and 100000 fsyncs would take longer
// than the runs it prepares). LAYOUT "entry" (the default) writes what
// enqueue writes: one file qf<ID> with the control records, the D record
// (length and CRC-32) and the message (src/queue/entry-file.ts). LAYOUT
// "legacy" writes the layout before it, control records in qf<ID> and the
// message in df<ID>, which the queue still reads.
// Files are left as the writer's (root's): the caller gives the queue to
// mail_owner afterwards (chown -R), as giveQueueTo would.
// Usage: node --import tsx bench/fill-deferred.ts CONF COUNT due|notdue [entry|legacy]
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/index.ts';
import { checksum } from '../src/queue/checksum.ts';
import { newControl, serializeControl } from '../src/queue/control.ts';
import { ensureQueueDirs } from '../src/queue/enqueue.ts';
import { entryBytes } from '../src/queue/entry-file.ts';
import { isQueueId, newQueueId } from '../src/queue/id.ts';

const [conf, countArg, mode, layout = 'entry'] = process.argv.slice(2);
const count = Number(countArg);
if (!conf || !Number.isInteger(count) || count < 1 || (mode !== 'due' && mode !== 'notdue') || (layout !== 'entry' && layout !== 'legacy')) {
  console.error('usage: node --import tsx bench/fill-deferred.ts CONF COUNT due|notdue [entry|legacy]');
  process.exit(64);
}
const config = loadConfig({ file: conf });
ensureQueueDirs(config);

const now = Date.now();
// Arrivals one millisecond apart, the last ten minutes ago: well inside
// queue_warn (4h), so a run sends no delay notices.
const firstArrival = now - 10 * 60_000 - count;
const lastAttempt = now - 5 * 60_000;
const nextTry = mode === 'due' ? now - 60_000 : now + 3600_000;
const sender = 'queue-scale@bench.test';
const recipient = 'someone@dead.example';

// A 1.2 KB message, as sendmail would have queued it.
const data = Buffer.from(
  `Received: from root by bench.test (mailtk) id QUEUESCALE; ${new Date(firstArrival).toUTCString()}\n` +
    `From: ${sender}\nTo: ${recipient}\nSubject: queue scale bench\n` +
    `Date: ${new Date(firstArrival).toUTCString()}\nMessage-ID: <queue-scale@bench.test>\n\n` +
    ('y'.repeat(71) + '\n').repeat(14),
);
const crc = checksum(data);

// An ID from each entry's arrival time: IDs carry the millisecond (src/queue/id.ts),
// so they are distinct and sort in arrival order. The Set and the O_EXCL create check it.
const seen = new Set<string>();
const mtime = nextTry / 1000;
for (let i = 0; i < count; i++) {
  const arrival = firstArrival + i;
  const id = newQueueId(new Date(arrival));
  if (!isQueueId(id) || seen.has(id)) throw new Error(`queue ID ${id} invalid or repeated at entry ${i}`);
  seen.add(id);
  const control = newControl({
    id,
    arrival,
    sender,
    submitter: 'root',
    recipients: [{ address: recipient }],
    attempts: 1,
    lastAttempt,
    nextTry,
    reason: 'Deferred: Connection refused',
    size: data.length,
    crc, // the message's CRC-32; entryBytes writes it (with the length) as the D record
  });
  const qf = path.join(config.queueDir, `qf${id}`);
  if (layout === 'legacy') fs.writeFileSync(path.join(config.queueDir, `df${id}`), data, { flag: 'wx', mode: 0o600 });
  const fd = fs.openSync(qf, 'wx', 0o600);
  try {
    if (layout === 'legacy') fs.writeSync(fd, serializeControl(control));
    else fs.writevSync(fd, entryBytes(control, data));
    fs.futimesSync(fd, mtime, mtime); // the control file's mtime is its next attempt time
  } finally {
    fs.closeSync(fd);
  }
}
console.log(`queued ${count} deferred entries (${mode}, ${layout} layout) in ${config.queueDir}`);
