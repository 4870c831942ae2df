// The commented mailtk.conf a first start as root writes when there is none:
// every key of the table at its default, commented out, so an administrator
// sees what can be set and uncomments what to change. Generated from KEYS, so
// it cannot fall behind the code; mailtk.conf(5) says what each key means.

import { KEYS, type Key } from './keys.ts';

/** The file's text; `set` gives keys a value that is in effect (uncommented). */
export function configTemplate(set: Partial<Record<Key, string>> = {}): string {
  const lines = [
    '# mailtk configuration: "key = value" lines; # starts a comment.',
    '# Written by the first start of the mailtk daemon as root. Every key is',
    '# shown at its default, commented out: uncomment a line to change it, then',
    '# `kill -HUP` the daemon (or restart it). See mailtk.conf(5) for each key.',
    '',
  ];
  for (const key of Object.keys(KEYS) as Key[]) {
    const value = set[key];
    lines.push(value !== undefined ? `${key} = ${value}` : `#${key} = ${KEYS[key].root}`.trimEnd());
  }
  return lines.join('\n') + '\n';
}
