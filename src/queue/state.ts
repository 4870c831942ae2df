// The queue's states, in plain sight. One message is one entry in one state.
// Every entry lives in queue_dir as sendmail's file prefixes:
//
//   state      files present            meaning
//   ---------  -----------------------  ------------------------------------------
//   writing    df<ID> and/or tf<ID>     being written; not yet promised to anyone
//   queued     qf<ID> df<ID>            committed, ready (next-try time reached)
//   deferred   qf<ID> df<ID>            committed, a try failed; Y line = next try
//   active     qf<ID> df<ID> + lock     a runner holds qf<ID>.lock and delivers
//   held       hf<ID> df<ID>            kept aside by an administrator (no runs)
//   corrupt    Qf<ID> df<ID>            unreadable control file, kept for a human
//   (gone)     -                        every recipient delivered or bounced
//
// queued and deferred share the qf prefix: the difference is the time in the
// Y line, so a run reads it instead of moving files. active is a lock, not a
// rename, so a SIGKILLed runner leaves the entry where it was.
// In the daemon, "writing" ends in the commit log instead (commit-log.ts):
// committed entries have qf<ID> and, until their segment retires, no df<ID>
// (the C record says where the text is in the segment).
// The renames and unlinks of these files are made by transition.ts, and by
// commit-log.ts for the entries it commits, retires and recovers.
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

export const PREFIX = {
  data: 'df',
  temp: 'tf',
  control: 'qf',
  held: 'hf',
  corrupt: 'Qf',
} as const;

/** Allowed transitions, named by the function in transition.ts that makes each. */
export const TRANSITIONS: ReadonlyArray<readonly [QueueState, QueueState, string]> = [
  ['writing', 'queued', 'commit'],
  ['queued', 'active', 'activate'],
  ['deferred', 'active', 'activate'],
  ['active', 'deferred', 'defer'],
  ['active', 'queued', 'release'],
  ['queued', 'held', 'hold'],
  ['deferred', 'held', 'hold'],
  ['held', 'queued', 'unhold'],
  ['queued', 'corrupt', 'quarantine'],
  ['deferred', 'corrupt', 'quarantine'],
  ['active', 'corrupt', 'quarantine'],
  ['active', 'held', 'hold'],
];
// 'active' -> gone is finish(): the end of every successful or bounced entry.
