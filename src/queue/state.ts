// The queue's states, in plain sight. One message is one entry in one state.
// An entry is one file (entry-file.ts: envelope, message, journal) in
// queue_dir, named with sendmail's prefixes (held ones in a folder, as
// Postfix's hold queue, so that no scan of queue_dir ever sees them):
//
//   state      file                     meaning
//   ---------  -----------------------  ------------------------------------------
//   writing    tf<ID>                   being written; not yet promised to anyone
//   queued     qf<ID>, mtime <= now     committed, due
//   deferred   qf<ID>, mtime > now      committed, a try failed; mtime = next try
//   active     qf<ID> + qf<ID>.lock     a live runner holds the lock and delivers
//   held       hold/qf<ID>              kept aside by an administrator: no run,
//                                       forced (-qf, -qI) or not, touches it
//   corrupt    corrupt/qf<ID>           damaged (torn, truncated, checksum wrong):
//                                       never delivered, kept for a human
//   (gone)     -                        every recipient delivered or bounced
//
// queued and deferred share the qf prefix: the difference is the file's
// mtime (Postfix's convention), so a run tells them apart with a stat.
// active is a lock, not a rename, so a SIGKILLed runner leaves the entry
// where it was. Every rename and unlink of these files is in transition.ts.
// An older mailtk's entry keeps its message in df<ID> beside it; it is read,
// moved and removed with its qf<ID>.
//
// Before the queue, an ordinary user's submission (pickup.ts), in folders:
//
//   stage      where                    meaning
//   ---------  -----------------------  ------------------------------------------
//   dropped    maildrop/NAME            written by its owner (1733 folder): hostile
//   claimed    pickup/ID + qf<ID>.lock  taken by a picker under the ID it gave it
//   refused    corrupt/UNIQUE           what pickup would not take, kept for a human
//
// claimed -> writing is enqueue under that ID; a claimed file whose qf<ID>
// exists was committed before a crash and is discarded.

export type QueueState = 'writing' | 'queued' | 'deferred' | 'active' | 'held' | 'corrupt';
/** Where an entry ends: every recipient delivered or bounced (finish), or removed by an administrator. */
export type QueueEnd = 'gone';

export const PREFIX = {
  data: 'df',
  temp: 'tf',
  control: 'qf',
} as const;

/** Folders of queue_dir holding entries out of runs (transition.ts makes and fills them). */
export const HOLD_DIR = 'hold';
export const CORRUPT_DIR = 'corrupt';
export const PICKUP_DIR = 'pickup';

/** Allowed transitions, named by the function in transition.ts that makes each. */
export const TRANSITIONS: ReadonlyArray<readonly [QueueState, QueueState | QueueEnd, string]> = [
  ['writing', 'queued', 'commit'],
  ['queued', 'active', 'activate'],
  ['deferred', 'active', 'activate'],
  ['active', 'deferred', 'defer'],
  ['active', 'queued', 'release'],
  ['queued', 'held', 'hold'],
  ['deferred', 'held', 'hold'],
  ['held', 'queued', 'unhold'],
  ['queued', 'gone', 'remove'],
  ['deferred', 'gone', 'remove'],
  ['held', 'gone', 'remove'],
  ['corrupt', 'gone', 'remove'],
  ['deferred', 'queued', 'makeDue'],
  ['queued', 'corrupt', 'quarantine'],
  ['deferred', 'corrupt', 'quarantine'],
  ['active', 'corrupt', 'quarantine'],
  ['active', 'gone', 'finish'],
];
// An administrator's hold, unhold, remove and makeDue take the entry's lock
// first (entry-lock.ts), as a run's activate does: an entry being delivered
// is refused ('busy'), never moved or removed under its runner.
