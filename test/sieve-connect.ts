// Debian's sieve-connect, the ManageSieve client the Sieve tests drive:
// whether it is installed, and one run of it against a loopback port with a
// PLAIN login whose password goes in on stdin.

import { type SpawnSyncReturns, spawnSync } from 'node:child_process';

export const SIEVE_CONNECT_MISSING = spawnSync('sh', ['-c', 'command -v sieve-connect']).status !== 0 ? 'sieve-connect is not installed (test/install-deps.sh installs it as root)' : '';

export function sieveConnect(port: number, user: string, password: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync('sieve-connect', ['-s', '127.0.0.1', '-p', String(port), '-u', user, '--passwordfd', '0', '--notlsverify', '--authmech', 'PLAIN', ...args], {
    input: `${password}\n`,
    encoding: 'utf8',
    timeout: 30_000,
  });
}
