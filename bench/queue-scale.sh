#!/usr/bin/env bash
# Queue scale: how mailtk copes with a large queue of deferred mail, beside
# Postfix with the same number of deferred messages. COUNT deferred entries
# (default 100000), each to someone@dead.example, a domain routed to a
# loopback port where nothing listens (DEAD_PORT, default 9):
#  (a) `sendmail -q` (root, -C; the run itself is mail_owner's) over COUNT
#      entries none of which is due (next try in an hour): wall time, and how
#      many it tried anyway (notdue_tried);
#  (b) `sendmail -q` over COUNT entries all due: wall time; afterwards every
#      entry must still be queued (qf count) and tried once more (alldue_retried);
#  (c) mailtk's `mailq` (wall time, peak RSS) beside Postfix's `postqueue -p`
#      over COUNT messages in Postfix's deferred queue: wall times and ratio.
# mailtk's queue is filled directly by bench/fill-deferred.ts (no fsync; each
# control file's mtime is its next try, the queue's convention),
# Postfix's once per run with smtp-source (SMTP to 127.0.0.1:2525); the setup
# times are printed. Per-round lines, then medians of ROUNDS on the last line.
#
# Nothing leaves loopback: mailtk's config routes dead.example (transport_map)
# and every other remote domain (smart_host) to [127.0.0.1]:DEAD_PORT and its
# dns_servers is 127.0.0.1:DEAD_PORT; Postfix (test/peers/setup-postfix.sh:
# default_transport = error) gets, for the run only, transport_maps
# dead.example -> smtp:[127.0.0.1]:DEAD_PORT and a 12 h backoff (so that its
# queue manager does not retry the messages during the run); the trap deletes
# the bench's messages (by sender) and restores those three settings.
# Do not run it beside the test suite (test/postfix-interop.test.ts sets transport_maps
# too) or other benches that use the peer Postfix.
#
# Needs root. Usage:
#   COUNT=100000 ROUNDS=3 bash bench/queue-scale.sh
# Knobs: POSTFIX=0 (skip Postfix: mailq_postfix_s=NA), RUN_TIMEOUT=3600 (s, each
# sendmail -q, mailq and fill), PF_FILL_TIMEOUT (s, Postfix fill; default 600 + COUNT/20),
# PF_SESSIONS=20 (smtp-source sessions), DEAD_PORT=9, LAYOUT=entry (one qf file an entry,
# as enqueue writes it) or legacy (qf + df, the layout before, which the queue still reads).
set -euo pipefail
. "$(dirname "$0")/lib/conf.sh"
COUNT=${COUNT:-100000}; ROUNDS=${ROUNDS:-3}; DEAD_PORT=${DEAD_PORT:-9}; POSTFIX=${POSTFIX:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-3600}; PF_FILL_TIMEOUT=${PF_FILL_TIMEOUT:-$((600 + COUNT / 20))}
PF_SESSIONS=${PF_SESSIONS:-20}; LAYOUT=${LAYOUT:-entry}
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$here/test/peers}
[ "$(id -u)" = 0 ] || { echo "queue-scale bench: run as root (mail_owner runs, Postfix)" >&2; exit 77; }
[[ $COUNT =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ && $DEAD_PORT =~ ^[1-9][0-9]*$ ]] || { echo "COUNT, ROUNDS and DEAD_PORT must be positive integers" >&2; exit 64; }
if ss -Hltn "sport = :$DEAD_PORT" | grep -q .; then
  echo "queue-scale bench: something listens on port $DEAD_PORT; choose a dead one with DEAD_PORT" >&2; exit 1
fi
[ -f "$here/dist/sendmail.js" ] || (cd "$here" && npm run build --silent)
# bin/ runs dist/, the fill script src/: say when they may disagree (the queue's format is changing).
newer=$(find "$here/src" -name '*.ts' ! -name '*.test.ts' -newer "$here/dist/sendmail.js" | head -3 | tr '\n' ' ')
[ -z "$newer" ] || echo "queue-scale bench: warning: src/ changed since the last build (${newer}...); npm run build to bench it" >&2
build_stamp=$(stat -c %Y "$here/dist/sendmail.js")

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

work=$(mktemp -d /tmp/mailtk-bench-qscale.XXXXXX)
chmod 755 "$work"   # as root, the queue is mail_owner's, who must reach it
conf=$work/mailtk.conf
pf_map=/etc/postfix/mailtk-queue-scale-transport
pf_sender=queue-scale@dead.example
pf_keys=(transport_maps minimal_backoff_time maximal_backoff_time)
declare -A pf_saved=()
pf_changed=0

