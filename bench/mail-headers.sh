#!/usr/bin/env bash
# mail -H (the header summary) on a generated 20,000-message mbox, beside
# s-nail's own header summary (s-nail -n -H -f) of the same file, in the same
# run: rounds alternate mailtk / s-nail, after one warm-up each, and the last
# line prints both medians and their ratio (below 1 means mailtk is faster).
# Settings: N (messages, 20000), ROUNDS (9), BODY (bytes per body, 2000),
# GEN (the generator, test/peers/gen-mbox.py). Loopback/local only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
ROUNDS=${ROUNDS:-9}
BODY=${BODY:-2000}
GEN=${GEN:-$(cd "$(dirname "$0")/.." && pwd)/test/peers/gen-mbox.py}
command -v s-nail >/dev/null || { echo "s-nail is not installed (apt-get install s-nail)" >&2; exit 1; }
[ -f dist/mail.js ] || npm run build --silent

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 "$GEN" "$N" "$WORK/big.mbox" "$BODY" >&2
export HOME=$WORK MAIL=/dev/null COLUMNS=80 NO_COLOR=1 LC_ALL=C.UTF-8

ms_now() { date +%s%N; }
run_mailtk() { bin/mail -H -f "$WORK/big.mbox" > "$WORK/mailtk.out"; }
run_snail() { s-nail -n -H -f "$WORK/big.mbox" > "$WORK/snail.out"; }

# Warm the page cache and both programs once; check both listed every message.
run_mailtk; run_snail
for f in mailtk snail; do
  lines=$(wc -l < "$WORK/$f.out")
  [ "$lines" -eq "$N" ] || { echo "$f listed $lines lines, expected $N" >&2; exit 1; }
done

A=(); B=()
for ((i = 0; i < ROUNDS; i++)); do
  t0=$(ms_now); run_mailtk; t1=$(ms_now); run_snail; t2=$(ms_now)
  A+=($(( (t1 - t0) / 1000000 ))); B+=($(( (t2 - t1) / 1000000 )))
  echo "round $((i + 1)): mailtk ${A[-1]} ms, s-nail ${B[-1]} ms" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ma=$(median "${A[@]}"); mb=$(median "${B[@]}")
echo "mail-headers messages=$N bytes=$(stat -c %s "$WORK/big.mbox") rounds=$ROUNDS mailtk_median_ms=$ma snail_median_ms=$mb ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.2f", a / b }')"
