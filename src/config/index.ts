// Configuration: mailtk.conf ("key = value", # comments), chosen by -C, by
// the MAILTK_CONFIG environment variable (so that every child process reaches
// the same file), else /etc/mail/mailtk.conf. -O key=value overrides a key.
// Every path any module uses comes from here. Errors name file:line and exit
// with EX_CONFIG (78) through MailError('config').

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MailError } from '../message/status.ts';
import { parseDuration } from './duration.ts';
import { KEYS, type Key, type KeySpec } from './keys.ts';

export { parseDuration, formatDuration } from './duration.ts';
export { KEYS, type Key } from './keys.ts';

export const SYSTEM_CONFIG = '/etc/mail/mailtk.conf';
export const DATA_DIR_NAME = 'mailtk-data';

export interface Config {
  /** The config file read, or undefined when only defaults apply. */
  file: string | undefined;
  hostname: string;
  queueDir: string;
  maildropDir: string;
  mailSpoolDir: string;
  aliasFile: string;
  aliasDb: string;
  localHostNamesFile: string;
  accessFile: string;
  logFile: string;
  pidFile: string;
  userDb: string;
  defaultPrivs: string;
  forwardPath: string;
  queueWarnMs: number;
  queueReturnMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  queueLockStaleMs: number;
  deliveryMode: 'background' | 'interactive' | 'queue';
  programTimeoutMs: number;
  maxHopCount: number;
  maxMessageSize: number;
  /** Raw values, for keys later issues add and for `sendmail -d0` style dumps. */
  raw: Record<Key, string>;
  /** The -O overrides given, passed on to child processes. */
  overrides: Record<string, string>;
}

export interface LoadOptions {
  file?: string;
  overrides?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

interface Source {
  value: string;
  file?: string;
  line?: number;
}

export function configFileFor(opts: LoadOptions): string | undefined {
  const env = opts.env ?? process.env;
  if (opts.file) return path.resolve(opts.cwd ?? process.cwd(), opts.file);
  if (env.MAILTK_CONFIG) return path.resolve(opts.cwd ?? process.cwd(), env.MAILTK_CONFIG);
  if (fs.existsSync(SYSTEM_CONFIG)) return SYSTEM_CONFIG;
  return undefined;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const file = configFileFor(opts);
  const explicit = Boolean(opts.file || (opts.env ?? process.env).MAILTK_CONFIG);
  const values = new Map<Key, Source>();
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new MailError('config', `cannot read config file: ${(e as Error).message}`, { file, cause: e });
    }
    for (const [key, src] of parseConfigText(text, file)) values.set(key, src);
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) {
    if (!(k in KEYS)) throw new MailError('config', `-O ${k}=${v}: unknown key "${k}"; see mailtk.conf(5)`);
    values.set(k as Key, { value: v });
  }
  // Root, or anyone with a config file, gets the system layout; an ordinary
  // user with none gets a private tree under ./mailtk-data.
  const system = file !== undefined || process.geteuid?.() === 0;
  const dataDir = path.resolve(opts.cwd ?? process.cwd(), DATA_DIR_NAME);
  const baseDir = file && explicit ? path.dirname(file) : (opts.cwd ?? process.cwd());
  const raw = {} as Record<Key, string>;
  for (const key of Object.keys(KEYS) as Key[]) {
    const spec: KeySpec = KEYS[key];
    const src = values.get(key);
    let v = src ? src.value : system ? spec.root : spec.user.replace('$D', dataDir);
    if (spec.kind === 'path' && src && v !== '' && !path.isAbsolute(v)) v = path.resolve(baseDir, v);
    checkValue(key, spec, v, src);
    raw[key] = v;
  }
  return build(file, raw, opts.overrides ?? {});
}

export function parseConfigText(text: string, file: string): Array<[Key, Source]> {
  const out: Array<[Key, Source]> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(trimmed);
    if (!m) {
      throw new MailError('config', `expected "key = value", found "${trimmed}"`, { file, line: i + 1 });
    }
    const key = m[1];
    if (!(key in KEYS)) {
      throw new MailError('config', `unknown key "${key}"; see mailtk.conf(5) for the keys`, { file, line: i + 1 });
    }
    let value = m[2];
    // A trailing comment after the value, when separated by white space.
    value = value.replace(/\s+#.*$/, '');
    out.push([key as Key, { value, file, line: i + 1 }]);
  }
  return out;
}

