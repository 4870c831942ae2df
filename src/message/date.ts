// Dates as mail writes them, in local time: RFC 5322 3.3 date-time for
// Date:, Received: and DSN fields ("Sun, 22 Nov 2026 00:03:44 +0000"), and
// ctime(3)'s form for mbox "From " lines ("Sun Nov 22 00:03:44 2026").
// The zone is numeric only (no "(PST)" comment); the day of the month is
// not padded, as sendmail's arpadate() writes it. Also a human interval
// ("4 hours") in the style of sendmail's pintvl() for DSN texts.

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(n: number): string {
  return String(n).padStart(2, '0');
}

function clock(d: Date): string {
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function year(d: Date): string {
  return String(d.getFullYear()).padStart(4, '0');
}

/** "+0530", "-0800": the local offset from UTC at that instant. */
export function zoneOffset(d: Date): string {
  const east = -d.getTimezoneOffset();
  const abs = Math.abs(east);
  return `${east < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

/** "Sun, 22 Nov 2026 00:03:44 +0000" in local time. */
export function rfc5322Date(d: Date): string {
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${year(d)} ${clock(d)} ${zoneOffset(d)}`;
}

/** "Sun Nov 22 00:03:44 2026" in local time, the day space-padded as ctime(3) does. */
export function asctime(d: Date): string {
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${clock(d)} ${year(d)}`;
}

const UNITS: Array<[string, number]> = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1000],
];

/** 14_400_000 -> "4 hours"; 90_000_000 -> "1 day, 1 hour" (whole seconds, largest units first). */
export function formatInterval(ms: number): string {
  let rest = Math.max(0, Math.round(ms / 1000) * 1000);
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n} ${unit}${n === 1 ? '' : 's'}`);
  }
  return parts.length ? parts.join(', ') : '0 seconds';
}
