#!/usr/bin/env bash
# Debian packages the interop tests and benchmarks use, as "command:package"
# (the command that shows the package is there), plus Dovecot's IMAP and POP3
# servers for bench/mailbox-open.sh. Installed only when running as root and
# missing; otherwise the tests that need them skip with a reason.
set -euo pipefail
PKGS=(getent:libc-bin swaks:swaks openssl:openssl python3:python3 cdb:tinycdb)
# mail's tests and bench: s-nail (the peer it is read and written against),
# tmux (driving mail at a terminal), dotlockfile (the setgid-mail lock helper).
PKGS+=(s-nail:s-nail tmux:tmux dotlockfile:liblockfile-bin)
# The fail2ban filter shipped in packaging/fail2ban is checked with fail2ban-regex (test/auth-throttle.test.ts).
PKGS+=(fail2ban-regex:fail2ban)
# ManageSieve's client from Debian (test/sieve.test.ts uploads and activates a script with it).
PKGS+=(sieve-connect:sieve-connect)
# IMAP and POP3 clients of test/imap-clients.test.ts: mutt, and Perl's Mail::IMAPClient
# (a Perl module, not a command: "perl -MModule" is its check, written "perl:Module:package").
PKGS+=(mutt:mutt perl:Mail::IMAPClient:libmail-imapclient-perl)
[ "$(id -u)" = 0 ] || exit 0
need=()
for p in "${PKGS[@]}"; do
  case "$p" in
  perl:*) m="${p#perl:}"; perl -M"${m%:*}" -e1 >/dev/null 2>&1 || need+=("${m##*:}") ;;
  *) command -v "${p%%:*}" >/dev/null 2>&1 || need+=("${p#*:}") ;;
  esac
done
# Dovecot, the POP3/IMAP peer of bench/mailbox-open.sh, and the LMTP mail store of
# test/lmtp.test.ts: its programs are not on PATH.
[ -x /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -x /usr/lib/dovecot/pop3 ] || need+=(dovecot-pop3d)
[ -x /usr/lib/dovecot/lmtp ] || need+=(dovecot-lmtpd)
if [ ${#need[@]} -gt 0 ]; then
export DEBIAN_FRONTEND=noninteractive
# Installing a server must not start it (Dovecot would listen on every address):
# policy-rc.d says no to every service start during the install, as in Docker images.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
fi
trap 'if [ -n "$made_policy" ]; then rm -f "$policy"; fi' EXIT
# A fresh machine often runs unattended-upgrades: wait for apt's lock (at most
# 10 minutes, saying so) instead of failing at once.
apt_wait=(-o DPkg::Lock::Timeout=600)
if fuser /var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock >/dev/null 2>&1; then
  echo "install-deps: apt is busy (another apt or unattended-upgrades); waiting up to 10 minutes for its lock" >&2
fi
apt-get "${apt_wait[@]}" update -qq
apt-get "${apt_wait[@]}" install -y -qq "${need[@]}" >/dev/null
# The peers serve the tests only: never started at boot (Dovecot would hold ports 110 and 143;
# fail2ban, there for fail2ban-regex, would watch the logs).
if [ -d /run/systemd/system ]; then for u in dovecot fail2ban; do systemctl disable --now "$u" >/dev/null 2>&1 || true; done; fi
fi
ls /usr/lib/python3*/test/test_email/data/msg_01.txt >/dev/null 2>&1 || { apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "lib$(basename "$(readlink -f /usr/bin/python3)")-testsuite" >/dev/null; } 2>/dev/null || echo "install-deps: no Python email test data (libpython3.X-testsuite): imap-dovecot-diff uses test/corpus only" >&2

# Postfix, the SMTP peer of test/postfix-interop.test.ts and the benchmarks:
# installed and locked to 127.0.0.1:2525 with local delivery only and no DNS by
# the peers script in test/peers.
peers="$(cd "$(dirname "$0")" && pwd)/peers"
if [ -f "$peers/setup-postfix.sh" ]; then
  if ! ss -ltn 'sport = :2525' 2>/dev/null | grep -q LISTEN; then
    bash "$peers/setup-postfix.sh" >/dev/null 2>&1 || echo "install-deps: Postfix setup failed; its interop tests will skip" >&2
  fi
fi
