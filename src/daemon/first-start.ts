// What the daemon's first start makes when it is missing, so that a fresh
// machine works without editing anything: as root, a commented
// /etc/mail/mailtk.conf (Debian's /etc/aliases named in it when that is where
// the aliases are); for anyone, an aliases file with postmaster (RFC 5321
// 4.5.1 requires it), MAILER-DAEMON and abuse, compiled at once. Nothing that
// exists is touched: every file is created exclusively.

import fs from 'node:fs';
import path from 'node:path';
import { compileAliases } from '../aliases/index.ts';
import { type Config, loadConfig, SYSTEM_CONFIG } from '../config/index.ts';
import { configTemplate } from '../config/template.ts';
import { log } from '../log/index.ts';

const DEBIAN_ALIASES = '/etc/aliases';

export const DEFAULT_ALIASES = [
  '# The aliases: "name: member, member"; see aliases(5). Run newaliases after a change.',
  '# Written by the first start of mailtk. RFC 5321 4.5.1 requires postmaster.',
  'postmaster: root',
  'MAILER-DAEMON: postmaster',
  'abuse: root',
  '',
].join('\n');

/** Create `file` with `text` unless it exists; true when this call made it. */
function createOnce(file: string, text: string, mode: number): boolean {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    fs.writeFileSync(file, text, { flag: 'wx', mode });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** The commented config at `file`, naming Debian's aliases file when that exists and /etc/mail/aliases does not. */
export function writeFirstConfig(file: string, config: Config, debianAliases = DEBIAN_ALIASES): boolean {
  const useDebian = fs.existsSync(debianAliases) && !fs.existsSync(config.aliasFile);
  return createOnce(file, configTemplate(useDebian ? { alias_file: debianAliases } : {}), 0o644);
}

/** The aliases file with postmaster, compiled; true when this call made it. */
export async function writeFirstAliases(config: Config): Promise<boolean> {
  if (!createOnce(config.aliasFile, DEFAULT_ALIASES, 0o644)) return false;
  await compileAliases(config);
  return true;
}

/** Before a daemon starts: the files above, logged; the config as it is afterwards. */
export async function prepareFirstStart(config: Config, opts: { configFile?: string; overrides: Record<string, string> }): Promise<Config> {
  if (config.file === undefined && process.geteuid?.() === 0 && writeFirstConfig(SYSTEM_CONFIG, config)) {
    config = loadConfig({ file: opts.configFile, overrides: opts.overrides });
    log(config, '', `wrote ${SYSTEM_CONFIG}: every key at its default, commented out (see mailtk.conf(5))`);
  }
  try {
    if (await writeFirstAliases(config)) log(config, '', `wrote ${config.aliasFile} with postmaster, MAILER-DAEMON and abuse to root, and compiled ${config.aliasDb}`);
  } catch (e) {
    log(config, '', `cannot write a first aliases file ${config.aliasFile}: ${(e as Error).message}`);
  }
  return config;
}
