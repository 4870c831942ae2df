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
  alias_db: { kind: 'path', root: '/etc/mail/aliases.cdb', user: '$D/etc/aliases.cdb' },
  local_host_names_file: { kind: 'path', root: '/etc/mail/local-host-names', user: '$D/etc/local-host-names' },
  access_file: { kind: 'path', root: '/etc/mail/access', user: '$D/etc/access' },
  log_file: { kind: 'path', root: '/var/log/maillog', user: '$D/log/maillog' },
  pid_file: { kind: 'path', root: '/run/mailtk.pid', user: '$D/run/mailtk.pid' },
  user_db: same('string', 'system'), // 'system' = getent passwd; else a passwd(5)-format file
  default_privs: same('string', 'nobody'),
  mail_owner: same('string', 'mailtk'), // the account the daemon's workers and queue runs use when started as root
  forward_path: same('string', '$HOME/.forward'),
  queue_warn: same('duration', '4h'),
  queue_return: same('duration', '5d'),
  min_backoff: same('duration', '5m'),
  max_backoff: same('duration', '1h'),
  delivery_mode: same('string', 'background'), // background | interactive | queue
  program_timeout: same('duration', '1h'),
  max_hop_count: same('count', '25'),
  max_message_size: same('bytes', '50000000'),
  // The SMTP listeners (src/server). Listen lists are "addr:port", IPv6 as "[::1]:port".
  smtp_listen: { kind: 'list', root: '0.0.0.0:25, [::]:25', user: '127.0.0.1:1025' },
  submission_listen: same('list', ''), // '' = no submission listener; "0.0.0.0:587" for one
  relay_networks: same('list', '127.0.0.0/8, ::1/128'),
  passwd_file: { kind: 'path', root: '/etc/mail/passwd', user: '$D/etc/passwd' },
  tls_cert_file: { kind: 'path', root: '/etc/mail/tls/mailtk.crt', user: '$D/etc/tls/mailtk.crt' },
  tls_key_file: { kind: 'path', root: '/etc/mail/tls/mailtk.key', user: '$D/etc/tls/mailtk.key' },
  smtp_vrfy: same('bool', 'no'),
  smtp_expn: same('bool', 'no'),
  max_recipients: same('count', '100'), // RFC 5321 4.5.3.1.8: at least 100
  smtp_timeout: same('duration', '5m'), // RFC 5321 4.5.3.2.7: the server waits at least 5 minutes
  smtp_stress_timeout: same('duration', '10s'), // the idle limit once the listener is 3/4 full
  smtp_max_errors: same('count', '20'),
  smtp_max_clients: same('count', '100'),
  smtp_max_clients_per_ip: same('count', '50'), // Postfix's smtpd_client_connection_count_limit
  // Connection control (src/server/conn-control.ts, anvil.ts): subnets, stress, steps, rates.
  smtp_max_clients_per_subnet: same('count', '50'),
  client_ipv4_prefix_length: same('count', '24'), // Postfix's smtpd_client_ipv4_prefix_length (but /24)
  client_ipv6_prefix_length: same('count', '64'),
  client_limit_exceptions: same('list', '$relay_networks'), // Postfix's smtpd_client_event_limit_exceptions
  smtpd_helo_timeout: same('duration', ''), // '' = smtp_timeout; after the greeting, until HELO/EHLO
  smtpd_mail_timeout: same('duration', ''), // until MAIL (after HELO, between transactions)
  smtpd_rcpt_timeout: same('duration', ''), // until the next RCPT or DATA, after MAIL
  smtpd_data_block_timeout: same('duration', ''), // between lines of the message (sendmail's Timeout.datablock)
  smtpd_data_timeout: same('duration', ''), // '' = none; the whole message, from 354 to its final "."
  smtp_client_connection_rate_limit: same('count', '0'), // per client_rate_time_unit; 0 = none (anvil)
  smtp_client_message_rate_limit: same('count', '0'),
  smtp_client_recipient_rate_limit: same('count', '0'),
  client_rate_time_unit: same('duration', '1m'), // Postfix's anvil_rate_time_unit
  // Remote delivery (src/deliver/remote.ts); timeouts and their defaults are Postfix's smtp_*_timeout.
  transport_map: { kind: 'path', root: '/etc/mail/mailertable', user: '$D/etc/mailertable' },
  smart_host: same('string', ''), // '' = none; "[host]:port" or "host"
  dns_servers: same('list', ''), // '' = the system's resolvers; else "address:port" list
  dns_timeout: same('duration', '10s'),
  remote_concurrency: same('count', '20'),
  smtp_tls_security_level: same('string', 'may'), // none | may | encrypt | verify
  smtp_connect_timeout: same('duration', '30s'),
  smtp_helo_timeout: same('duration', '5m'),
  smtp_starttls_timeout: same('duration', '5m'),
  smtp_mail_timeout: same('duration', '5m'),
  smtp_rcpt_timeout: same('duration', '5m'),
  smtp_data_init_timeout: same('duration', '2m'),
  smtp_data_xfer_timeout: same('duration', '3m'),
  smtp_data_done_timeout: same('duration', '10m'),
  smtp_quit_timeout: same('duration', '5m'),
  // Mailbox deliveries handed to a mail store over LMTP (src/deliver/lmtp.ts); the smtp_*_timeout keys apply.
  mailbox_transport: same('string', ''), // '' = the local mbox; "lmtp:[host]:port" or "lmtp:unix:/path"
  lmtp_recipient: same('string', 'full'), // full = RCPT TO:<user@hostname>; local = RCPT TO:<user>
  // The mailbox listeners (src/server/pop3-*, imap-*): POP3 and IMAP over the spool and ~/mail.
  pop3_listen: { kind: 'list', root: '0.0.0.0:110', user: '127.0.0.1:1110' },
  imap_listen: { kind: 'list', root: '0.0.0.0:143', user: '127.0.0.1:1143' },
  pop3s_listen: same('list', ''), // '' = none; "0.0.0.0:995" for POP3 over implicit TLS
  imaps_listen: same('list', ''), // '' = none; "0.0.0.0:993" for IMAP over implicit TLS
  apop_secrets_file: { kind: 'path', root: '/etc/mail/apop-secrets', user: '$D/etc/apop-secrets' },
  pop3_timeout: same('duration', '10m'), // RFC 1939 3: the autologout timer is at least 10 minutes
  imap_timeout: same('duration', '30m'), // RFC 3501 5.4: at least 30 minutes
  mailbox_max_clients: same('count', '200'),
  mailbox_max_clients_per_ip: same('count', '20'),
  mailbox_max_clients_per_subnet: same('count', '100'),
  mailbox_login_timeout: same('duration', '1m'), // POP3/IMAP before login (Dovecot's is 1m too)
  mailbox_stress_timeout: same('duration', '10s'), // before login, once 3/4 of mailbox_max_clients are in use
  mailbox_login_tls: same('bool', 'no'), // yes = no plaintext passwords before STARTTLS/STLS (loopback excepted)
  imap_folder_dir: same('string', '$HOME/mail'),
  mailbox_index_dir: same('string', '$HOME/mail/.imap'),
  sieve_script: same('string', '$HOME/.sieve'), // the user's active Sieve script, run at local delivery; '' = no filtering
  managesieve_listen: same('list', ''), // '' = none; "0.0.0.0:4190" for ManageSieve (RFC 5804)
  // Login throttling, shared by POP3, IMAP and SMTP AUTH (src/server/auth-throttle.ts).
  auth_failure_delay: same('duration', '1s'), // the first failure's delay (Dovecot's auth_failure_delay); doubles with each
  auth_failure_delay_max: same('duration', '15s'),
  auth_client_failures: same('count', '10'), // failures from one address before it is blocked
  auth_account_failures: same('count', '30'), // failures for one account before the addresses that failed on it are blocked
  auth_block_time: same('duration', '10m'), // how long failures are remembered and blocks last
  // Virtual domains and quotas (src/virtual): plain text files that `mailtk domain|user|alias|quota` edit.
  virtual_domains_file: { kind: 'path', root: '/etc/mail/virtual-domains', user: '$D/etc/virtual-domains' },
  virtual_users_file: { kind: 'path', root: '/etc/mail/virtual-users', user: '$D/etc/virtual-users' },
  virtual_alias_file: { kind: 'path', root: '/etc/mail/virtusertable', user: '$D/etc/virtusertable' },
  quota_file: { kind: 'path', root: '/etc/mail/quotas', user: '$D/etc/quotas' },
  quota_exceeded: same('string', 'defer'), // defer (4.2.2) | bounce (5.2.2)
  quota_warn_percent: same('count', '90'), // one warning each time a mailbox's usage crosses it; 0 = none
  domain_admins_file: { kind: 'path', root: '/etc/mail/domain-admins', user: '$D/etc/domain-admins' }, // "user@domain DOMAIN..." lines: who may change which domain (mailtk admin)
  welcome_message_file: { kind: 'path', root: '/etc/mail/welcome-message', user: '$D/etc/welcome-message' }, // sent to each user mailtk user add creates, when the file exists
  // DNS block lists (src/server/dnsbl.ts), asked through dns_servers; refusals come at RCPT.
  dnsbl_zones: same('list', ''), // client address lists, e.g. "zen.spamhaus.org"
  rhsbl_zones: same('list', ''), // sender domain lists, e.g. "dbl.spamhaus.org"
  // Mailing lists (src/lists): a directory per list, owned by mail_owner.
  list_dir: { kind: 'path', root: '/var/spool/mailtk-lists', user: '$D/spool/lists' },
  list_bounce_limit: same('count', '3'), // bounces after which a member is disabled and the owners told
  list_bounce_stale_after: same('duration', '7d'), // a member's bounce count starts again after this long without a bounce (Mailman's bounce_info_stale_after)
  list_pending_expire: same('duration', '3d'), // an unconfirmed subscribe/unsubscribe request is dropped after this long
  list_held_expire: same('duration', '14d'), // a held post nobody approved is discarded after this long, and its poster told
} as const satisfies Record<string, KeySpec>;

export type Key = keyof typeof KEYS;
