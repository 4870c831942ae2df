// Queue IDs in sendmail 8.12's shape: YMDhms + a two-character sequence +
// the process id (six digits, so IDs are 14 characters as in mailq's column), each time field one base-60 character (0-9A-Za-x, which
// sorts in ASCII order), so IDs sort by time and differ across processes
// without any coordination. Uniqueness within one process comes from the
// sequence; the O_EXCL create in enqueue is the final guard against reuse.

const B60 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx';
let seq = Math.floor(Math.random() * 60 * 60);

export type QueueId = string;

export function newQueueId(now = new Date()): QueueId {
  seq = (seq + 1) % 3600;
  const t = [
    (now.getUTCFullYear() - 1900) % 60,
    now.getUTCMonth(),
    now.getUTCDate(),
    now.getUTCHours(),
    now.getUTCMinutes(),
    now.getUTCSeconds(),
  ];
  const pid = String(process.pid % 1_000_000).padStart(6, '0');
  return t.map((n) => B60[n]).join('') + B60[Math.floor(seq / 60)] + B60[seq % 60] + pid;
}

export function isQueueId(s: string): boolean {
  return /^[0-9A-Za-x]{8}\d{6}$/.test(s);
}
