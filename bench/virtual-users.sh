#!/usr/bin/env bash
# Virtual users at scale (issue 14): 100,000 virtual users in 10,000 domains
# (written straight into the tables, as a migration would; passwords are not
# needed for what is measured), then
#   1. `mailtk user list --json` (and one domain's list): median of RUNS
#      runs, wall and CPU (user+sys) seconds, target at most 1 s, beside
#      `mailtk --help` (Node's start-up and the command's loading, what any
#      listing costs at least) in the same rounds: on a loaded machine the
#      ratio to it says more than the seconds;
#   2. the SMTP accept rate to a virtual user beside the same run to a Unix
#      user, through the daemon, driven by Postfix's smtp-source as
#      bench/smtp-accept.sh drives it (test/peers/smtp-bench.sh, each message
#      durable before its 250 and delivered into its mbox before the round
#      ends), rounds alternating (V U V U ...), medians and the ratio, target
#      within 10%.
# smtp-bench.sh sends only to local-looking domains, so the measured virtual
# user is u0@vm, in the virtual domain "vm", one of the 10,000.
# Loopback only. As root the daemon runs as in production (master, workers
# as mail_owner); the Unix user is "bench" (test/peers/setup-postfix.sh).
# Usage: [USERS=100000 DOMAINS=10000 COUNT=2000 ROUNDS=3 RUNS=5 PORT=2527] bash bench/virtual-users.sh
set -euo pipefail
. "$(dirname "$0")/lib/conf.sh"
USERS=${USERS:-100000}; DOMAINS=${DOMAINS:-10000}; COUNT=${COUNT:-2000}; ROUNDS=${ROUNDS:-3}; RUNS=${RUNS:-5}; PORT=${PORT:-2527}
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$here/test/peers}
[ -x /usr/sbin/smtp-source ] || { echo "virtual-users bench: smtp-source missing (bash $peers/setup-postfix.sh as root installs it)" >&2; exit 77; }
getent passwd bench >/dev/null || { echo "virtual-users bench: no Unix user 'bench' (bash $peers/setup-postfix.sh as root makes it)" >&2; exit 77; }
[ -f "$here/dist/mailtk.js" ] || (cd "$here" && npm run build --silent)

work=$(mktemp -d /tmp/mailtk-bench-virtual.XXXXXX)
chmod 755 "$work"
# A copy of the build, so that a rebuild in the checkout meanwhile cannot pull chunks from under the run.
mkdir "$work/code" && cp -r "$here/bin" "$here/dist" "$here/package.json" "$work/code/" && chmod -R a+rX "$work/code"
bin=$work/code/bin
getent passwd bench root > "$work/passwd"
{ bench_conf "$work"; cat <<CONF
virtual_domains_file = $work/virtual-domains
virtual_users_file = $work/virtual-users
virtual_alias_file = $work/virtusertable
quota_file = $work/quotas
domain_admins_file = $work/domain-admins
smtp_listen = 127.0.0.1:$PORT
pop3_listen =
imap_listen =
dns_servers = 127.0.0.1:9
CONF
} > "$work/mailtk.conf"
# The spool as the daemon makes it (Debian's /var/mail: 2775 root:mail), before mailtk domain add makes virtual/ in it.
if [ "$(id -u)" = 0 ]; then install -d -m 2775 -o root -g mail "$work/mail"; else mkdir -p "$work/mail"; fi
printf 'postmaster: root\n' > "$work/aliases"
# The tables: "vm" and d1.test ... d(DOMAINS-1).test, USERS/DOMAINS users each; a catch-all and a
# domain quota in every tenth domain, so that the alias table and the quotas are not empty either.
per=$((USERS / DOMAINS))
awk -v n="$DOMAINS" 'BEGIN { print "vm"; for (d = 1; d < n; d++) print "d" d ".test" }' > "$work/virtual-domains"
awk -v per="$per" '{ for (u = 0; u < per; u++) print "u" u "@" $1 }' "$work/virtual-domains" > "$work/virtual-users"
awk 'NR % 10 == 0 { print "@" $1 "\tu0@" $1 }' "$work/virtual-domains" > "$work/virtusertable"
awk 'NR % 10 == 0 { print "@" $1 "\t100M" }' "$work/virtual-domains" > "$work/quotas"
"$bin/newaliases" -C "$work/mailtk.conf" >/dev/null
"$bin/mailtk" -C "$work/mailtk.conf" domain add vm >/dev/null   # makes vm's mailbox directory, owned by the account that delivers
echo "tables: $(wc -l < "$work/virtual-domains") domains, $(wc -l < "$work/virtual-users") users, $(wc -l < "$work/virtusertable") aliases"

