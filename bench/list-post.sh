#!/usr/bin/env bash
# Mailing list fan-out: one 10 KB post to a 10,000-member list (src/lists),
# to the same members with VERP on (one queue entry each), and the same post
# through an :include: alias naming the same 10,000 local recipients, in the
# same run, rounds alternating. Prints, per round
# and as medians, the time until every member's copy is queued and until all
# are delivered to their mailboxes, then the ratios to the include (target for the
# list: within 1.2x). Everything lives in a temporary directory; no network.
# Runs unprivileged (as root it drops to nobody): the 10,000 members are
# user_db entries, and a root run would start a delivery agent per recipient
# uid for both paths alike, measuring process start-up instead of fan-out.
# Usage: MEMBERS=10000 ROUNDS=3 bash bench/list-post.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$here/dist/sendmail.js" ] || (cd "$here" && npm run build --silent)
as=()
[ "$(id -u)" = 0 ] && as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
exec "${as[@]}" node "$here/bench/list-post.mjs" "${MEMBERS:-10000}" "${ROUNDS:-3}"
