#!/usr/bin/env bash
# SMTP accept rate, mailtk's daemon beside Postfix, driven the same way by
# Postfix's smtp-source (test/peers/smtp-bench.sh): 20 sessions x 1 KB,
# 20 sessions x 100 KB and 1 session x 1 KB, each message durable before its
# 250, rounds alternating (A B A B). Prints per-case medians, the
# mailtk/Postfix ratios and the daemon's peak memory (VmHWM) on the last lines.
# Loopback only; recipients are the local user "bench" on both sides.
# Usage: COUNT=5000 ROUNDS=3 [CASES="20:1024 20:102400 1:1024"] bash bench/smtp-accept.sh
set -euo pipefail
. "$(dirname "$0")/lib/conf.sh"
COUNT=${COUNT:-5000}; ROUNDS=${ROUNDS:-3}; PORT=${PORT:-2526}
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$here/test/peers}
[ "$(id -u)" = 0 ] || { echo "smtp-accept bench: run as root (Postfix)" >&2; exit 77; }
command -v postconf >/dev/null || bash "$peers/setup-postfix.sh" >/dev/null
postfix status >/dev/null 2>&1 || postfix start >/dev/null 2>&1
[ -f "$here/dist/sendmail.js" ] || (cd "$here" && npm run build --silent)

work=$(mktemp -d /tmp/mailtk-bench-smtp.XXXXXX)
chmod 755 "$work"   # as root, mailtk's queue is mail_owner's and its spool is reached by each user
getent passwd bench root > "$work/passwd"
{ bench_conf "$work"; cat <<CONF
smtp_listen = 127.0.0.1:$PORT
pop3_listen =
imap_listen =
dns_servers = 127.0.0.1:9
CONF
} > "$work/mailtk.conf"
printf 'postmaster: root\n' > "$work/aliases"
"$here/bin/newaliases" -C "$work/mailtk.conf" >/dev/null
# Started as administrators start it: -bd detaches, and the pid file names the daemon.
"$here/bin/sendmail" -C "$work/mailtk.conf" -bd -q20m
trap 'kill $(cat "$work/mailtk.pid" 2>/dev/null) 2>/dev/null; sleep 1; rm -rf "$work"' EXIT
for _ in $(seq 100); do ss -ltn "sport = :$PORT" | grep -q LISTEN && [ -s "$work/mailtk.pid" ] && break; sleep 0.1; done
dpid=$(cat "$work/mailtk.pid")

run_case() { # label port mbox sessions size
  LABEL=$1 PORT=$2 MBOX=$3 SESSIONS=$4 SIZE=$5 COUNT=$COUNT RUNS=1 RCPT=bench@localhost \
    bash "$peers/smtp-bench.sh" 2>/dev/null | tail -1 | sed -n 's/.*accept_mps=\([0-9.]*\).*/\1/p'
}
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
summary=""
for c in ${CASES:-20:1024 20:102400 1:1024}; do
  s=${c%%:*}; z=${c##*:}; mt=(); pf=()
  for r in $(seq "$ROUNDS"); do
    mt+=("$(run_case mailtk "$PORT" "$work/mail/bench" "$s" "$z")")
    pf+=("$(run_case postfix 2525 /var/spool/mail/bench "$s" "$z")")
    echo "sessions=$s size=$z round $r: mailtk ${mt[-1]} msg/s, postfix ${pf[-1]} msg/s"
  done
  m=$(med "${mt[@]}"); p=$(med "${pf[@]}")
  summary+=" s${s}/$((z/1024))k: mailtk=$m postfix=$p ratio=$(echo "$m $p" | awk '{printf "%.2f", $1/$2}')"
done
hwm=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$dpid/status")
echo "smtp-accept count=$COUNT rounds=$ROUNDS$summary daemon_peak_mb=$hwm"