med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# 1. The listings, and mailtk --help beside them: wall and CPU seconds of each.
timed() { # out-file command...: prints "wall cpu"
  local out=$1; shift
  /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" > "$out"
  awk '{printf "%s %.2f\n", $1, $2 + $3}' "$work/time"
}
aw=(); ac=(); ow=(); oc=(); hw=(); hc=()
for r in $(seq "$RUNS"); do
  read -r w c < <(timed "$work/list.json" "$bin/mailtk" -C "$work/mailtk.conf" user list --json); aw+=("$w"); ac+=("$c")
  read -r w c < <(timed /dev/null "$bin/mailtk" -C "$work/mailtk.conf" user list d5.test); ow+=("$w"); oc+=("$c")
  read -r w c < <(timed /dev/null "$bin/mailtk" -C "$work/mailtk.conf" --help); hw+=("$w"); hc+=("$c")
  echo "listing round $r: all --json ${aw[-1]} s (cpu ${ac[-1]}), one domain ${ow[-1]} s (cpu ${oc[-1]}), --help ${hw[-1]} s (cpu ${hc[-1]})"
done
rows=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).length)' "$work/list.json")
[ "$rows" = "$(wc -l < "$work/virtual-users")" ] || { echo "virtual-users bench: the listing has $rows rows" >&2; exit 1; }

# 2. The accept rate, virtual beside Unix, through the daemon.
"$bin/sendmail" -C "$work/mailtk.conf" -bd -q20m
trap 'kill $(cat "$work/mailtk.pid" 2>/dev/null) 2>/dev/null; sleep 1; rm -rf "$work"' EXIT
for _ in $(seq 100); do ss -ltn "sport = :$PORT" | grep -q LISTEN && [ -s "$work/mailtk.pid" ] && break; sleep 0.1; done
dpid=$(cat "$work/mailtk.pid")
run_case() { # label rcpt mbox
  LABEL=$1 PORT=$PORT RCPT=$2 MBOX=$3 SESSIONS=20 SIZE=1024 COUNT=$COUNT RUNS=1 \
    bash "$peers/smtp-bench.sh" 2>/dev/null | tail -1 | sed -n 's/.*accept_mps=\([0-9.]*\).*/\1/p'
}
vr=(); ur=()
for r in $(seq "$ROUNDS"); do
  vr+=("$(run_case virtual u0@vm "$work/mail/virtual/vm/u0")")
  ur+=("$(run_case unix bench@localhost "$work/mail/bench")")
  echo "round $r: virtual ${vr[-1]} msg/s, unix ${ur[-1]} msg/s"
done
[ "$ROUNDS" = 0 ] || grep -q "to=<u0@vm>.*stat=Sent" "$work/maillog" || { echo "virtual-users bench: no delivery to u0@vm in the log" >&2; exit 1; }
hwm=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$dpid/status")
v=$(med "${vr[@]}"); u=$(med "${ur[@]}")
echo "virtual-users users=$rows domains=$(wc -l < "$work/virtual-domains") list_json_s=$(med "${aw[@]}") list_json_cpu_s=$(med "${ac[@]}") list_one_domain_s=$(med "${ow[@]}") help_s=$(med "${hw[@]}") help_cpu_s=$(med "${hc[@]}") accept_virtual=$v accept_unix=$u ratio=$(echo "$v $u" | awk '{printf "%.2f", $1/$2}') count=$COUNT rounds=$ROUNDS daemon_peak_mb=$hwm load=$(cut -d' ' -f1 /proc/loadavg)"
