// The table of mailtk.conf keys: name, kind, and the default as root (the
// system layout under /etc/mail and /var/spool) and for an ordinary user with
// no system config (everything under ./mailtk-data, so the quick start works
// unprivileged). Every key here is documented in man/mailtk.conf.5; a test
// checks that the two agree.

export type Kind = 'path' | 'string' | 'duration' | 'count' | 'bytes' | 'list' | 'bool' | 'mode';

export interface KeySpec {
  kind: Kind;
  root: string;
  user: string; // default for a non-root user with no system config; $D = the data dir
}

const same = (kind: Kind, v: string): KeySpec => ({ kind, root: v, user: v });

export const KEYS = {
  hostname: same('string', ''), // '' = the machine's name (os.hostname())
  queue_dir: { kind: 'path', root: '/var/spool/mqueue', user: '$D/spool/mqueue' },
  mail_spool_dir: { kind: 'path', root: '/var/spool/mail', user: '$D/spool/mail' },
  alias_file: { kind: 'path', root: '/etc/mail/aliases', user: '$D/etc/aliases' },
  alias_db: { kind: 'path', root: '/etc/mail/aliases.lmdb', user: '$D/etc/aliases.lmdb' },
  local_host_names_file: { kind: 'path', root: '/etc/mail/local-host-names', user: '$D/etc/local-host-names' },
  access_file: { kind: 'path', root: '/etc/mail/access', user: '$D/etc/access' },
  log_file: { kind: 'path', root: '/var/log/maillog', user: '$D/log/maillog' },
  pid_file: { kind: 'path', root: '/run/mailtk.pid', user: '$D/run/mailtk.pid' },
  user_db: same('string', 'system'), // 'system' = getent passwd; else a passwd(5)-format file
  default_privs: same('string', 'nobody'),
  forward_path: same('string', '$HOME/.forward'),
  queue_warn: same('duration', '4h'),
  queue_return: same('duration', '5d'),
  min_backoff: same('duration', '5m'),
  max_backoff: same('duration', '1h'),
  queue_lock_stale: same('duration', '30s'),
  delivery_mode: same('string', 'background'), // background | interactive | queue
  program_timeout: same('duration', '1h'),
  max_hop_count: same('count', '25'),
  max_message_size: same('bytes', '50000000'),
} as const satisfies Record<string, KeySpec>;

export type Key = keyof typeof KEYS;
