// mail's command line, POSIX getopt style as mailx and s-nail take it:
// clustered flags (-iN), option arguments joined or separate (-sSubj, -s Subj),
// `--` ends options, and -f's file taken from the operands after the options
// (so `mail -f` alone means ~/mbox). Hand-written rather than yargs: the
// grammar is twelve letters, and `mail -H` pays yargs's load time on every run.

import { MailError } from '../message/status.ts';

export interface MailArgs {
  configFile?: string;
  overrides: Record<string, string>;
  subject?: string;
  cc: string[];
  bcc: string[];
  from?: string;
  attach: string[];
  discardEmpty: boolean;
  recipients: string[];
  /** -f given: the folder named after the options, or true for ~/mbox. */
  folder?: string | true;
  user?: string;
  check: boolean;
  headersOnly: boolean;
  noHeader: boolean;
  noRc: boolean;
  ignoreInterrupts: boolean;
  readOnly: boolean;
  verbose: boolean;
  sets: string[];
  help: boolean;
  version: boolean;
}

/** Letters that take an argument, and what each one does with it. */
const WITH_ARG: Record<string, (a: MailArgs, v: string) => void> = {
  s: (a, v) => (a.subject = v.replace(/[\r\n]+/g, ' ')),
  c: (a, v) => a.cc.push(v),
  b: (a, v) => a.bcc.push(v),
  r: (a, v) => (a.from = v),
  a: (a, v) => a.attach.push(v),
  u: (a, v) => (a.user = v),
  C: (a, v) => (a.configFile = v),
  S: (a, v) => a.sets.push(v),
  O: (a, v) => {
    const eq = v.indexOf('=');
    if (eq < 1) throw new MailError('usage', `-O ${v}: expected key=value`);
    a.overrides[v.slice(0, eq)] = v.slice(eq + 1);
  },
};

const FLAGS: Record<string, (a: MailArgs) => void> = {
  E: (a) => (a.discardEmpty = true),
  e: (a) => (a.check = true),
  f: (a) => (a.folder = true),
  H: (a) => (a.headersOnly = true),
  N: (a) => (a.noHeader = true),
  n: (a) => (a.noRc = true),
  i: (a) => (a.ignoreInterrupts = true),
  R: (a) => (a.readOnly = true),
  v: (a) => (a.verbose = true),
  d: () => {},
  h: (a) => (a.help = true),
  V: (a) => (a.version = true),
};

export const USAGE = `usage: mail [-EiNnRv] [-s subject] [-c cc] [-b bcc] [-r from] [-a file]... [--] address...
       mail [-eHiNnRv] [-f [file] | -u user]`;

export function parseMailArgs(argv: string[]): MailArgs {
  const a: MailArgs = {
    overrides: {},
    cc: [],
    bcc: [],
    attach: [],
    discardEmpty: false,
    recipients: [],
    check: false,
    headersOnly: false,
    noHeader: false,
    noRc: false,
    ignoreInterrupts: false,
    readOnly: false,
    verbose: false,
    sets: [],
    help: false,
    version: false,
  };
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      operands.push(arg);
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j];
      const take = WITH_ARG[letter];
      if (take) {
        const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
        if (value === undefined) throw new MailError('usage', `option -${letter} requires an argument`);
        take(a, value);
        break;
      }
      const flag = FLAGS[letter];
      if (!flag) throw new MailError('usage', `unknown option -${letter}`);
      flag(a);
    }
  }
  return placeOperands(a, operands);
}

/** Operands are the -f folder in read mode, recipients otherwise. */
function placeOperands(a: MailArgs, operands: string[]): MailArgs {
  if (a.folder) {
    if (operands.length > 1) throw new MailError('usage', '-f takes one folder');
    if (operands.length === 1) a.folder = operands[0];
    if (a.user) throw new MailError('usage', '-f and -u cannot be used together');
    return a;
  }
  a.recipients = operands;
  const reading = a.user !== undefined || a.check || a.headersOnly;
  if (reading && operands.length) throw new MailError('usage', 'addresses cannot be given when reading mail');
  return a;
}

export function isSendMode(a: MailArgs): boolean {
  return !a.folder && a.user === undefined && !a.check && !a.headersOnly && a.recipients.length > 0;
}
