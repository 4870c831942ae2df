// What vacation's command line asks for (sendmail's vacation(1) options;
// src/cli/vacation.ts walks them with the shared getopt): -i (or -I) sets up
// the database, -l lists it, -x reads addresses not to answer from standard
// input, and otherwise the login named last is the one whose mail is on
// standard input. -C names the mailtk.conf (sendmail's vacation takes its
// sendmail.cf there); -t and -U are accepted and ignored, as there.

import { FOREVER, type Interval } from './db.ts';

export interface VacationArgs {
  /** Addresses that count as the user's besides the login (-a, repeatable). */
  aliases: string[];
  configFile?: string;
  /** -d: say why no reply went out, on standard error. */
  debug: boolean;
  dbFile?: string;
  init: boolean;
  list: boolean;
  /** -x: read exclusions (addresses, or @domain) from standard input. */
  exclude: boolean;
  /** -j: answer even when the login is in neither To: nor Cc:. */
  skipAddressCheck: boolean;
  msgFile?: string;
  /** -R: the reply's envelope sender; the null path <> when not given (RFC 3834 3.3). */
  returnPath?: string;
  interval?: Interval;
  /** -s: answer this address instead of the envelope sender. */
  replyTo?: string;
  login?: string;
}

export const USAGE = `usage: vacation -i [-r interval] [-f database] [-x]
       vacation -l [-f database]
       vacation [-a alias]... [-C config] [-d] [-f database] [-j] [-m message]
                [-R returnaddr] [-r interval] [-s address] [-z] login`;

const DAY_SECONDS = 24 * 60 * 60;

/** -r: whole days; 0 answers every message; anything not a number ("infinite") answers once. */
export function parseInterval(text: string): Interval {
  if (!/^\d+$/.test(text.trim())) return FOREVER;
  return Number(text.trim()) * DAY_SECONDS;
}
