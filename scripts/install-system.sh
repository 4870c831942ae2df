#!/usr/bin/env bash
# Makes this checkout the system's mailer: /usr/sbin/sendmail, /usr/lib/sendmail,
# /usr/bin/mailq and /usr/bin/newaliases point at mailtk; creates the queue,
# maildrop and mail spool with sendmail's and Postfix's modes; installs the
# man pages and a systemd unit for `sendmail -bd -q20m`. Run as root.
# PREFIX=/some/root installs into another tree (used by the tests).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
P=${PREFIX:-}
[ "$(id -u)" = 0 ] || { echo "install-system: run as root" >&2; exit 77; }
[ -f "$here/dist/sendmail.js" ] || (cd "$here" && npm run build --silent)

mkdir -p "$P/usr/sbin" "$P/usr/lib" "$P/usr/bin" "$P/etc/mail" "$P/var/spool/mqueue" "$P/var/spool/mail" "$P/var/log"
for l in usr/sbin/sendmail usr/lib/sendmail; do ln -sfn "$here/bin/sendmail" "$P/$l"; done
ln -sfn "$here/bin/mailq" "$P/usr/bin/mailq"
ln -sfn "$here/bin/newaliases" "$P/usr/bin/newaliases"
[ -e "$here/bin/mail" ] && ln -sfn "$here/bin/mail" "$P/usr/bin/mail"

chmod 0711 "$P/var/spool/mqueue"
mkdir -p "$P/var/spool/mqueue/maildrop" && chmod 1733 "$P/var/spool/mqueue/maildrop"
if getent group mail >/dev/null; then chgrp mail "$P/var/spool/mail"; chmod 2775 "$P/var/spool/mail"; else chmod 1777 "$P/var/spool/mail"; fi
[ -e "$P/etc/mail/aliases" ] || printf 'postmaster: root\nMAILER-DAEMON: postmaster\n' > "$P/etc/mail/aliases"
[ -e "$P/etc/mail/mailtk.conf" ] || printf '# mailtk configuration: see mailtk.conf(5)\n' > "$P/etc/mail/mailtk.conf"

mkdir -p "$P/usr/local/share/man/man1" "$P/usr/local/share/man/man5" "$P/usr/local/share/man/man8"
for f in "$here"/man/*.[158]; do cp "$f" "$P/usr/local/share/man/man${f##*.}/"; done

mkdir -p "$P/etc/systemd/system"
cat > "$P/etc/systemd/system/mailtk.service" <<UNIT
[Unit]
Description=mailtk mail transfer agent (sendmail -bd -q20m)
After=network.target

[Service]
Type=simple
ExecStart=$(command -v node) --max-semi-space-size=4 $here/bin/sendmail -bD -q20m
ExecReload=/bin/kill -HUP \$MAINPID
KillMode=mixed
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
echo "mailtk installed: /usr/sbin/sendmail -> $here/bin/sendmail; systemctl enable --now mailtk to start the daemon"
