#!/usr/bin/env bash
# newaliases against Postfix's postalias on the same 100,000-alias file.
# Generates the file with the shared peer generator, gives each tool its own
# copy, runs them alternately (A B C A B C: the machine is shared and noisy),
# and prints each one's median wall time and the mailtk/postalias ratios. It
# also times each on a one-alias file, and `node -e 0`, so the start-up cost
# (a Node process and its modules against a C binary) can be told apart from
# the rebuild work.
#   mailtk:    bin/newaliases -C <conf> (the built command), or a tsx runner
#              when dist/ is missing; the whole process is timed, start-up included.
#   postalias: postalias cdb:<copy> (the format mailtk writes) and
#              postalias lmdb:<copy> (the reference of the first figures);
#              installed by the shared setup script if missing.
# Settings: N (aliases, 100000), ROUNDS (5), KEEP=1 keeps the work directory.
# Everything happens under a temporary directory; nothing in /etc is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
ROUNDS=${ROUNDS:-5}

if ! command -v postalias >/dev/null || ! postconf -m | grep -qx cdb; then
  echo "bench: installing Postfix (loopback-only) for postalias" >&2
  bash test/peers/setup-postfix.sh >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/newaliases-bench.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
python3 test/peers/gen-aliases.py "$N" "$work/big" >&2
for name in big one; do
  [ "$name" = one ] && echo 'postmaster: root' >"$work/one"
  cp "$work/$name" "$work/cdb-$name"
  cp "$work/$name" "$work/lmdb-$name"
  cat >"$work/$name.conf" <<CONF
alias_file = $work/$name
alias_db = $work/$name.cdb
log_file = $work/maillog
queue_dir = $work/mqueue
mail_spool_dir = $work/mail
local_host_names_file = $work/local-host-names
hostname = bench.localdomain
CONF
done

if [ -f dist/sendmail.js ] && [ -x bin/newaliases ]; then
  mailtk() { node bin/newaliases -C "$work/$1.conf"; }
  how="bin/newaliases (dist/)"
else
  cat >"$work/run.mts" <<RUN
import { loadConfig } from '$PWD/src/config/index.ts';
import { runNewaliases } from '$PWD/src/cli/newaliases.ts';
process.exitCode = await runNewaliases(loadConfig({ file: process.argv[2] }), { verbose: false, tty: false });
RUN
  mailtk() { node --import tsx "$work/run.mts" "$work/$1.conf"; }
  how="tsx runner (no dist/: run npm run build for the real command)"
fi
pf_cdb() { postalias "cdb:$work/cdb-$1"; }
pf_lmdb() { postalias "lmdb:$work/lmdb-$1"; }
node0() { node -e 0; }

# Wall time of one run, in milliseconds (bash 5's microsecond clock).
run_ms() {
  local t0=$EPOCHREALTIME
  "$@" >/dev/null
  local t1=$EPOCHREALTIME
  echo "$(((${t1/./} - ${t0/./}) / 1000))"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# One untimed run of each warms the page cache and checks that all work.
mailtk big >&2
for f in pf_cdb pf_lmdb; do $f big; $f one; done
mailtk one >/dev/null
m=() c=() l=() m1=() c1=() l1=() n0=()
for ((r = 1; r <= ROUNDS; r++)); do
  m+=("$(run_ms mailtk big)")
  c+=("$(run_ms pf_cdb big)")
  l+=("$(run_ms pf_lmdb big)")
  m1+=("$(run_ms mailtk one)")
  c1+=("$(run_ms pf_cdb one)")
  l1+=("$(run_ms pf_lmdb one)")
  n0+=("$(run_ms node0)")
  echo "round $r: $N aliases: mailtk ${m[-1]} ms, postalias cdb ${c[-1]} ms, lmdb ${l[-1]} ms;" \
    "1 alias: mailtk ${m1[-1]} ms, postalias cdb ${c1[-1]} ms, lmdb ${l1[-1]} ms; node -e 0: ${n0[-1]} ms" >&2
done
med() { printf '%s\n' "$@" | median; }
mm=$(med "${m[@]}") cm=$(med "${c[@]}") lm=$(med "${l[@]}")
mm1=$(med "${m1[@]}") cm1=$(med "${c1[@]}") lm1=$(med "${l1[@]}") nm=$(med "${n0[@]}")
echo "mailtk: $how"
echo "aliases: $N, rounds: $ROUNDS; database sizes: mailtk $(stat -c %s "$work/big.cdb") bytes," \
  "postalias cdb $(stat -c %s "$work/cdb-big.cdb") bytes, lmdb $(stat -c %s "$work/lmdb-big.lmdb") bytes"
extra=""
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && extra=" (NODE_EXTRA_CA_CERTS is set: every Node process loads that file at start-up)"
echo "node -e 0: median ${nm} ms$extra"
echo "start-up (1 alias): newaliases median ${mm1} ms (node -e 0 plus $((mm1 - nm)) ms), postalias cdb ${cm1} ms, lmdb ${lm1} ms"
echo "rebuild work (median minus start-up): newaliases $((mm - mm1)) ms, postalias cdb $((cm - cm1)) ms, lmdb $((lm - lm1)) ms"
echo "newaliases median ${mm} ms, postalias cdb median ${cm} ms, mailtk/postalias-cdb $(ratio "$mm" "$cm")"
echo "newaliases median ${mm} ms, postalias lmdb median ${lm} ms, mailtk/postalias-lmdb $(ratio "$mm" "$lm")"
