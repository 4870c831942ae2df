// sendmail's command line. sendmail and Postfix parse it with getopt(3) and
// stop at the first non-option (Postfix passes "+" to glibc), so the old
// clustered forms work: -oem, -odq, -oi, -B8BITMIME, -FCronDaemon, -q20m,
// -fuser, -f user. This is a getopt over sendmail's own option string, with
// -q's argument optional as in sendmail (vacation(1) walks its own with it). It runs on every `sendmail -t -i`,
// so it is a table and a loop (yargs costs 25-60 ms to load; see README).
// Every option in sendmail's string is accepted; the unused ones are ignored.

import { MailError } from '../message/status.ts';

/** The letters a command takes, read from a getopt(3) option string. */
export interface OptionSpec {
  known: Set<string>;
  takesArg: Set<string>;
  /** Letters whose argument may be left out (sendmail's -q): they yield ''. */
  optionalArg: Set<string>;
}

/** "ab:c" -> a spec; ':' after a letter = it takes an argument. */
export function optionSpec(optstring: string, optionalArg = ''): OptionSpec {
  const spec: OptionSpec = { known: new Set(), takesArg: new Set(), optionalArg: new Set(optionalArg) };
  for (let i = 0; i < optstring.length; i++) {
    if (optstring[i] === ':') continue;
    spec.known.add(optstring[i]);
    if (optstring[i + 1] === ':') spec.takesArg.add(optstring[i]);
  }
  return spec;
}

/** sendmail 8's option string; ':' = takes an argument. */
const SENDMAIL_SPEC = optionSpec('A:B:b:C:cD:d:e:F:f:Gh:IiL:M:mN:nO:o:p:Q:q:R:r:sTtV:vX:', 'q');

export type Mode = 'deliver' | 'print-queue' | 'init-aliases' | 'verify' | 'smtp' | 'daemon' | 'daemon-fg' | 'queue-run';

export interface QueueFilter {
  kind: 'I' | 'R' | 'S';
  negate: boolean;
  substr: string;
}

export interface SendmailOptions {
  mode: Mode;
  configFile?: string;
  overrides: Record<string, string>;
  sender?: string; // -f / -r; '' = null sender
  fullName?: string; // -F
  extractRecipients: boolean; // -t
  ignoreDots: boolean; // -i / -oi
  deliveryMode?: 'background' | 'interactive' | 'queue'; // -od?
  verbose: boolean;
  bodyType?: string; // -B
  notify?: string; // -N
  ret?: 'full' | 'hdrs'; // -R
  envid?: string; // -V
  hopCount?: number; // -h
  queueInterval?: string; // -q20m (raw; parsed by the caller)
  queueRun: boolean; // -q given at all
  /** -qf, -qI, -qR, -qS: try the entries whatever their next-try time. */
  queueForce: boolean;
  queueFilters: QueueFilter[];
  noAliasing: boolean; // -n
  recipients: string[];
}

export function usageError(text: string): MailError {
  return new MailError('usage', text);
}

const B_MODES: Record<string, Mode> = {
  m: 'deliver',
  p: 'print-queue',
  i: 'init-aliases',
  v: 'verify',
  s: 'smtp',
  d: 'daemon',
  D: 'daemon-fg',
};

// sendmail -O names that have a mailtk key of the same meaning.
const SENDMAIL_OPTION_KEYS: Record<string, string> = {
  queuedirectory: 'queue_dir',
  aliasfile: 'alias_file',
  deliverymode: 'delivery_mode',
};

/** Walk argv (without the program name) the way getopt("+...") does; sendmail's letters unless told. */
export function* getopt(argv: string[], spec: OptionSpec = SENDMAIL_SPEC): Generator<[string, string | undefined] | ['--', string[]]> {
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j];
      if (!spec.known.has(c)) throw usageError(`illegal option -- ${c}`);
      if (!spec.takesArg.has(c)) {
        yield [c, undefined];
        continue;
      }
      const attached = arg.slice(j + 1);
      if (attached !== '') {
        yield [c, attached];
      } else if (spec.optionalArg.has(c)) {
        yield [c, ''];
      } else {
        if (i + 1 >= argv.length) throw usageError(`option requires an argument -- ${c}`);
        yield [c, argv[++i]];
      }
      break;
    }
  }
  yield ['--', argv.slice(i)];
}

export function parseSendmailArgs(argv: string[], invokedAs = 'sendmail'): SendmailOptions {
  const o: SendmailOptions = {
    mode: invokedAs === 'mailq' ? 'print-queue' : invokedAs === 'newaliases' ? 'init-aliases' : 'deliver',
    overrides: {},
    extractRecipients: false,
    ignoreDots: false,
    verbose: false,
    queueRun: false,
    queueForce: false,
    queueFilters: [],
    noAliasing: false,
    recipients: [],
  };
  for (const [c, v] of getopt(argv)) {
    if (c === '--') {
      o.recipients = (v as string[]).flatMap(splitRecipientArg);
      break;
    }
    applyOption(o, c, v as string | undefined);
  }
  return o;
}