pf_delete_ours() { # the bench's messages only, by sender, from every queue
  postqueue -j 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("sender") == sys.argv[1]:
        print(m["queue_id"])' "$pf_sender" | postsuper -d - 2>&1 | grep -v ': removed$' || true
}
cleanup() {
  set +e
  if [ "$pf_changed" = 1 ]; then
    pf_delete_ours
    for k in "${pf_keys[@]}"; do
      if [ -n "${pf_saved[$k]}" ]; then postconf -e "${pf_saved[$k]}"; else postconf -X "$k"; fi
    done
    rm -f "$pf_map"
    postfix reload >/dev/null 2>&1
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- mailtk: a sandbox config; remote mail can only reach the dead port ----
{ bench_conf "$work"; cat <<CONF
dns_servers = 127.0.0.1:$DEAD_PORT
transport_map = $work/transport
smart_host = [127.0.0.1]:$DEAD_PORT
CONF
} > "$conf"
printf 'dead.example smtp:[127.0.0.1]:%s\n' "$DEAD_PORT" > "$work/transport"
getent passwd root > "$work/passwd"
printf 'postmaster: root\n' > "$work/aliases"
"$here/bin/newaliases" -C "$conf" >/dev/null
# A run over the empty queue: creates mail_owner if missing and gives it the queue (src/daemon/privs.ts).
"$here/bin/sendmail" -C "$conf" -q
owner=$(awk -F' *= *' '$1 == "mail_owner" {print $2}' "$conf"); owner=${owner:-mailtk}
id "$owner" >/dev/null || { echo "queue-scale bench: mail_owner $owner missing after a root run" >&2; exit 1; }

fill_mailtk() { # mode; prints seconds
  local t0; t0=$(now)
  rm -rf "$work/q"
  timeout -k 10 "$RUN_TIMEOUT" node --import tsx "$here/bench/fill-deferred.ts" "$conf" "$COUNT" "$1" "$LAYOUT" >/dev/null
  chown -R "$owner": "$work/q"   # as giveQueueTo leaves it: everything mail_owner's
  since "$t0"
}
qf_count() { find "$work/q" -maxdepth 1 -name 'qf*' ! -name '*.lock' | wc -l; }
# Entries tried since the fill: their attempt count (the last N record: a deferral appends one) is no longer 1.
tried_count() {
  find "$work/q" -maxdepth 1 -name 'qf*' ! -name '*.lock' -exec awk '
    /^N[0-9]+$/ { n[FILENAME] = substr($0, 2) + 0 }
    END { c = 0; for (f in n) if (n[f] != 1) c++; print c }' {} + | awk '{ s += $1 } END { print s + 0 }'
}
timeouts=0
run_q() { # prints seconds (RUN_TIMEOUT on a time-out)
  local t0 rc=0; t0=$(now)
  timeout -k 10 "$RUN_TIMEOUT" "$here/bin/sendmail" -C "$conf" -q || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "$RUN_TIMEOUT"; return 0; fi
  [ "$rc" = 0 ] || { echo "sendmail -q exited $rc" >&2; exit 1; }
  since "$t0"
}
mailq_mailtk() { # prints "seconds peak_mb"
  local t0; t0=$(now)
  timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%M' -o "$work/rss" "$here/bin/mailq" -C "$conf" >/dev/null
  echo "$(since "$t0") $(awk '{printf "%.1f", $1/1024}' "$work/rss")"
}
mailq_postfix() {
  local t0; t0=$(now)
  timeout -k 10 "$RUN_TIMEOUT" postqueue -p >/dev/null
  since "$t0"
}

# ---- Postfix: COUNT deferred messages, set up once ----
pf_setup_s=NA
if [ "$POSTFIX" = 1 ]; then
  command -v postconf >/dev/null || bash "$peers/setup-postfix.sh" >/dev/null
  postfix status >/dev/null 2>&1 || postfix start >/dev/null 2>&1
  case "$(postconf -h default_transport)" in error*) ;; *)
    echo "queue-scale bench: Postfix's default_transport is not error: run test/peers/setup-postfix.sh first" >&2; exit 1;;
  esac
  busy=$(find /var/spool/postfix/{incoming,active,deferred,hold} -type f | wc -l)
  [ "$busy" = 0 ] || { echo "queue-scale bench: Postfix's queue holds $busy messages; it must be empty" >&2; exit 1; }
  for k in "${pf_keys[@]}"; do pf_saved[$k]=$(postconf -n "$k"); done
  pf_changed=1
  t0=$(now)
  printf 'dead.example smtp:[127.0.0.1]:%s\n' "$DEAD_PORT" > "$pf_map"
  postconf -e "transport_maps = texthash:$pf_map" "minimal_backoff_time = 12h" "maximal_backoff_time = 12h"
  postfix reload >/dev/null 2>&1; sleep 1
  timeout -k 10 "$PF_FILL_TIMEOUT" /usr/sbin/smtp-source -s "$PF_SESSIONS" -m "$COUNT" -l 1200 -d \
    -f "$pf_sender" -t someone@dead.example -M localhost inet:127.0.0.1:2525 >/dev/null
  pf_inject_s=$(since "$t0")
  deadline=$(( $(date +%s) + PF_FILL_TIMEOUT ))
  until n=$(find /var/spool/postfix/deferred -type f | wc -l); [ "$n" -ge "$COUNT" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "queue-scale bench: Postfix deferred $n of $COUNT in ${PF_FILL_TIMEOUT}s" >&2; exit 1; }
    sleep 1
  done
  pf_setup_s=$(since "$t0")
  pf_total=$(postqueue -p | tail -1)
  echo "postfix setup: $COUNT deferred messages in ${pf_setup_s}s (smtp-source done after ${pf_inject_s}s; $pf_total)"
  case "$pf_total" in *" in $COUNT Request"*) ;; *) echo "queue-scale bench: postqueue -p says: $pf_total" >&2; exit 1;; esac
