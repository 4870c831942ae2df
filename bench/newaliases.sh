#!/usr/bin/env bash
# newaliases against Postfix's postalias on the same 100,000-alias file.
# Generates the file with the shared peer generator, gives each tool its own
# copy, runs them alternately (A B A B: the machine is shared and noisy), and
# prints each one's median wall time and the mailtk/postalias ratio. It also
# times both on a one-alias file, so the start-up cost of each (a Node process
# and its modules against a C binary) can be told apart from the rebuild work.
#   mailtk:    bin/newaliases -C <conf> (the built command), or a tsx runner
#              when dist/ is missing; the whole process is timed, start-up included.
#   postalias: postalias lmdb:<copy>; installed by the shared setup script if missing.
# Settings: N (aliases, 100000), ROUNDS (5), KEEP=1 keeps the work directory.
# Everything happens under a temporary directory; nothing in /etc is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
ROUNDS=${ROUNDS:-5}

if ! command -v postalias >/dev/null; then
  echo "bench: installing Postfix (loopback-only) for postalias" >&2
  bash /work/shared/peers/setup-postfix.sh >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/newaliases-bench.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
python3 /work/shared/peers/gen-aliases.py "$N" "$work/big" >&2
cp "$work/big" "$work/postfix-big"
echo 'postmaster: root' >"$work/one"
cp "$work/one" "$work/postfix-one"
for name in big one; do
  cat >"$work/$name.conf" <<CONF
alias_file = $work/$name
alias_db = $work/$name.lmdb
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
postfix() { postalias "lmdb:$work/postfix-$1"; }

# Wall time of one run, in milliseconds (bash 5's microsecond clock).
run_ms() {
  local t0=$EPOCHREALTIME
  "$@" >/dev/null
  local t1=$EPOCHREALTIME
  echo "$(((${t1/./} - ${t0/./}) / 1000))"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# One untimed run of each warms the page cache and checks that both work.
mailtk big >&2
postfix big
mailtk one >/dev/null
postfix one
m=() p=() m1=() p1=()
for ((r = 1; r <= ROUNDS; r++)); do
  m+=("$(run_ms mailtk big)")
  p+=("$(run_ms postfix big)")
  m1+=("$(run_ms mailtk one)")
  p1+=("$(run_ms postfix one)")
  echo "round $r: $N aliases: mailtk ${m[-1]} ms, postalias ${p[-1]} ms; 1 alias: mailtk ${m1[-1]} ms, postalias ${p1[-1]} ms" >&2
done
mm=$(printf '%s\n' "${m[@]}" | median)
pm=$(printf '%s\n' "${p[@]}" | median)
mm1=$(printf '%s\n' "${m1[@]}" | median)
pm1=$(printf '%s\n' "${p1[@]}" | median)
echo "mailtk: $how"
echo "aliases: $N, rounds: $ROUNDS; database sizes: mailtk $(stat -c %s "$work/big.lmdb") bytes, postalias $(stat -c %s "$work/postfix-big.lmdb") bytes"
echo "start-up (1 alias): newaliases median ${mm1} ms, postalias median ${pm1} ms"
echo "rebuild work (median minus start-up): newaliases $((mm - mm1)) ms, postalias $((pm - pm1)) ms, mailtk/postalias $(ratio $((mm - mm1)) $((pm - pm1)))"
echo "newaliases median ${mm} ms, postalias median ${pm} ms, mailtk/postalias $(ratio "$mm" "$pm")"
