// Queue IDs in sendmail 8.12's shape: YMDhms + a two-character sequence +
// the process id (six digits, so IDs are 14 characters as in mailq's
// column), each time field one base-60 character (0-9A-Za-x, which sorts in
// ASCII order). The sequence carries the millisecond (3.6 steps a
// millisecond, never going back within a process), so that sorting IDs
// sorts entries by arrival to the millisecond, then by process: a run
// delivers in arrival order without reading a file. Uniqueness within one
// process comes from the sequence; the O_EXCL create in enqueue is the final
// guard against reuse.

const B60 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx';
const SEQ_PER_SECOND = 3600;
let lastSecond = -1;
let lastSeq = -1;

export type QueueId = string;

export function newQueueId(now = new Date()): QueueId {
  let second = Math.floor(now.getTime() / 1000);
  let seq = Math.floor((now.getTime() % 1000) * (SEQ_PER_SECOND / 1000));
  if (second < lastSecond || (second === lastSecond && seq <= lastSeq)) {
    // The same millisecond again, or a clock stepped back: the next free step.
    second = lastSecond;
    seq = lastSeq + 1;
    if (seq >= SEQ_PER_SECOND) {
      second++;
      seq = 0;
    }
  }
  lastSecond = second;
  lastSeq = seq;
  const t = new Date(second * 1000);
  const fields = [
    (t.getUTCFullYear() - 1900) % 60,
    t.getUTCMonth(),
    t.getUTCDate(),
    t.getUTCHours(),
    t.getUTCMinutes(),
    t.getUTCSeconds(),
  ];
  const pid = String(process.pid % 1_000_000).padStart(6, '0');
  return fields.map((n) => B60[n]).join('') + B60[Math.floor(seq / 60)] + B60[seq % 60] + pid;
}

export function isQueueId(s: string): boolean {
  return /^[0-9A-Za-x]{8}\d{6}$/.test(s);
}
