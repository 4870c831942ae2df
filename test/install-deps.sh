#!/usr/bin/env bash
# Debian packages the interop tests use, as "command:package" (the command
# that shows the package is there). Installed only when running as root and
# missing; otherwise the tests that need them skip with a reason.
set -euo pipefail
PKGS=(getent:libc-bin swaks:swaks openssl:openssl python3:python3 cdb:tinycdb)
# mail's tests and bench: s-nail (the peer it is read and written against),
# tmux (driving mail at a terminal), dotlockfile (the setgid-mail lock helper).
PKGS+=(s-nail:s-nail tmux:tmux dotlockfile:liblockfile-bin)
[ "$(id -u)" = 0 ] || exit 0
need=()
for p in "${PKGS[@]}"; do command -v "${p%%:*}" >/dev/null 2>&1 || need+=("${p#*:}"); done
[ ${#need[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
