#!/usr/bin/env bash
# Local delivery: COUNT queued 1 KB messages to 10 users, delivered by one
# `sendmail -q`, messages per second; beside Postfix's local(8) delivering
# the same messages from its own queue, in the same run, rounds alternating
# (A B A B) because the machine is shared and noisy. Prints medians and the
# mailtk/Postfix ratio on its last line.
# Needs root and Postfix from test/peers/setup-postfix.sh (run it first,
# or let this script run it). Only local users and loopback are involved.
# Usage: COUNT=2000 ROUNDS=3 bash bench/local-delivery.sh
set -euo pipefail
COUNT=${COUNT:-2000}; ROUNDS=${ROUNDS:-3}; USERS=10
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$here/test/peers}
[ "$(id -u)" = 0 ] || { echo "local-delivery bench: run as root (Postfix's local delivery needs it)" >&2; exit 77; }
command -v postconf >/dev/null || bash "$peers/setup-postfix.sh" >/dev/null
postfix status >/dev/null 2>&1 || postfix start >/dev/null 2>&1
[ -f "$here/dist/sendmail.js" ] || (cd "$here" && npm run build --silent)

for i in $(seq 0 $((USERS-1))); do id "lbench$i" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "lbench$i"; done
work=$(mktemp -d /tmp/mailtk-bench-local.XXXXXX)
chmod 755 "$work"   # as root, mailtk's queue is mail_owner's and its spool is reached by each user
trap 'rm -rf "$work"; postconf -e "defer_transports =" >/dev/null; postfix reload >/dev/null 2>&1 || true' EXIT
body=$(python3 -c "print('Subject: local bench\n\n' + ('x'*71 + '\n')*13, end='')")

# ---- mailtk: a sandbox config whose users are the same lbench accounts ----
mkdir -p "$work/mt"
getent passwd $(seq -f 'lbench%g' 0 $((USERS-1))) root > "$work/mt/passwd"
cat > "$work/mt/mailtk.conf" <<CONF
hostname = bench.test
queue_dir = $work/mt/q
mail_spool_dir = $work/mt/mail
alias_file = $work/mt/aliases
alias_db = $work/mt/aliases.lmdb
log_file = $work/mt/maillog
user_db = $work/mt/passwd
delivery_mode = queue
CONF
printf 'postmaster: root\n' > "$work/mt/aliases"
"$here/bin/newaliases" -C "$work/mt/mailtk.conf" >/dev/null

fill_mailtk() {
  rm -rf "$work/mt/q" "$work/mt/mail"
  node --import tsx "$here/bench/fill-queue.ts" "$work/mt/mailtk.conf" "$COUNT" "$USERS" >/dev/null
}
run_mailtk() {
  local t0 t1
  t0=$(date +%s.%N)
  "$here/bin/sendmail" -C "$work/mt/mailtk.conf" -q
  t1=$(date +%s.%N)
  local n; n=$(cat "$work"/mt/mail/lbench[0-9] | grep -c '^From ' || true)
  [ "$n" = "$COUNT" ] || { echo "mailtk delivered $n of $COUNT" >&2; exit 1; }
  echo "$t0 $t1" | awk -v c="$COUNT" '{ printf "%.1f", c / ($2 - $1) }'
}

fill_postfix() {
  postsuper -d ALL >/dev/null 2>&1 || true
  for i in $(seq 0 $((USERS-1))); do : > "/var/spool/mail/lbench$i"; chown "lbench$i:mail" "/var/spool/mail/lbench$i"; done
  postconf -e "defer_transports = local" >/dev/null; postfix reload >/dev/null 2>&1
  python3 - "$COUNT" "$USERS" <<'PY'
import smtplib, sys
count, users = int(sys.argv[1]), int(sys.argv[2])
body = 'Subject: local bench\r\n\r\n' + ('x' * 71 + '\r\n') * 13
s = smtplib.SMTP('127.0.0.1', 2525)
for i in range(count):
    s.sendmail('sender@localhost', [f'lbench{i % users}@localhost'], body)
s.quit()
PY
  for _ in $(seq 600); do
    [ "$(find /var/spool/postfix/deferred /var/spool/postfix/active /var/spool/postfix/incoming -type f | wc -l)" -ge "$COUNT" ] && break; sleep 0.2
  done
}
run_postfix() {
  local t0 t1
  postconf -e "defer_transports =" >/dev/null
  t0=$(date +%s.%N)
  postfix reload >/dev/null 2>&1; postqueue -f
  for _ in $(seq 6000); do
    n=$(cat /var/spool/mail/lbench[0-9] | grep -c '^From ' || true)
    [ "$n" -ge "$COUNT" ] && break; sleep 0.02
  done
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk -v c="$COUNT" '{ printf "%.1f", c / ($2 - $1) }'
}

mt=(); pf=()
for r in $(seq "$ROUNDS"); do
  fill_mailtk; a=$(run_mailtk); mt+=("$a")
  fill_postfix; b=$(run_postfix); pf+=("$b")
  echo "round $r: mailtk ${a} msg/s, postfix ${b} msg/s"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m=$(med "${mt[@]}"); p=$(med "${pf[@]}")
echo "local-delivery count=$COUNT users=$USERS rounds=$ROUNDS mailtk_mps=$m postfix_mps=$p ratio=$(echo "$m $p" | awk '{printf "%.2f", $1/$2}')"
