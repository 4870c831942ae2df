// sendmail's time intervals: "20m", "1h30m", "45s", "5d", "2w"; a bare
// number is minutes for -q (sendmail's rule) and seconds elsewhere, so the
// caller says which unit a bare number takes. Returns milliseconds.

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export function parseDuration(text: string, bareUnit: 's' | 'm' = 's'): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * UNIT_MS[bareUnit];
  if (!/^(\d+[smhdw])+$/.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(/(\d+)([smhdw])/g)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return ms;
}

export function formatDuration(ms: number): string {
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [u, n] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${u}`);
      s %= n;
    }
  }
  return parts.join('') || '0s';
}