/** sendmail splits each recipient argument on commas outside quotes and <>. */
export function splitRecipientArg(arg: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < arg.length; i++) {
    const ch = arg[i];
    if (ch === '\\' && i + 1 < arg.length) {
      cur += ch + arg[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '<') angle++;
    else if (!quoted && ch === '>') angle = Math.max(0, angle - 1);
    if (ch === ',' && !quoted && angle === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function applyOption(o: SendmailOptions, c: string, v: string | undefined): void {
  switch (c) {
    case 'b': {
      const mode = B_MODES[v ?? ''];
      if (!mode) throw usageError(`-b${v}: mode not supported (supported: -bm -bp -bi -bv -bs -bd -bD)`);
      o.mode = mode;
      break;
    }
    case 'C': o.configFile = v; break;
    case 'O': applyLongOption(o, v ?? ''); break;
    case 'o': applyOldOption(o, v ?? ''); break;
    case 'f':
    case 'r': o.sender = v === '<>' ? '' : (v ?? '').replace(/^<(.*)>$/, '$1'); break;
    case 'F': o.fullName = v; break;
    case 't': o.extractRecipients = true; break;
    case 'i': o.ignoreDots = true; break;
    case 'v': o.verbose = true; break;
    case 'n': o.noAliasing = true; break;
    case 'B': o.bodyType = (v ?? '').toUpperCase(); break;
    case 'N': o.notify = (v ?? '').toUpperCase(); break;
    case 'R': {
      const r = (v ?? '').toLowerCase();
      if (r !== 'full' && r !== 'hdrs') throw usageError(`-R ${v}: must be full or hdrs`);
      o.ret = r;
      break;
    }
    case 'V': o.envid = v; break;
    case 'h': {
      if (!/^\d+$/.test(v ?? '')) throw usageError(`-h ${v}: not a hop count`);
      o.hopCount = Number(v);
      break;
    }
    case 'q': applyQueueOption(o, v ?? ''); break;
    default:
      // In sendmail's option string but meaningless here (-A -c -D -d -e -G -I -L -M -m -p -Q -s -T -X).
      break;
  }
}

function applyQueueOption(o: SendmailOptions, v: string): void {
  o.queueRun = true;
  const m = /^(!?)([IRS])(.*)$/.exec(v);
  if (m) {
    o.queueFilters.push({ kind: m[2] as 'I' | 'R' | 'S', negate: m[1] === '!', substr: m[3] });
    o.queueForce = true;
    return;
  }
  if (v === 'f') {
    o.queueForce = true; // sendmail's "in the foreground" (every run is): flush, as postqueue -f
    return;
  }
  if (v === '' || v === 'p') return; // -q, -qp (persistent; treated as -q)
  o.queueInterval = v;
}

/** -oX forms: the single-character sendmail options. */
function applyOldOption(o: SendmailOptions, v: string): void {
  const c = v[0];
  const rest = v.slice(1);
  if (c === 'i') o.ignoreDots = rest === '' || /^(t|true|y|yes)$/i.test(rest);
  else if (c === 'd') {
    const modes: Record<string, SendmailOptions['deliveryMode']> = { b: 'background', i: 'interactive', q: 'queue', d: 'queue' };
    const dm = modes[rest[0] ?? ''];
    if (!dm) throw usageError(`-od${rest}: delivery mode must be b, i, q or d`);
    o.deliveryMode = dm;
  }
  // -oe? (error mode), -om, -oo, -oL, ... : accepted and ignored, as documented.
}

/** -O key=value: a mailtk.conf key, or one of sendmail's long option names. */
function applyLongOption(o: SendmailOptions, v: string): void {
  const eq = v.indexOf('=');
  if (eq <= 0) throw usageError(`-O ${v}: expected key=value`);
  const key = v.slice(0, eq).trim();
  const value = v.slice(eq + 1).trim();
  const lower = key.toLowerCase();
  if (lower === 'ignoredots') {
    o.ignoreDots = /^(t|true|y|yes|1)$/i.test(value);
    return;
  }
  if (lower === 'errormode' || lower === 'loglevel') return;
  const mapped = SENDMAIL_OPTION_KEYS[lower];
  if (mapped === 'delivery_mode') {
    applyOldOption(o, `d${value[0] ?? ''}`);
    return;
  }
  o.overrides[mapped ?? key] = value;
}