function checkValue(key: Key, spec: KeySpec, v: string, src: Source | undefined): void {
  const where = src?.file ? { file: src.file, line: src.line } : undefined;
  const bad = (what: string): never => {
    throw new MailError('config', `${key} = ${v}: ${what}`, where);
  };
  switch (spec.kind) {
    case 'duration':
      if (parseDuration(v) === undefined) bad('not a time interval (examples: 45s, 20m, 1h30m, 5d)');
      break;
    case 'count':
      if (!/^\d+$/.test(v)) bad('not a whole number');
      break;
    case 'bytes':
      if (parseBytes(v) === undefined) bad('not a size in bytes (examples: 10000000, 10M, 512k)');
      break;
    case 'bool':
      if (!/^(yes|no|true|false|on|off|1|0)$/i.test(v)) bad('not yes or no');
      break;
    case 'path':
      if (v === '') bad('empty path');
      break;
    default:
      break;
  }
  if (key === 'delivery_mode' && !['background', 'interactive', 'queue'].includes(v)) {
    bad('must be background, interactive or queue');
  }
}

export function parseBytes(v: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()] ?? 1;
  return Number(m[1]) * mult;
}

export function parseBool(v: string): boolean {
  return /^(yes|true|on|1)$/i.test(v);
}

function build(file: string | undefined, raw: Record<Key, string>, overrides: Record<string, string>): Config {
  const dur = (k: Key) => parseDuration(raw[k]) as number;
  return {
    file,
    hostname: raw.hostname || os.hostname(),
    queueDir: raw.queue_dir,
    maildropDir: path.join(raw.queue_dir, 'maildrop'),
    mailSpoolDir: raw.mail_spool_dir,
    aliasFile: raw.alias_file,
    aliasDb: raw.alias_db,
    localHostNamesFile: raw.local_host_names_file,
    accessFile: raw.access_file,
    logFile: raw.log_file,
    pidFile: raw.pid_file,
    userDb: raw.user_db,
    defaultPrivs: raw.default_privs,
    forwardPath: raw.forward_path,
    queueWarnMs: dur('queue_warn'),
    queueReturnMs: dur('queue_return'),
    minBackoffMs: dur('min_backoff'),
    maxBackoffMs: dur('max_backoff'),
    queueLockStaleMs: dur('queue_lock_stale'),
    deliveryMode: raw.delivery_mode as Config['deliveryMode'],
    programTimeoutMs: dur('program_timeout'),
    maxHopCount: Number(raw.max_hop_count),
    maxMessageSize: parseBytes(raw.max_message_size) as number,
    raw,
    overrides,
  };
}

/** The environment a child mailtk process needs to reach the same config. */
export function childEnv(config: Config): NodeJS.ProcessEnv {
  return config.file ? { ...process.env, MAILTK_CONFIG: config.file } : { ...process.env };
}

/** The -O arguments that give a child mailtk process the same overrides. */
export function childArgs(config: Config): string[] {
  return Object.entries(config.overrides).flatMap(([k, v]) => ['-O', `${k}=${v}`]);
}

/**
 * The domains this host receives mail for: its hostname, localhost, and the
 * lines of local_host_names_file (sendmail's Cw class). Lower case.
 */
export function localDomains(config: Config): Set<string> {
  const set = new Set<string>([config.hostname.toLowerCase(), 'localhost', 'localhost.localdomain']);
  const short = config.hostname.split('.')[0];
  if (short) set.add(short.toLowerCase());
  let text = '';
  try {
    text = fs.readFileSync(config.localHostNamesFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new MailError('config', `cannot read: ${(e as Error).message}`, { file: config.localHostNamesFile });
    }
  }
  for (const line of text.split('\n')) {
    const name = line.replace(/#.*/, '').trim().toLowerCase();
    if (name) set.add(name);
  }
  return set;
}