fi

qa=(); qb=(); ma=(); mp=(); mm=(); notdue_tried=(); alldue_retried=()
for r in $(seq "$ROUNDS"); do
  f1=$(fill_mailtk notdue)
  if [ "$r" = 1 ]; then
    # Into a file, not a pipe: mailtk's mailq loses what a full pipe has not taken when it exits.
    "$here/bin/mailq" -C "$conf" > "$work/mailq.out"; total=$(tail -1 "$work/mailq.out"); rm -f "$work/mailq.out"
    case "$total" in *"Total requests: $COUNT") ;; *) echo "queue-scale bench: mailq says: $total" >&2; exit 1;; esac
  fi
  read -r a m < <(mailq_mailtk); ma+=("$a"); mm+=("$m")
  if [ "$POSTFIX" = 1 ]; then p=$(mailq_postfix); else p=NA; fi; mp+=("$p")
  echo "round $r: mailq mailtk ${a}s (peak ${m} MB), postfix $p$([ "$p" = NA ] || echo s)"

  qa+=("$(run_q)")
  [ "${qa[-1]}" = "$RUN_TIMEOUT" ] && timeouts=$((timeouts + 1))
  n=$(qf_count); t=$(tried_count); notdue_tried+=("$t")
  [ "$n" = "$COUNT" ] || echo "round $r: WARNING: $n qf files after -q over not-due entries (expected $COUNT)" >&2
  echo "round $r: (a) sendmail -q, $COUNT not due: ${qa[-1]}s (fill ${f1}s); tried $t of them, $n still queued"

  f2=$(fill_mailtk due)
  : > "$work/maillog"
  qb+=("$(run_q)")
  [ "${qb[-1]}" = "$RUN_TIMEOUT" ] && timeouts=$((timeouts + 1))
  n=$(qf_count); t=$(tried_count); alldue_retried+=("$t")
  stat=$(grep -m1 -o 'stat=.*' "$work/maillog" || echo 'stat=?')
  echo "round $r: (b) sendmail -q, $COUNT all due: ${qb[-1]}s (fill ${f2}s); $n still queued, $t tried again ($stat)"
  if [ "$n" != "$COUNT" ]; then echo "queue-scale bench: $n qf files after the run, expected $COUNT still deferred" >&2; exit 1; fi
done

a=$(med "${qa[@]}"); b=$(med "${qb[@]}"); x=$(med "${ma[@]}"); m=$(med "${mm[@]}")
if [ "$POSTFIX" = 1 ]; then
  y=$(med "${mp[@]}"); ratio=$(awk -v a="$x" -v b="$y" 'BEGIN { printf "%.2f", a / b }')
else y=NA; ratio=NA; fi
[ "$(stat -c %Y "$here/dist/sendmail.js")" = "$build_stamp" ] || echo "queue-scale bench: warning: dist/ was rebuilt during the run; the rounds may have run different code" >&2
echo "queue-scale count=$COUNT rounds=$ROUNDS q_notdue_s=$a q_alldue_s=$b mailq_mailtk_s=$x mailq_postfix_s=$y mailq_ratio=$ratio mailq_mailtk_peak_mb=$m notdue_tried=$(med "${notdue_tried[@]}") alldue_retried=$(med "${alldue_retried[@]}") postfix_setup_s=$pf_setup_s timeouts=$timeouts"
