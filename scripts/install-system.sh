#!/usr/bin/env bash
# install-system.sh: install mailtk as this Debian system's mailer, or take it away.
#
#   install-system.sh [--no-service] [--no-build]     install, or bring an install up to date
#   install-system.sh --uninstall [--no-service]      put everything back
#
# Installs a built copy of this checkout (dist/, bin/, a package.json saying
# "type": "module"; the bundle needs no node_modules) in /usr/lib/mailtk,
# owned by root, and makes it the system's mailer the Debian way:
#   - dpkg-divert --local --rename for /usr/sbin/sendmail, /usr/lib/sendmail,
#     /usr/bin/mailq, /usr/bin/newaliases (and /usr/sbin/newaliases,
#     /usr/sbin/mailq where they exist): another MTA's files become *.distrib
#     and its package upgrades go there too; the names link to mailtk;
#   - update-alternatives for mail: mailtk's mail is a "mailx" alternative
#     (/usr/bin/mailx, with mail, Mail and their man pages as slaves);
#   - /usr/sbin/mailpasswd, /usr/sbin/mailtk and /usr/bin/vacation when no
#     other file has that name;
#   - the mail_owner account (mailtk), the queue (0711 mailtk, maildrop 1733),
#     the spool (/var/spool/mail 2775 root:mail), /etc/mail/mailtk.conf
#     (alias_file = /etc/aliases where Debian keeps it), the postmaster,
#     MAILER-DAEMON and abuse aliases when missing, then newaliases;
#   - /etc/systemd/system/mailtk.service (not enabled: systemctl enable --now
#     mailtk), /etc/logrotate.d/mailtk, man pages in /usr/local/share/man.
# A second run changes nothing. Before installing it refuses when another
# program holds the SMTP port (25, or what smtp_listen says), naming it.
# --uninstall removes all of that but the configuration, the aliases, the
# queue, the mailboxes, the log and the account, and says so.
#
# DESTDIR=/some/root: everything is written under that root (dpkg-divert,
# update-alternatives and useradd with --root), nothing of the running system
# is changed and systemctl is not called; the ports are still checked.
# --no-service: no check of the ports and no systemctl (tests, images).
# --no-build: install dist/ as it is (else it is built when missing or older than src/).
set -euo pipefail
export LC_ALL=C

LIB=/usr/lib/mailtk
STATE=/var/lib/mailtk/install-state
UNIT=/etc/systemd/system/mailtk.service
LOGROTATE=/etc/logrotate.d/mailtk
CONF=/etc/mail/mailtk.conf
MAN=/usr/local/share/man
# Names no Debian package's MTA owns: linked only while nothing else has them.
OWN_NAMES=(/usr/sbin/mailpasswd /usr/sbin/mailtk /usr/bin/vacation)
MAILX_PRIORITY=60
here=$(cd "$(dirname "$0")/.." && pwd)
R=${DESTDIR:-}
R=${R%/}

mode=install service=1 build=1
for a in "$@"; do
  case $a in
    --uninstall) mode=uninstall ;;
    --no-service) service= ;;
    --no-build) build= ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "install-system: unknown argument $a (--uninstall, --no-service, --no-build)" >&2; exit 64 ;;
  esac
done

