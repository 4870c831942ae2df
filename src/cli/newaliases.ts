// newaliases (and sendmail -bi): rebuild the alias database and say what was
// done the way sendmail does, "/etc/mail/aliases: 36 aliases, longest 10
// bytes, 391 bytes total" on stdout, with warnings and file:line errors on
// stderr. Errors in the aliases file exit 78 (EX_CONFIG) and leave the old
// database in place. A spinner shows on stderr for large files at a terminal;
// ora is imported only then, since start-up time is most of a small rebuild.
// For the same reason node:v8 is imported only for a large file, to have V8
// compile the builder's loop at once (see compileNow).

import fs from 'node:fs';
import os from 'node:os';
import { AliasFileError, compileAliases, compileVirtualAliases } from '../aliases/index.ts';
import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { EX, MailError } from '../message/status.ts';
import { openSpinner } from './progress.ts';

export interface NewaliasesOptions {
  verbose: boolean;
  /** stderr is a terminal: progress may be shown. */
  tty: boolean;
}

/** Files at least this large get a spinner (about 35,000 aliases). */
const SPINNER_BYTES = 1_000_000;
/** Files at least this large have the builder's loop compiled at once (about 18,000 aliases; below, it does not pay). */
const COMPILE_NOW_BYTES = 500_000;

interface Progress {
  update(done: number): void;
  stop(): void;
}

export async function runNewaliases(config: Config, opts: NewaliasesOptions): Promise<number> {
  const file = realPath(config.aliasFile);
  if (opts.verbose) process.stdout.write(`newaliases: rebuilding ${config.aliasDb} from ${file}\n`);
  const size = fileSize(config.aliasFile);
  if (size >= COMPILE_NOW_BYTES) await compileNow();
  const progress = await startProgress(config, opts, size);
  const started = Date.now();
  try {
    const result = await compileAliases(config, { onProgress: (n) => progress?.update(n) });
    progress?.stop();
    for (const w of result.warnings) process.stderr.write(`${w}\n`);
    const summary = `${file}: ${result.count} aliases, longest ${result.longest} bytes, ${result.total} bytes total`;
    process.stdout.write(`${summary}\n`);
    if (opts.verbose) process.stdout.write(`newaliases: wrote ${config.aliasDb} in ${Date.now() - started} ms\n`);
    log(config, '', `alias database ${config.aliasDb} rebuilt by ${userName()}`);
    log(config, '', summary);
    return await compileVirtual(config);
  } catch (e) {
    progress?.stop();
    return reportFailure(config, e);
  }
}

/** The virtual domains' alias table (src/virtual), compiled beside itself: its errors, file:line, or its size. */
async function compileVirtual(config: Config): Promise<number> {
  const v = await compileVirtualAliases(config);
  for (const e of v.errors) process.stderr.write(`${e}\n`);
  if (v.count && !v.errors.length) process.stdout.write(`${v.file}: ${v.count} virtual aliases\n`);
  if (!v.errors.length) return EX.OK;
  log(config, '', `${v.errors.length} errors in ${v.file}`);
  return EX.CONFIG;
}

function reportFailure(config: Config, e: unknown): number {
  if (e instanceof AliasFileError) {
    process.stderr.write(`${e.message}\n`);
    process.stderr.write(`newaliases: ${e.errors.length} error${e.errors.length === 1 ? '' : 's'} in ${e.file}; ${config.aliasDb} not rebuilt\n`);
    log(config, '', `alias database ${config.aliasDb} not rebuilt: ${e.errors.length} errors in ${e.file}`);
    return e.exit;
  }
  if (e instanceof MailError) {
    process.stderr.write(`newaliases: ${e.message}\n`);
    log(config, '', `alias database ${config.aliasDb} not rebuilt: ${e.message}`);
    return e.exit;
  }
  throw e; // not ours to word: sendmail's main() names EACCES and the like
}

/**
 * A large file is one long loop in the builder (src/aliases/builder.ts), which
 * V8 optimises while it runs (on-stack replacement). By default it compiles
 * on a background thread while the loop goes on unoptimised, ten times slower,
 * for the 20 to 60 ms the compile takes on a busy machine. This process has
 * nothing else to do meanwhile, so it has V8 compile such loops on the spot.
 * Measured (medians of ten): 100,000 aliases built in 45 ms instead of 77,
 * 20,000 in 21 instead of 27; at 9,000 it no longer pays for loading node:v8.
 * A flag V8 reads when it decides, and nothing else in this short-lived
 * process depends on it.
 */
async function compileNow(): Promise<void> {
  const { default: v8 } = await import('node:v8');
  v8.setFlagsFromString('--no-concurrent-osr');
}

async function startProgress(config: Config, opts: NewaliasesOptions, size: number): Promise<Progress | undefined> {
  if (!opts.tty || size < SPINNER_BYTES) return undefined;
  const spinner = await openSpinner(`rebuilding ${config.aliasDb}`);
  if (!spinner) return undefined;
  return {
    update: (done: number) => spinner.say(`rebuilding ${config.aliasDb}: ${done} aliases`),
    stop: () => spinner.stop(),
  };
}

function realPath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}
