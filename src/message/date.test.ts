// Tests for date.ts: RFC 5322 dates and ctime(3) dates in several zones
// (set through process.env.TZ, which Node re-reads on assignment), daylight
// saving, half-hour zones, day padding, and sendmail-style intervals.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { asctime, formatInterval, rfc5322Date, zoneOffset } from './date.ts';

// Node re-reads the zone when process.env.TZ is assigned.
const savedTz = process.env.TZ;
function inZone<T>(tz: string, f: () => T): T {
  process.env.TZ = tz;
  try {
    return f();
  } finally {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  }
}
after(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const t = new Date('2026-11-22T00:03:44Z');

describe('rfc5322Date', () => {
  it('writes UTC as +0000', () => {
    assert.equal(inZone('UTC', () => rfc5322Date(t)), 'Sun, 22 Nov 2026 00:03:44 +0000');
  });
  it('writes local time with the local numeric zone', () => {
    assert.equal(inZone('America/New_York', () => rfc5322Date(t)), 'Sat, 21 Nov 2026 19:03:44 -0500');
    assert.equal(inZone('Asia/Kolkata', () => rfc5322Date(t)), 'Sun, 22 Nov 2026 05:33:44 +0530');
    assert.equal(inZone('America/St_Johns', () => rfc5322Date(t)), 'Sat, 21 Nov 2026 20:33:44 -0330');
  });
  it('follows daylight saving time', () => {
    assert.equal(inZone('America/New_York', () => zoneOffset(new Date('2026-07-01T12:00:00Z'))), '-0400');
  });
  it('does not pad the day, as sendmail does not', () => {
    assert.equal(inZone('UTC', () => rfc5322Date(new Date('2026-03-02T09:05:01Z'))), 'Mon, 2 Mar 2026 09:05:01 +0000');
  });
});

describe('asctime', () => {
  it('writes ctime(3) form in local time, the day space-padded', () => {
    assert.equal(inZone('UTC', () => asctime(t)), 'Sun Nov 22 00:03:44 2026');
    assert.equal(inZone('UTC', () => asctime(new Date('2026-03-02T09:05:01Z'))), 'Mon Mar  2 09:05:01 2026');
    assert.equal(inZone('Asia/Tokyo', () => asctime(t)), 'Sun Nov 22 09:03:44 2026');
  });
});

describe('formatInterval', () => {
  it('writes the largest units first, leaving out zeros', () => {
    assert.equal(formatInterval(4 * 3_600_000), '4 hours');
    assert.equal(formatInterval(3_600_000), '1 hour');
    assert.equal(formatInterval(5 * 86_400_000), '5 days');
    assert.equal(formatInterval(86_400_000 + 3_600_000 + 60_000), '1 day, 1 hour, 1 minute');
    assert.equal(formatInterval(45_000), '45 seconds');
    assert.equal(formatInterval(0), '0 seconds');
    assert.equal(formatInterval(-5), '0 seconds');
  });
});