say() { echo "install-system: $*"; }
warn() { echo "install-system: warning: $*" >&2; }
die() { echo "install-system: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || { echo "install-system: run as root (sudo npm run install-system)" >&2; exit 77; }
if [ -n "$R" ]; then
  [ -d "$R" ] || die "DESTDIR $R is not a directory"
  R=$(cd "$R" && pwd)
  DPKG_ROOT=(--root "$R")
  systemd=
else
  DPKG_ROOT=()
  systemd=$service
  [ -d /run/systemd/system ] || systemd=
fi
for c in dpkg-divert update-alternatives; do
  command -v "$c" >/dev/null || die "$c not found: this installs mailtk on Debian and its derivatives"
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
changed=0

# ---------------------------------------------------------------------------
# Small tools. Paths given to them are the installed system's (/etc/...);
# $R is put in front when the file system is touched.

# The value of KEY in mailtk.conf, else DEFAULT (a key set to nothing is "").
conf_get() {
  local v
  if [ -f "$R$CONF" ] && v=$(awk -v k="$1" '
      { sub(/^[ \t]+/, "") }
      /^#/ { next }
      { i = index($0, "="); if (i == 0) next
        key = substr($0, 1, i - 1); sub(/[ \t]+$/, "", key); if (key != k) next
        val = substr($0, i + 1); sub(/^[ \t]+/, "", val); sub(/[ \t]+#.*$/, "", val); sub(/[ \t]+$/, "", val)
        found = 1; last = val }
      END { if (!found) exit 1; print last }' "$R$CONF"); then
    printf '%s' "$v"
  else
    printf '%s' "$2"
  fi
}

state_has() { [ -f "$R$STATE" ] && grep -qxF -- "$1" "$R$STATE"; }
state_add() {
  state_has "$1" && return 0
  mkdir -p "$R$(dirname "$STATE")"
  printf '%s\n' "$1" >>"$R$STATE"
}

# mkdir -p that notes each directory it makes, so that --uninstall removes
# them again (when empty). For directories that are not kept.
mkdir_rec() {
  local d=$1 missing=()
  while [ ! -d "$R$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
  for d in "${missing[@]}"; do
    install -d -m 0755 -o 0 -g 0 "$R$d"
    state_add "dir $d"
    changed=$((changed + 1))
  done
}

# Install SRC as DEST (mode MODE, root:root) unless DEST is that already;
# replaced with a rename, so a reader sees the old file or the new one.
put_file() {
  local src=$1 dest=$2 m=$3
  if [ -f "$dest" ] && [ ! -L "$dest" ] && [ "$(stat -c %a:%u:%g "$dest")" = "$(printf '%o' "$((8#$m))"):0:0" ] && cmp -s "$src" "$dest"; then
    return 0
  fi
  install -m "$m" -o 0 -g 0 "$src" "$dest.mailtk-new"
  mv -f "$dest.mailtk-new" "$dest"
  changed=$((changed + 1))
}

# A directory's owner and mode, set only when they differ.
ensure_dir() { # PATH MODE(octal, 4 digits) UID GID
  local p=$R$1
  if [ ! -d "$p" ]; then
    mkdir -p "$p"
    say "created $1"
    changed=$((changed + 1))
  fi
  if [ "$(stat -c %u:%g "$p")" != "$3:$4" ]; then chown "$3:$4" "$p"; changed=$((changed + 1)); fi
  if [ "$(stat -c %04a "$p")" != "$2" ]; then chmod "0$2" "$p"; changed=$((changed + 1)); fi
}

# "uid:gid" of a user, "gid" of a group, in the installed system.
user_ids() {
  if [ -n "$R" ]; then
    [ -f "$R/etc/passwd" ] && awk -F: -v n="$1" '$1 == n { print $3 ":" $4; f = 1; exit } END { exit !f }' "$R/etc/passwd"
  else
    getent passwd "$1" | awk -F: '{ print $3 ":" $4 }' | grep .
  fi
}
group_id() {
  if [ -n "$R" ]; then
    [ -f "$R/etc/group" ] && awk -F: -v n="$1" '$1 == n { print $3; f = 1; exit } END { exit !f }' "$R/etc/group"
  else
    getent group "$1" | cut -d: -f3 | grep .
  fi
}

# A directory the installed system reaches through PATH, following symbolic
# links inside $R (Debian's /var/spool/mail is a link to ../mail).
resolve_in_root() {
  local p=$1 t n=0
  while [ -L "$R$p" ] && [ $n -lt 20 ]; do
    t=$(readlink "$R$p")
    case $t in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
    n=$((n + 1))
  done
  printf '%s' "$p"
}

# A symbolic link into a mailtk checkout, left by the install-system of old
# (it linked the system's names to the checkout's bin/).
checkout_link() {
  local t
  [ -L "$R$1" ] || return 1
  t=$(readlink "$R$1")
  case $t in "$LIB"/*) return 1 ;; */bin/sendmail | */bin/mailq | */bin/newaliases | */bin/mail | */bin/mailpasswd | */bin/mailtk | */bin/vacation) ;; *) return 1 ;; esac
  [ -f "${t%/bin/*}/dist/sendmail.js" ] || [ -f "$R${t%/bin/*}/dist/sendmail.js" ]
}

# ---------------------------------------------------------------------------
# Who holds a port: "port 25 is held by master (package postfix): systemctl
# disable --now postfix". Nothing when the port is free or mailtk's own.
port_holder() {
  local port=$1 line pid name exe pkg svc unit cmd fix
  command -v ss >/dev/null || { warn "ss (iproute2) not found: cannot check who holds port $port"; return 0; }
  line=$(ss -ltnpH "sport = :$port" 2>/dev/null | head -n 1)
  [ -n "$line" ] || return 0
  pid=$(printf '%s' "$line" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
  name=$(printf '%s' "$line" | grep -o 'users:(("[^"]*"' | head -n 1 | cut -d'"' -f2)
  if [ -z "$pid" ]; then
    echo "port $port is in use (ss names no process: another network namespace?)"
    return 0
  fi
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  case $cmd in *"$LIB/bin/sendmail"*) return 0 ;; esac # mailtk's own daemon: an upgrade
  # mailtk.service of an earlier install (from a checkout): replaced and restarted by this one.
  grep -qs '/mailtk\.service$' "/proc/$pid/cgroup" && return 0
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  pkg=
  if [ -n "$exe" ]; then
    for f in "$exe" "${exe#/usr}"; do
      line=$(dpkg -S "$f" 2>/dev/null | grep -v '^diversion ' | head -n 1) || continue
      pkg=${line%%: /*}
      pkg=${pkg%%,*}
      pkg=${pkg%%:*}
      break
    done
  fi
  case $pkg in
    postfix) svc=postfix ;;
    exim4*) svc=exim4 ;;
    sendmail-bin | sendmail) svc=sendmail ;;
    opensmtpd) svc=opensmtpd ;;
    courier-mta) svc=courier-mta ;;
    dovecot-*) svc=dovecot ;;
    *)
      svc=
      unit=$(grep -o '[^/]*\.service$' "/proc/$pid/cgroup" 2>/dev/null | head -n 1 || true)
      if [ -n "$unit" ] && [ -d /run/systemd/system ] && [ "$(systemctl show -P MainPID "$unit" 2>/dev/null)" = "$pid" ]; then svc=${unit%.service}; fi
      ;;
  esac
  if [ -n "$svc" ]; then fix="systemctl disable --now $svc"; else fix="kill -TERM $pid"; fi
  if [ -n "$pkg" ]; then
    echo "port $port is held by $name (package $pkg): $fix"
  else
    echo "port $port is held by $name (pid $pid${exe:+, $exe}, from no Debian package): $fix"
  fi
}

listen_ports() { # the ports of a listen list: "0.0.0.0:25, [::]:25" -> 25
  printf '%s\n' "$1" | tr ',' '\n' | sed -n 's/.*:\([0-9][0-9]*\)[[:space:]]*$/\1/p' | sort -un
}

check_ports() {
  local port msg bad= key
  for port in $(listen_ports "$(conf_get smtp_listen '0.0.0.0:25, [::]:25'), $(conf_get submission_listen '')"); do
    msg=$(port_holder "$port")
    if [ -n "$msg" ]; then
      echo "install-system: $msg" >&2
      bad=1
    fi
  done
  [ -z "$bad" ] || die "not installed: mailtk's daemon needs its SMTP port (smtp_listen in $CONF); stop that program first, or run with --no-service to install without checking"
  for key in pop3_listen:0.0.0.0:110 imap_listen:0.0.0.0:143 pop3s_listen: imaps_listen:; do
    for port in $(listen_ports "$(conf_get "${key%%:*}" "${key#*:}")"); do
      msg=$(port_holder "$port")
      [ -z "$msg" ] || warn "$msg; mailtk's daemon will not start until it is free, or set ${key%%:*} = (nothing) in $CONF"
    done
  done
}

# ---------------------------------------------------------------------------
# The commands: a name another MTA may own is diverted, then linked to mailtk.

divert_and_link() { # PATH TARGET
  local p=$1 t=$2 owner
  if checkout_link "$p"; then
    say "$p linked to a mailtk checkout ($(readlink "$R$p")): replaced"
    rm -f "$R$p"
  fi
  owner=$(dpkg-divert "${DPKG_ROOT[@]}" --listpackage "$p")
  if [ -z "$owner" ]; then
    dpkg-divert "${DPKG_ROOT[@]}" --local --rename --add "$p" >/dev/null
    say "$p: diverted to $p.distrib"
    state_add "divert $p"
    changed=$((changed + 1))
  elif [ "$owner" != LOCAL ] || [ "$(dpkg-divert "${DPKG_ROOT[@]}" --truename "$p")" != "$p.distrib" ]; then
    die "$p is diverted already ($(dpkg-divert "${DPKG_ROOT[@]}" --list "$p")): not touching it"
  fi
  link "$p" "$t"
}

link() { # PATH TARGET: PATH becomes a link to TARGET (never replacing a file)
  local p=$1 t=$2
  [ -L "$R$p" ] && [ "$(readlink "$R$p")" = "$t" ] && return 0
  if [ -e "$R$p" ] && [ ! -L "$R$p" ]; then die "$p exists and is not mailtk's: move it away first"; fi
  mkdir_rec "$(dirname "$p")"
  ln -sfn "$t" "$R$p"
  changed=$((changed + 1))
}

MAILX_SLAVES=(mail:/usr/bin/mail Mail:/usr/bin/Mail mail.1.gz:/usr/share/man/man1/mail.1.gz mailx.1.gz:/usr/share/man/man1/mailx.1.gz Mail.1.gz:/usr/share/man/man1/Mail.1.gz)

# How update-alternatives --query shows mailtk's mailx alternative.
mailx_block() {
  local s
  printf 'Alternative: %s\nPriority: %s\nSlaves:\n' "$LIB/launch/mail" "$MAILX_PRIORITY"
  for s in "${MAILX_SLAVES[@]}"; do
    case ${s%%:*} in mail | Mail) echo " ${s%%:*} $LIB/launch/mail" ;; *) echo " ${s%%:*} $LIB/share/man/man1/mail.1.gz" ;; esac
  done
}

install_mailx() {
  local alt=$LIB/launch/mail man=$LIB/share/man/man1/mail.1.gz q value status args=() s p
  for p in /usr/bin/mailx /usr/bin/mail /usr/bin/Mail; do
    if checkout_link "$p"; then say "$p linked to a mailtk checkout: replaced"; rm -f "$R$p"; fi
    # A mail that is no alternative (no link into /etc/alternatives) is diverted like sendmail.
    if [ -e "$R$p" ] || [ -L "$R$p" ]; then
      case $(readlink "$R$p" || true) in
        /etc/alternatives/*) ;;
        *) if [ -z "$(dpkg-divert "${DPKG_ROOT[@]}" --listpackage "$p")" ]; then
             dpkg-divert "${DPKG_ROOT[@]}" --local --rename --add "$p" >/dev/null
             say "$p: diverted to $p.distrib"
             state_add "divert $p"
             changed=$((changed + 1))
           fi ;;
      esac
    fi
  done
  mkdir_rec /etc/alternatives
  mkdir_rec /var/lib/dpkg/alternatives
  for s in /usr/bin/mailx "${MAILX_SLAVES[@]}"; do mkdir_rec "$(dirname "${s#*:}")"; done
  q=$(update-alternatives "${DPKG_ROOT[@]}" --query mailx 2>/dev/null || true)
  value=$(printf '%s\n' "$q" | sed -n 's/^Value: //p')
  status=$(printf '%s\n' "$q" | sed -n 's/^Status: //p')
  # Registered already, with these slaves, and chosen: nothing to do.
  if [ "$value" = "$alt" ] && [ "$(printf '%s\n' "$q" | awk -v a="Alternative: $alt" '$0 == a { p = 1 } p && /^$/ { exit } p' | sort)" = "$(mailx_block | sort)" ]; then
    return 0
  fi
  if [ -n "$value" ] && [ "$value" != "$alt" ]; then state_add "mailx-before $status $value"; fi
  [ -n "$value" ] || state_add "mailx-before none"
  for s in "${MAILX_SLAVES[@]}"; do
    case ${s%%:*} in mail | Mail) args+=(--slave "${s#*:}" "${s%%:*}" "$alt") ;; *) args+=(--slave "${s#*:}" "${s%%:*}" "$man") ;; esac
  done
  update-alternatives "${DPKG_ROOT[@]}" --install /usr/bin/mailx mailx "$alt" "$MAILX_PRIORITY" "${args[@]}" >/dev/null
  value=$(update-alternatives "${DPKG_ROOT[@]}" --query mailx | sed -n 's/^Value: //p')
  if [ "$value" != "$alt" ]; then update-alternatives "${DPKG_ROOT[@]}" --set mailx "$alt" >/dev/null; fi
  say "mail: /usr/bin/mailx, mail and Mail are mailtk's (update-alternatives --display mailx)"
  changed=$((changed + 1))
}

# ---------------------------------------------------------------------------
# The installed tree: dist/, bin/, package.json, launch/ (the commands' entry
# points, finding node when they run), share/man.

stage_tree() {
  local s=$TMP/stage node f
  mkdir -p "$s/bin" "$s/dist" "$s/launch" "$s/share/man/man1" "$s/scripts"
  for f in "$here"/bin/*; do [ -f "$f" ] && cp "$f" "$s/bin/"; done
  cp -R "$here/dist/." "$s/dist/"
  # Node takes dist/*.js for ES modules only with "type": "module" beside them.
  node -e '
    const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const out = { name: p.name, version: p.version, description: p.description, license: p.license, private: true, type: "module", engines: p.engines };
    process.stdout.write(JSON.stringify(out, null, 2) + "\n");' "$here/package.json" >"$s/package.json"
  node=$(readlink -f "$(command -v node)")
  for f in sendmail mailq newaliases mail mailpasswd mailtk vacation; do
    [ -f "$s/bin/$f" ] || continue
    {
      echo '#!/bin/sh'
      echo "# mailtk's $f (written by install-system): $LIB/bin/$f, run by the node found"
      echo '# now: on PATH, else in /usr/bin or /usr/local/bin, else where it was at install.'
      printf 'for node in "$(command -v node)" /usr/bin/node /usr/local/bin/node'
      case $node in /usr/bin/node | /usr/local/bin/node) ;; *) printf ' %s' "$node" ;; esac
      echo '; do'
      echo '	[ -x "$node" ] || continue'
      echo '	# the programs mailtk starts (#!/usr/bin/env node) find the same one'
      echo '	case ":$PATH:" in *":${node%/*}:"*) ;; *) PATH=$PATH:${node%/*}; export PATH ;; esac'
      echo "	exec \"\$node\" \$MAILTK_NODE_FLAGS $LIB/bin/$f \"\$@\""
      echo 'done'
      echo "echo \"$f: cannot find node (Node.js 20 or later) on PATH or in /usr/bin, /usr/local/bin\" >&2"
      echo 'exit 69'
    } >"$s/launch/$f"
  done
  gzip -9n <"$here/man/mail.1" >"$s/share/man/man1/mail.1.gz"
  # This script too, so that --uninstall works without the checkout.
  cp "$here/scripts/install-system.sh" "$s/scripts/install-system.sh"
  find "$s" -type d -exec chmod 0755 {} +
  find "$s" -type f -exec chmod 0644 {} +
  chmod 0755 "$s"/bin/* "$s"/launch/* "$s/scripts/install-system.sh"
}

# Bring DEST to SRC's files: chunks first, then the entry points that import
# them, then the rest; what SRC no longer has goes last, so a command started
# meanwhile finds every file it imports.
sync_tree() {
  local src=$1 dest=$2 f d
  # The same files, modes and owners already: nothing to do (the common case, cheaply).
  if [ -d "$R$dest" ] && diff -rq --no-dereference "$src" "$R$dest" >/dev/null 2>&1 &&
    [ "$(cd "$src" && find . -printf '%P %y %m\n' | sort)" = "$(cd "$R$dest" && find . -printf '%P %y %m\n' | sort)" ] &&
    [ -z "$(find "$R$dest" \( ! -uid 0 -o ! -gid 0 \) -print -quit)" ]; then
    return 0
  fi
  mkdir_rec "$(dirname "$dest")"
  if [ ! -d "$R$dest" ]; then install -d -m 0755 -o 0 -g 0 "$R$dest"; changed=$((changed + 1)); fi
  (cd "$src" && find . -mindepth 1 -type d | sort) | while read -r d; do
    [ -d "$R$dest/$d" ] || install -d -m 0755 -o 0 -g 0 "$R$dest/$d"
  done
  (cd "$src" && find . -type f | sed 's|^\./||' | sort) >"$TMP/files"
  { grep -E '^dist/.*-[A-Z0-9]{8}\.js$' "$TMP/files" || true
    grep -vE '^dist/.*-[A-Z0-9]{8}\.js$' "$TMP/files" | grep '^dist/' || true
    grep -v '^dist/' "$TMP/files" || true; } >"$TMP/order"
  while read -r f; do put_file "$src/$f" "$R$dest/$f" "$(stat -c %04a "$src/$f")"; done <"$TMP/order"
  while read -r f; do
    rm -f "$R$dest/$f"
    changed=$((changed + 1))
  done < <(cd "$R$dest" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort | comm -23 - "$TMP/files")
  (cd "$R$dest" && find . -mindepth 1 -depth -type d) | while read -r d; do
    [ -d "$src/$d" ] || rmdir "$R$dest/$d" 2>/dev/null || true
  done
  # Owners and modes of what was there already.
  find "$R$dest" -type d ! -perm 0755 -exec chmod 0755 {} +
  find "$R$dest" \( ! -uid 0 -o ! -gid 0 \) -exec chown -h 0:0 {} +
}

# ---------------------------------------------------------------------------

do_install() {
  [ -d "$here/src" ] && [ -f "$here/package.json" ] || die "install from a mailtk checkout ($here is none); this copy can only --uninstall"
  command -v node >/dev/null || die "node not found: mailtk needs Node.js 20 or later"
  [ -f "$R/etc/passwd" ] || [ -z "$R" ] || warn "$R/etc/passwd missing: the mail_owner account is not made (the daemon makes it on its first start)"

  # A build of the newest code, made as the checkout's owner (a root build
  # would leave dist/ root's in someone's checkout).
  if [ -n "$build" ] && { [ ! -f "$here/dist/sendmail.js" ] || [ -n "$(find "$here/src" -name '*.ts' ! -name '*.test.ts' -newer "$here/dist/sendmail.js" -print -quit)" ]; }; then
    say "building dist/ (npm run build)"
    local owner
    owner=$(stat -c %U "$here")
    if [ "$owner" = root ]; then (cd "$here" && npm run build --silent); else (cd "$here" && runuser -u "$owner" -- npm run build --silent); fi
  fi
  [ -f "$here/dist/sendmail.js" ] || die "no dist/sendmail.js: run npm run build first"

  [ -z "$service" ] || check_ports

  # 1. The program.
  local before=$changed
  stage_tree
  sync_tree "$TMP/stage" "$LIB"
  local code_changed=$((changed - before))
  [ $code_changed = 0 ] || say "installed $LIB ($(find "$R$LIB/dist" -type f | wc -l) files in dist/)"

  # 2. The account, the configuration, the aliases.
  local owner_name ids uid gid mailgid
  owner_name=$(conf_get mail_owner mailtk)
  if ! ids=$(user_ids "$owner_name"); then
    if [ -z "$R" ] || [ -f "$R/etc/passwd" ]; then
      # As the daemon makes it (src/daemon/privs.ts mailOwnerAccount).
      useradd ${R:+--root "$R"} --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment 'mailtk queue owner' "$owner_name" 2>"$TMP/useradd" || { cat "$TMP/useradd" >&2; die "useradd $owner_name failed"; }
      grep -v 'missing or non-executable shell' "$TMP/useradd" >&2 || true
      ids=$(user_ids "$owner_name") || die "useradd made no account $owner_name"
      say "created the system account $owner_name (uid ${ids%%:*})"
      changed=$((changed + 1))
    fi
  fi
  uid=${ids%%:*} gid=${ids#*:}

  mkdir -p "$R/etc/mail"
  if [ ! -e "$R$CONF" ]; then
    {
      echo '# mailtk configuration: see mailtk.conf(5). Written by install-system;'
      echo '# install-system --uninstall keeps it.'
      [ ! -f "$R/etc/aliases" ] || echo 'alias_file = /etc/aliases'
    } >"$TMP/conf"
    install -m 0644 -o 0 -g 0 "$TMP/conf" "$R$CONF"
    say "wrote $CONF"
    changed=$((changed + 1))
  elif [ -f "$R/etc/aliases" ] && [ ! -e "$R/etc/mail/aliases" ] && ! grep -qE '^[[:space:]]*alias_file[[:space:]]*=' "$R$CONF"; then
    printf '%s\n' '# Debian keeps the aliases in /etc/aliases (added by install-system)' 'alias_file = /etc/aliases' >>"$R$CONF"
    say "$CONF: alias_file = /etc/aliases"
    changed=$((changed + 1))
  fi

  local aliases db missing=() n
  aliases=$(conf_get alias_file /etc/mail/aliases)
  db=$(conf_get alias_db /etc/mail/aliases.cdb)
  [ -e "$R$aliases" ] || { install -m 0644 -o 0 -g 0 /dev/null "$R$aliases"; changed=$((changed + 1)); }
  for n in postmaster MAILER-DAEMON abuse; do
    grep -qiE "^[[:space:]]*\"?$n\"?[[:space:]]*:" "$R$aliases" || missing+=("$n")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    { [ ! -s "$R$aliases" ] || [ -z "$(tail -c 1 "$R$aliases")" ] || echo
      echo '# Required by RFC 5321 and RFC 2142 (added by mailtk install-system):'
      for n in "${missing[@]}"; do echo "$n: root"; done; } >>"$R$aliases"
    say "$aliases: added ${missing[*]} (to root)"
    changed=$((changed + 1))
  fi

  # 3. Queue, maildrop and spool with the modes the daemon expects (sendmail(8), FILES).
  local q spool
  q=$(conf_get queue_dir /var/spool/mqueue)
  if [ -n "${ids:-}" ]; then
    if [ -d "$R$q" ] && [ "$(stat -c %u "$R$q")" != "$uid" ] && [ -n "$(ls -A "$R$q")" ]; then
      # The queue of an earlier daemon: given to mail_owner as the daemon would
      # (src/daemon/privs.ts giveQueueTo): not what users dropped, not files with links.
      find "$R$q" \( -path "$R$q/maildrop" -o -path "$R$q/corrupt" -o -path "$R$q/pickup" \) -prune -exec chown -h "$uid:$gid" {} + \
        -o \( -type d -o \( -type f -links 1 \) \) -exec chown -h "$uid:$gid" {} +
      say "$q given to $owner_name"
    fi
    ensure_dir "$q" 0711 "$uid" "$gid"
    ensure_dir "$q/maildrop" 1733 "$uid" "$gid"
  else
    ensure_dir "$q" 0711 0 0
    ensure_dir "$q/maildrop" 1733 0 0
  fi
  spool=$(resolve_in_root "$(conf_get mail_spool_dir /var/spool/mail)")
  if mailgid=$(group_id mail); then
    ensure_dir "$spool" 2775 0 "$mailgid"
  else
    warn "no group mail: $spool is 1777, as the sticky /tmp"
    ensure_dir "$spool" 1777 0 0
  fi
  mkdir -p "$R$(dirname "$(conf_get log_file /var/log/maillog)")"

  # 4. The commands.
  local p
  mkdir_rec /var/lib/dpkg
  for p in /usr/sbin/sendmail /usr/lib/sendmail; do divert_and_link "$p" "$LIB/launch/sendmail"; done
  for p in /usr/bin/mailq /usr/sbin/mailq; do
    [ "$p" = /usr/bin/mailq ] || [ -e "$R$p" ] || [ -L "$R$p" ] || continue
    divert_and_link "$p" "$LIB/launch/mailq"
  done
  for p in /usr/bin/newaliases /usr/sbin/newaliases; do
    [ "$p" = /usr/bin/newaliases ] || [ -e "$R$p" ] || [ -L "$R$p" ] || continue
    divert_and_link "$p" "$LIB/launch/newaliases"
  done
  # mailtk's own names: taken only while no other program has them.
  for p in "${OWN_NAMES[@]}"; do
    f=${p##*/}
    if checkout_link "$p"; then rm -f "$R$p"; fi
    if [ ! -e "$R$p" ] && [ ! -L "$R$p" ] || [ "$(readlink "$R$p")" = "$LIB/launch/$f" ]; then
      link "$p" "$LIB/launch/$f"
    else
      warn "$p is another program's: mailtk's is $LIB/launch/$f"
    fi
  done
  install_mailx

  # 5. Man pages (mail(1) is a slave of the mailx alternative).
  local f sec
  for f in "$here"/man/*.[158]; do
    [ "$(basename "$f")" != mail.1 ] || continue
    sec=${f##*.}
    mkdir_rec "$MAN/man$sec"
    put_file "$f" "$R$MAN/man$sec/$(basename "$f")" 0644
    state_add "file $MAN/man$sec/$(basename "$f")"
  done

  # 6. The service and its log.
  local kill=/usr/bin/kill unit_before=$changed log pid
  [ -x "$R/usr/bin/kill" ] || { [ -x "$R/bin/kill" ] && kill=/bin/kill; } || warn "no kill(1) (package procps): systemctl reload mailtk needs $kill"
  mkdir_rec "$(dirname "$UNIT")"
  sed "s|@KILL@|$kill|" "$here/packaging/mailtk.service.in" >"$TMP/unit"
  put_file "$TMP/unit" "$R$UNIT" 0644
  local unit_changed=$((changed - unit_before))
  log=$(conf_get log_file /var/log/maillog)
  pid=$(conf_get pid_file /run/mailtk.pid)
  mkdir_rec "$(dirname "$LOGROTATE")"
  sed -e "s|@LOG@|$log|" -e "s|@PID@|$pid|" "$here/packaging/logrotate.in" >"$TMP/logrotate"
  put_file "$TMP/logrotate" "$R$LOGROTATE" 0644

  # 7. The alias database, when the aliases are newer than it.
  local status=0
  if [ ! -f "$R$db" ] || [ "$R$aliases" -nt "$R$db" ]; then
    # In a DESTDIR, with its configuration and files; else the installed command itself.
    local run=("$LIB/launch/newaliases")
    [ -z "$R" ] || run=(node "$R$LIB/bin/newaliases" -C "$R$CONF" -O "alias_file=$R$aliases" -O "alias_db=$R$db" -O "log_file=$R$log")
    if "${run[@]}"; then changed=$((changed + 1)); else
      status=$?
      warn "newaliases failed (status $status): correct $aliases, then run newaliases"
    fi
  fi

  # 8. systemd.
  if [ -n "$systemd" ]; then
    [ $unit_changed = 0 ] || systemctl daemon-reload
    if [ $((code_changed + unit_changed)) != 0 ] && systemctl -q is-active mailtk.service; then
      say "restarting mailtk.service for the new code"
      systemctl try-restart mailtk.service
    fi
  fi

  if [ $changed = 0 ]; then
    say "mailtk is installed in $LIB and up to date: nothing changed"
  else
    say "mailtk installed in $LIB: /usr/sbin/sendmail, mailq, newaliases and mail are mailtk's"
    if [ -n "$R" ]; then :
    elif [ -n "$systemd" ] && systemctl -q is-enabled mailtk.service 2>/dev/null; then :
    else say "start the daemon with: systemctl enable --now mailtk"; fi
  fi
  return $status
}

do_uninstall() {
  local p alt=$LIB/launch/mail q value line st val n f d queue owner_name
  [ -e "$R$LIB" ] || [ -f "$R$STATE" ] || [ -e "$R$UNIT" ] || { say "mailtk is not installed (no $LIB): nothing to do"; return 0; }

  # 1. The service.
  if [ -n "$systemd" ] && [ -e "$R$UNIT" ]; then systemctl disable --now mailtk.service 2>/dev/null || true; fi
  find "$R/etc/systemd/system" -path '*.wants/mailtk.service' -type l -delete 2>/dev/null || true
  for f in "$UNIT" "$LOGROTATE"; do
    if [ -e "$R$f" ]; then rm -f "$R$f"; say "removed $f"; fi
  done
  [ -z "$systemd" ] || systemctl daemon-reload

  # 2. mail: the alternative goes, and the choice made before comes back.
  q=$(update-alternatives "${DPKG_ROOT[@]}" --query mailx 2>/dev/null || true)
  if printf '%s\n' "$q" | grep -qxF "Alternative: $alt"; then
    update-alternatives "${DPKG_ROOT[@]}" --remove mailx "$alt" >/dev/null
    line=$(grep '^mailx-before ' "$R$STATE" 2>/dev/null | head -n 1 || true)
    st=$(printf '%s' "$line" | cut -d' ' -f2)
    val=$(printf '%s' "$line" | cut -d' ' -f3-)
    if [ "$st" = manual ] && update-alternatives "${DPKG_ROOT[@]}" --list mailx 2>/dev/null | grep -qxF "$val"; then
      update-alternatives "${DPKG_ROOT[@]}" --set mailx "$val" >/dev/null
    fi
    value=$(update-alternatives "${DPKG_ROOT[@]}" --query mailx 2>/dev/null | sed -n 's/^Value: //p' || true)
    say "mail: mailtk's mailx alternative removed${value:+; /usr/bin/mailx is $value again}"
  fi

  # 3. The names: mailtk's links go, and the files diverted come back. Without
  # the record of what was diverted (an install interrupted), the local
  # diversions of the names that were mailtk's links are taken as mailtk's.
  : >"$TMP/diverted"
  [ ! -f "$R$STATE" ] || { grep '^divert ' "$R$STATE" | cut -d' ' -f2- >"$TMP/diverted" || true; }
  for p in /usr/sbin/sendmail /usr/lib/sendmail /usr/bin/mailq /usr/sbin/mailq /usr/bin/newaliases /usr/sbin/newaliases "${OWN_NAMES[@]}" /usr/bin/mailx /usr/bin/mail /usr/bin/Mail; do
    case $(readlink "$R$p" 2>/dev/null || true) in
      "$LIB"/*)
        rm -f "$R$p"
        [ -f "$R$STATE" ] || echo "$p" >>"$TMP/diverted"
        ;;
    esac
  done
  while read -r p; do
    [ -n "$p" ] && [ "$(dpkg-divert "${DPKG_ROOT[@]}" --listpackage "$p")" = LOCAL ] || continue
    if [ -e "$R$p" ] || [ -L "$R$p" ]; then
      warn "$p is no longer mailtk's: its diversion stays (dpkg-divert --rename --remove $p)"
      continue
    fi
    dpkg-divert "${DPKG_ROOT[@]}" --rename --remove "$p" >/dev/null
    if [ -e "$R$p" ] || [ -L "$R$p" ]; then say "$p: diversion removed, $p.distrib is $p again"; else say "$p: diversion removed"; fi
  done <"$TMP/diverted"

  # 4. The program and the files beside it, then the directories made for them.
  while read -r f; do [ -z "$f" ] || rm -f "$R$f"; done < <(grep '^file ' "$R$STATE" 2>/dev/null | cut -d' ' -f2- || true)
  if [ -e "$R$LIB" ]; then rm -rf "$R$LIB"; say "removed $LIB"; fi
  while read -r d; do [ -z "$d" ] || rmdir "$R$d" 2>/dev/null || true; done < <(grep '^dir ' "$R$STATE" 2>/dev/null | cut -d' ' -f2- | sort -r || true)
  rm -f "$R$STATE"
  rmdir "$R$(dirname "$STATE")" 2>/dev/null || true

  # 5. What stays.
  queue=$(conf_get queue_dir /var/spool/mqueue)
  owner_name=$(conf_get mail_owner mailtk)
  n=$(find "$R$queue" -maxdepth 1 -name '[qh]f*' ! -name '*.lock' 2>/dev/null | wc -l)
  say "kept: $CONF and the rest of /etc/mail (configuration, alias database), $(conf_get alias_file /etc/mail/aliases) (aliases), $queue (the queue: $n messages), $(conf_get mail_spool_dir /var/spool/mail) (mailboxes), $(conf_get log_file /var/log/maillog) (the log), the account $owner_name"
  say "to remove those too: rm -r /etc/mail $queue; rm $(conf_get log_file /var/log/maillog)*; userdel $owner_name"
}

if [ $mode = install ]; then do_install; else do_uninstall; fi
