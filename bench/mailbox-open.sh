#!/usr/bin/env bash
# Opening a large INBOX (MESSAGES, 20,000 by default), mailtk beside Dovecot (Debian's, mbox
# format, passwd-file users) on the same mbox copy: POP3 STAT+LIST+UIDL and
# IMAP SELECT + FETCH 1:* (FLAGS ENVELOPE), first open (no index) and second
# open, alternating rounds (bench/mailbox-open.mjs drives both). Everything
# lives in a temporary directory; both servers listen on 127.0.0.1 only and
# are stopped at the end. Needs root (Dovecot's mail user is `nobody`).
# Settings: MESSAGES (20000), ROUNDS (5), BASE_PORT (24100), STALL_MS (120000: an answer awaited longer ends the run).
# Prints medians, ratios and peak memory (of the processes running as the
# user, which serve it, and of each server's whole tree); the summary is the
# last line.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-20000}
BASE=${BASE_PORT:-24100}
PEERS=${PEERS:-$(pwd)/test/peers}
[ "$(id -u)" = 0 ] || { echo "mailbox-open: run as root (Dovecot needs a mail user)" >&2; exit 1; }
command -v dovecot >/dev/null || bash test/install-deps.sh
[ -f dist/sendmail.js ] || npm run build --silent

T=$(mktemp -d /tmp/mailbox-open.XXXXXX)
chmod 755 "$T"
MT_PID= DC_PID=
tree() { local k; for k in $(pgrep -P "$1"); do echo "$k"; tree "$k"; done; }
cleanup() {
  local left
  left=$( [ -n "$MT_PID" ] && tree "$MT_PID" || true)
  [ -n "$MT_PID" ] && kill "$MT_PID" 2>/dev/null || true
  [ -n "$DC_PID" ] && kill "$DC_PID" 2>/dev/null || true
  # Both stop before their tree is removed (mailtk's pid lock lives in it).
  for _ in $(seq 150); do
    { [ -n "$MT_PID" ] && kill -0 "$MT_PID" 2>/dev/null; } || { [ -n "$DC_PID" ] && kill -0 "$DC_PID" 2>/dev/null; } || break
    sleep 0.1
  done
  # What outlived mailtk's master (its worker, still stopping) is stopped by its pid and waited for:
  # removing the tree under it is what made it fail with ECOMPROMISED (its pid lock gone).
  local mine=""
  for k in $left; do { tr '\0' ' ' < "/proc/$k/cmdline"; } 2>/dev/null | grep -qF "$T" && kill "$k" 2>/dev/null && mine="$mine $k"; done
  for _ in $(seq 150); do
    local alive=""
    for k in $mine; do kill -0 "$k" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  rm -rf "$T"
}
trap cleanup EXIT

python3 "$PEERS/gen-mbox.py" "$MESSAGES" "$T/source.mbox" >&2

# ---- mailtk: its own tree, user "bench" (uid 65534 as for Dovecot: root may not log in; home in $T).
M=$T/mailtk
mkdir -p "$M/etc" "$M/spool/mail" "$M/home/bench" "$M/log"
echo "bench:x:65534:65534:Bench:$M/home/bench:/bin/sh" > "$M/etc/users"
chown 65534:65534 "$M/home/bench"
chown root:mail "$M/spool/mail" && chmod 2775 "$M/spool/mail"
cat > "$M/etc/mailtk.conf" <<EOF
hostname = bench.test
queue_dir = $M/spool/mqueue
mail_spool_dir = $M/spool/mail
alias_file = $M/etc/aliases
alias_db = $M/etc/aliases.lmdb
log_file = $M/log/maillog
pid_file = $M/mailtk.pid
user_db = $M/etc/users
passwd_file = $M/etc/passwd
tls_cert_file = $M/etc/tls.crt
tls_key_file = $M/etc/tls.key
dns_servers = 127.0.0.1:9
smtp_listen = 127.0.0.1:$((BASE + 5))
pop3_listen = 127.0.0.1:$((BASE + 1))
imap_listen = 127.0.0.1:$((BASE + 2))
EOF
touch "$M/etc/aliases"
printf 'benchpw\n' | bin/mailpasswd -C "$M/etc/mailtk.conf" bench >/dev/null 2>&1
bin/sendmail -C "$M/etc/mailtk.conf" -bD &
MT_PID=$!

# ---- Dovecot: mbox INBOX in its own spool, user "bench" as nobody, loopback ports.
D=$T/dovecot
mkdir -p "$D/run" "$D/state" "$D/spool" "$D/home/bench/mail"
echo "bench:{PLAIN}benchpw:65534:65534::$D/home/bench::" > "$D/passwd"
cat > "$D/dovecot.conf" <<EOF
base_dir = $D/run
state_dir = $D/state
log_path = $D/log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = mbox:$D/home/bench/mail:INBOX=$D/spool/bench
pop3_uidl_format = %08Xu%08Xv
passdb {
  driver = passwd-file
  args = $D/passwd
}
userdb {
  driver = passwd-file
  args = $D/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $((BASE + 3))
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $((BASE + 4))
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
chown -R 65534:65534 "$D/home" "$D/spool"
chmod 1777 "$D/spool"
dovecot -F -c "$D/dovecot.conf" &
DC_PID=$!

for port in $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 4)); do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

cat > "$T/bench.json" <<EOF
{
  "source": "$T/source.mbox", "messages": $MESSAGES, "user": "bench", "password": "benchpw",
  "servers": {
    "mailtk": { "pid": $MT_PID, "pop3": $((BASE + 1)), "imap": $((BASE + 2)), "mbox": "$M/spool/mail/bench", "owner": [65534, $(getent group mail | cut -d: -f3)],
                "indexes": ["$M/home/bench/mail/.imap"] },
    "dovecot": { "pid": $DC_PID, "pop3": $((BASE + 4)), "imap": $((BASE + 3)), "mbox": "$D/spool/bench", "owner": [65534, 65534],
                 "indexes": ["$D/home/bench/mail/.imap", "$D/home/bench/mail/.subscriptions"] }
  }
}
EOF
node bench/mailbox-open.mjs "$T/bench.json"
# The run's status is the measurement's, not this test's (a bare `[ ] &&` made every run exit 1).
if [ -n "${KEEP:-}" ]; then cp -r "$T" /tmp/mailbox-open.kept; fi
