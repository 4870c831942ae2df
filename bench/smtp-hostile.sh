#!/usr/bin/env bash
# Issue 13: the accept benchmark's 20 sessions x 1 KB case (bench/smtp-accept.sh,
# Postfix's smtp-source through test/peers/smtp-bench.sh, each message durable
# before its 250) against mailtk's daemon, alone and while 1,000 hostile
# sockets from 200 other loopback addresses (127.1.k.1) are held open on the
# same listener (bench/smtp-hostile.mjs). Rounds alternate (quiet, hostile).
# The legitimate sender, 127.0.0.1, is the site's own (relay_networks =
# 127.0.0.1/32, so client_limit_exceptions spares it the per-client limits);
# the hostile addresses are not. smtp_max_clients stays at its default (100).
# Prints per-round figures, then one line: medians, their ratio (target 0.8
# at least) and the peak memory (VmHWM) of the daemon's master and of its
# SMTP worker (target under 200 MB).
# Loopback only. Needs root (the daemon as administrators start it) and
# smtp-source (Debian's postfix package).
# Usage: COUNT=2000 ROUNDS=3 HOSTILE=1000 ADDRESSES=200 RECONNECT_MS=0 \
#   [EXTRA_CONF='smtp_client_connection_rate_limit = 30'] bash bench/smtp-hostile.sh
set -euo pipefail
. "$(dirname "$0")/lib/conf.sh"
COUNT=${COUNT:-2000}; ROUNDS=${ROUNDS:-3}; PORT=${PORT:-2527}
HOSTILE=${HOSTILE:-1000}; ADDRESSES=${ADDRESSES:-200}; RECONNECT_MS=${RECONNECT_MS:-0}
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$here/test/peers}
[ "$(id -u)" = 0 ] || { echo "smtp-hostile bench: run as root" >&2; exit 77; }
[ -x /usr/sbin/smtp-source ] || { echo "smtp-hostile bench: smtp-source not found (apt-get install postfix)" >&2; exit 77; }
getent passwd bench >/dev/null || useradd -m bench
[ -f "$here/dist/sendmail.js" ] || (cd "$here" && npm run build --silent)

work=$(mktemp -d /tmp/mailtk-bench-hostile.XXXXXX)
chmod 755 "$work"
getent passwd bench root > "$work/passwd"
{ bench_conf "$work"; cat <<CONF
smtp_listen = 127.0.0.1:$PORT
pop3_listen =
imap_listen =
dns_servers = 127.0.0.1:9
relay_networks = 127.0.0.1/32
${EXTRA_CONF:-}
CONF
} > "$work/mailtk.conf"
printf 'postmaster: root\n' > "$work/aliases"
"$here/bin/newaliases" -C "$work/mailtk.conf" >/dev/null
"$here/bin/sendmail" -C "$work/mailtk.conf" -bd -q20m
hpid=""
cleanup() {
  set +e
  [ -n "$hpid" ] && kill "$hpid" 2>/dev/null
  local d; d=$(cat "$work/mailtk.pid" 2>/dev/null || true)
  if [ -n "$d" ]; then
    kill "$d" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$d" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$d" 2>/dev/null && echo "smtp-hostile: the daemon ($d) is still running 15 s after SIGTERM" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do ss -ltn "sport = :$PORT" | grep -q LISTEN && [ -s "$work/mailtk.pid" ] && break; sleep 0.1; done
dpid=$(cat "$work/mailtk.pid")

run_case() { # label
  LABEL=$1 PORT=$PORT MBOX="$work/mail/bench" SESSIONS=20 SIZE=1024 COUNT=$COUNT RUNS=1 RCPT=bench@localhost \
    bash "$peers/smtp-bench.sh" 2>"$work/bench.err" > "$work/bench.out" || { echo "smtp-hostile: $1 run failed: $(cat "$work/bench.err")" >&2; exit 1; }
  tail -1 "$work/bench.out" | sed -n 's/.*accept_mps=\([0-9.]*\).*/\1/p'
}
start_hostile() {
  local out="$work/hostile.out"
  : > "$out"
  node "$here/bench/smtp-hostile.mjs" "$PORT" "$HOSTILE" "$ADDRESSES" "$RECONNECT_MS" > "$out" &
  hpid=$!
  for _ in $(seq 600); do grep -q '^ready' "$out" && break; sleep 0.1; done
  sleep 2 # the daemon takes in what the kernel queued for it
}
stop_hostile() { # in this shell, not a $(...) one: it waits for its own child
  kill "$hpid"; wait "$hpid" 2>/dev/null || true; hpid=""
  hstats=$(sed -n 's/^hostile //p' "$work/hostile.out")
}
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# The worker: the daemon's child that holds the listening socket's sessions (the one with most sockets open).
worker() { local best="" n=0; for p in $(pgrep -P "$dpid"); do local k; k=$(ls "/proc/$p/fd" 2>/dev/null | wc -l); [ "$k" -gt "$n" ] && { n=$k; best=$p; }; done; echo "$best"; }

quiet=(); hostile=(); wpeak=0
for r in $(seq "$ROUNDS"); do
  quiet+=("$(run_case quiet)")
  start_hostile
  held=$(ls "/proc/$(worker)/fd" | wc -l)
  hostile+=("$(run_case hostile)")
  w=$(worker); k=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$w/status"); [ "$k" -gt "$wpeak" ] && wpeak=$k
  stop_hostile
  echo "round $r: quiet ${quiet[-1]} msg/s; with $HOSTILE hostile sockets ${hostile[-1]} msg/s (worker descriptors with them held: $held; $hstats)"
done
q=$(med "${quiet[@]}"); h=$(med "${hostile[@]}")
mpeak=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$dpid/status")
refused=$(grep -c 'rejecting connection' "$work/maillog" || true)
displaced=$(grep -c 'closing idle session' "$work/maillog" || true)
echo "smtp-hostile count=$COUNT rounds=$ROUNDS hostile=$HOSTILE addresses=$ADDRESSES reconnect_ms=$RECONNECT_MS${EXTRA_CONF:+ conf='$EXTRA_CONF'} quiet_mps=$q hostile_mps=$h ratio=$(echo "$h $q" | awk '{printf "%.2f", $1/$2}') master_peak_mb=$mpeak worker_peak_mb=$wpeak refused=$refused displaced=$displaced"
