#!/usr/bin/env bash
# Issue 9: 100 users logged in over IMAP at once, each with a 1,000-message
# INBOX, mailtk beside Dovecot (Debian's, mbox format) on the same mailboxes.
# Figures: the memory each additional logged-in user costs (PSS, as smem
# counts it: each shared page divided among the processes that map it), the
# total with every user in, the number of processes, and login time p50/p99.
# Target for mailtk: at most 20 MB per additional user.
#
# Creates real accounts mtkb000..mtkbNNN (useradd, homes in a temporary
# directory) and removes them at the end, with the directory, also on INT/TERM
# (an account set left by a run that died is deleted first). One generated
# mbox is copied to every user's spool file for each server (0600, owner the
# user, spool directory 2775 root:mail as on Debian). mailtk runs as root with
# `sendmail -bd` and user_db = system; Dovecot runs from a private config with
# a passwd-file of the same accounts, uids and passwords. One server runs at a
# time, in alternating order when ROUNDS > 1, each from fresh mbox copies and
# no index. bench/imap-users.mjs logs in and measures; see its header.
# Both servers listen on 127.0.0.1 only, on free ports.
#
# Settings: USERS (100), MESSAGES (1000), ROUNDS (3), CONCURRENCY (10 logins
# at once), TIMEOUT (600 s): a round after the first starts only if one more
# round as long as the last still ends within TIMEOUT of the start (so fewer
# rounds may be done, and the report says so); the run is stopped outright at
# twice TIMEOUT. Needs root.
# Prints what was measured, a table of medians and ratios, then a summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
{ # Read whole before it runs, so that editing this file meanwhile cannot change a run.
USERS=${USERS:-100}
MESSAGES=${MESSAGES:-1000}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-10}
TIMEOUT=${TIMEOUT:-600}
PREFIX=mtkb
DEADLINE=$((SECONDS + 2 * TIMEOUT))

[ "$(id -u)" = 0 ] || { echo "imap-users: run as root (it creates $USERS system accounts and runs both servers as root)" >&2; exit 1; }
[ "$USERS" -ge 2 ] && [ "$USERS" -le 1000 ] || { echo "imap-users: USERS must be 2..1000" >&2; exit 1; }
command -v useradd >/dev/null || { echo "imap-users: useradd not found" >&2; exit 1; }
[ -x /usr/lib/dovecot/imap ] || bash test/install-deps.sh
command -v dovecot >/dev/null || { echo "imap-users: dovecot is not installed (apt-get install dovecot-imapd)" >&2; exit 1; }
[ -f dist/sendmail.js ] || npm run build --silent

say() { echo "imap-users: $*" >&2; }
left() {
  local l=$((DEADLINE - SECONDS))
  [ "$l" -gt 0 ] || { say "out of time (twice TIMEOUT=$TIMEOUT s)"; exit 1; }
  echo "$l"
}
names() { local i; for ((i = 0; i < USERS; i++)); do printf '%s%03d\n' "$PREFIX" "$i"; done; }

# Every descendant of a pid (through each process's parent pid), the pid first.
tree_pids() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { kids[$2] = kids[$2] " " $1 }
    END { q[1] = root; n = 1; for (i = 1; i <= n; i++) { print q[i]; c = split(kids[q[i]], k, " "); for (j = 1; j <= c; j++) q[++n] = k[j] } }'
}
# Stop a server whose master's pid is the first word of a pid file: TERM to the
# master, then KILL to whatever of its tree (as it was before) is still there.
stop_tree() {
  local pidfile=$1 pid pids p
  [ -f "$pidfile" ] || return 0
  pid=$(awk 'NR == 1 { print $1 }' "$pidfile" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 0
  pids=$(tree_pids "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  sleep 0.3
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$pidfile"
}
delete_users() {
  local n
  for n in $(getent passwd | awk -F: -v re="^$PREFIX[0-9][0-9][0-9]\$" '$1 ~ re { print $1 }'); do
    userdel -f "$n" >/dev/null 2>&1 || say "could not delete account $n"
  done
}

T= DRIVER=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$DRIVER" ] && kill "$DRIVER" 2>/dev/null || true
  if [ -n "$T" ]; then
    stop_tree "$T/mailtk/run/mailtk.pid"
    stop_tree "$T/dovecot/run/master.pid"
  fi
  delete_users
  [ -n "$T" ] && rm -rf "$T"
  exit "$rc"
}
# One run at a time (the accounts are shared); what a run killed with SIGKILL left: its
# servers (pid files in its directory), its accounts, its directory.
# (The lock is fd 9, which no server or driver started below may inherit: 9<&-.)
exec 9<bench/imap-users.sh
flock -n 9 || { say "another run of bench/imap-users.sh is in progress"; exit 1; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for old in /tmp/imap-users.??????; do
  [ -d "$old" ] || continue
  say "removing what a previous run left: $old"
  stop_tree "$old/mailtk/run/mailtk.pid"
  stop_tree "$old/dovecot/run/master.pid"
  rm -rf "$old"
done
delete_users
T=$(mktemp -d /tmp/imap-users.XXXXXX)
chmod 755 "$T"
M=$T/mailtk D=$T/dovecot
mkdir -p "$T/home" "$M/etc" "$M/spool/mail" "$M/log" "$M/run" "$D/run" "$D/state" "$D/spool" "$D/home"
chmod 755 "$T/home" "$D/home"
chown root:mail "$M/spool/mail" "$D/spool"
chmod 2775 "$M/spool/mail" "$D/spool"

# ---- The mbox: deterministic, varied senders, lists, replies, MIME parts and sizes.
say "generating a $MESSAGES-message mbox"
python3 - "$MESSAGES" "$T/source.mbox" <<'PY'
import base64, random, sys, time
n, out = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(9)
words = ('the a of to and in is for on that with mail queue spool alias relay mailbox delivery server '
         'client message header body meeting report budget review release patch build test deploy '
         'customer invoice schedule thanks please update question answer attached draft final week '
         'monday friday project team issue ticket status network backup storage migration').split()
first = 'Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Oscar Peggy Trent Victor Walter'.split()
last = 'Smith Jones Brown Taylor Wilson Evans Thomas Roberts Walker Wright Green Hall Wood Clarke'.split()
domains = ['example.com', 'example.org', 'lists.example.net', 'corp.example', 'mail.example.co.uk']
lists = ['dev', 'announce', 'users', 'ops', 'security']
mailers = ['Mozilla Thunderbird 115.6.0', 'Mutt/2.2.12', 'Microsoft Outlook 16.0', 'Apple Mail (2.3731)', None]
def sentence(a, b):
    s = ' '.join(rnd.choice(words) for _ in range(rnd.randint(a, b)))
    return s[0].upper() + s[1:]
def para(size):
    lines, got = [], 0
    while got < size:
        ln = sentence(8, 13) + '.'
        if rnd.random() < 0.05: ln = '> ' + ln
        if rnd.random() < 0.005: ln = '>From the archives: a line that needed escaping'
        lines.append(ln); got += len(ln) + 1
    return '\n'.join(lines) + '\n'
t = 1700000000
total = 0
with open(out, 'w', newline='\n') as f:
    for i in range(n):
        t += rnd.randint(30, 900)
        asct = time.strftime('%a %b %e %H:%M:%S %Y', time.gmtime(t))
        rfc = time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(t))
        fn, ln, dom = rnd.choice(first), rnd.choice(last), rnd.choice(domains)
        snd = f'{fn.lower()}.{ln.lower()}@{dom}'
        subj = sentence(2, 9)
        h = [f'From {snd}  {asct}', f'Return-Path: <{snd}>',
             f'Received: from mx{rnd.randint(1, 9)}.{dom} (mx.{dom} [192.0.2.{rnd.randint(1, 254)}])\n'
             f'\tby mail.bench.test with ESMTPS id {rnd.getrandbits(48):012X}\n\tfor <user@bench.test>; {rfc}',
             f'Received: by mx.{dom} (Postfix, from userid {rnd.randint(1000, 1999)})\n\tid {rnd.getrandbits(40):010X}; {rfc}']
        if rnd.random() < 0.3:
            h.append(f'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={dom}; s=s1;\n'
                     f'\th=from:to:subject:date:message-id; bh={base64.b64encode(rnd.randbytes(32)).decode()};\n'
                     f'\tb={base64.b64encode(rnd.randbytes(128)).decode()}')
        h.append(f'From: "{fn} {ln}" <{snd}>' if rnd.random() < 0.8 else f'From: {snd}')
        h.append('To: User <user@bench.test>')
        if rnd.random() < 0.25:
            h.append('Cc: ' + ', '.join(f'{rnd.choice(first).lower()}@{rnd.choice(domains)}' for _ in range(rnd.randint(1, 4))))
        if rnd.random() < 0.08:
            subj = '=?UTF-8?B?' + base64.b64encode(('Caf\u00e9 r\u00e9sum\u00e9 ' + subj).encode()).decode() + '?='
        elif rnd.random() < 0.3:
            subj = 'Re: ' + subj
            h.append(f'In-Reply-To: <{t - 1000}.{i - 1}@{dom}>')
            h.append(f'References: <{t - 5000}.{max(0, i - 7)}@{dom}> <{t - 1000}.{i - 1}@{dom}>')
        lst = rnd.choice(lists) if rnd.random() < 0.3 else None
        if lst:
            subj = f'[{lst}] {subj}'
            h += [f'List-Id: {lst.capitalize()} list <{lst}.lists.example.net>', f'List-Unsubscribe: <mailto:{lst}-leave@lists.example.net>',
                  'Precedence: list']
        h += [f'Subject: {subj}', f'Date: {rfc}', f'Message-ID: <{t}.{i}@{dom}>']
        mailer = rnd.choice(mailers)
        if mailer: h.append(f'X-Mailer: {mailer}')
        h.append('MIME-Version: 1.0')
        if rnd.random() < 0.4: h.append('Status: RO')  # read earlier by a local client
        if rnd.random() < 0.05: h.append('X-Status: F')
        size = max(300, min(40000, int(rnd.lognormvariate(7.7, 0.6))))  # median ~2.2 KB
        kind = rnd.random()
        if kind < 0.75:
            h.append('Content-Type: text/plain; charset=us-ascii')
            body = para(size)
        else:
            b = f'=_b{i:06d}_{rnd.getrandbits(32):08x}'
            h.append(f'Content-Type: multipart/{"alternative" if kind < 0.92 else "mixed"}; boundary="{b}"')
            text = para(size)
            parts = [f'Content-Type: text/plain; charset=us-ascii\n\n{text}']
            if kind < 0.92:
                html = ''.join(f'<p>{x}</p>\n' for x in text.splitlines())
                parts.append(f'Content-Type: text/html; charset=us-ascii\n\n<html><body>\n{html}</body></html>\n')
            else:
                raw = base64.encodebytes(rnd.randbytes(rnd.randint(2000, 24000))).decode()
                parts.append(f'Content-Type: application/pdf; name="report-{i}.pdf"\n'
                             f'Content-Disposition: attachment; filename="report-{i}.pdf"\n'
                             f'Content-Transfer-Encoding: base64\n\n{raw}')
            body = 'This is a multi-part message in MIME format.\n\n' + ''.join(f'--{b}\n{p}\n' for p in parts) + f'--{b}--\n'
        msg = '\n'.join(h) + '\n\n' + body + '\n'
        f.write(msg); total += len(msg)
print(f'imap-users: mbox of {n} messages, {total} bytes ({total / n / 1024:.1f} KB a message)', file=sys.stderr)
PY

# ---- Accounts: real users, homes under $T, the same password for both servers.
say "creating $USERS accounts ${PREFIX}000.. and their passwords"
TAG=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
: > "$T/users.tsv"
for n in $(names); do
  useradd -M -N -s /usr/sbin/nologin -d "$T/home/$n" "$n"
  printf '%s\t%s\t%s\t%s\n' "$n" "pw-$TAG-$n" "$(id -u "$n")" "$(id -g "$n")" >> "$T/users.tsv"
done

free_ports() {
  python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}
read -r P_SMTP P_POP3 P_IMAP P_DC <<<"$(free_ports 4)"

# ---- mailtk's code: a copy of the bundle (dist/ is self-contained), so that a
# rebuild of the work tree during the run cannot change the daemon or the
# processes it starts for each user; a copy taken across a rebuild's swap of
# dist/ (its inode changed) is taken again.
snapshot_code() {
  local a b
  for _ in $(seq 20); do
    rm -rf "$T/code"
    mkdir -p "$T/code"
    a=$(stat -c %i dist 2>/dev/null || echo none)
    if cp -r bin dist "$T/code/" 2>/dev/null && b=$(stat -c %i dist 2>/dev/null) && [ "$a" = "$b" ] &&
      [ -f "$T/code/dist/sendmail.js" ]; then
      echo '{ "type": "module" }' > "$T/code/package.json"
      chmod -R a+rX "$T/code"
      DIST_TIME=$(date -u -r dist +%FT%TZ)
      return 0
    fi
    sleep 1
  done
  say "could not copy a stable dist/ (rebuilt all the time?)"
  return 1
}
snapshot_code
MAILTK=$T/code/bin

# ---- mailtk: runs as root, real accounts (user_db = system), indexes under the homes.
cat > "$M/etc/mailtk.conf" <<EOF
hostname = bench.test
queue_dir = $M/spool/mqueue
mail_spool_dir = $M/spool/mail
alias_file = $M/etc/aliases
alias_db = $M/etc/aliases.cdb
local_host_names_file = $M/etc/local-host-names
access_file = $M/etc/access
log_file = $M/log/maillog
pid_file = $M/run/mailtk.pid
user_db = system
passwd_file = $M/etc/passwd
tls_cert_file = $M/etc/tls/mailtk.crt
tls_key_file = $M/etc/tls/mailtk.key
dns_servers = 127.0.0.1:9
smtp_listen = 127.0.0.1:$P_SMTP
submission_listen =
pop3_listen = 127.0.0.1:$P_POP3
imap_listen = 127.0.0.1:$P_IMAP
mailbox_max_clients = 1000
mailbox_max_clients_per_ip = 1000
imap_folder_dir = \$HOME/mail
mailbox_index_dir = \$HOME/mail/.imap
EOF
touch "$M/etc/aliases"
while IFS=$'\t' read -r n pw _ _; do
  printf '%s\n' "$pw" | timeout 60 "$MAILTK/mailpasswd" -C "$M/etc/mailtk.conf" "$n" 2>/dev/null ||
    { say "mailpasswd failed for $n"; exit 1; }
done < "$T/users.tsv"

# ---- Dovecot: mbox INBOX in its own spool, passwd-file of the real uids, loopback port.
awk -F'\t' -v h="$D/home" '{ printf "%s:{PLAIN}%s:%s:%s::%s/%s::\n", $1, $2, $3, $4, h, $1 }' "$T/users.tsv" > "$D/passwd"
chown root:dovecot "$D/passwd"; chmod 640 "$D/passwd" # read by the auth process (user dovecot)
cat > "$D/dovecot.conf" <<EOF
base_dir = $D/run
state_dir = $D/state
log_path = $D/log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 100
mail_privileged_group = mail
mail_location = mbox:~/mail:INBOX=$D/spool/%u
default_process_limit = 1000
default_client_limit = 4000
passdb {
  driver = passwd-file
  args = $D/passwd
}
userdb {
  driver = passwd-file
  args = $D/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $P_DC
  }
  inet_listener imaps {
    port = 0
  }
}
EOF

# Fresh mbox copies and empty homes (no index) for one server.
reset_users() { # spool_dir home_dir
  local n uid gid
  while IFS=$'\t' read -r n _ uid gid; do
    rm -rf "${2:?}/$n"
    mkdir -m 700 "$2/$n"
    chown "$uid:$gid" "$2/$n"
    install -m 0600 -o "$uid" -g mail "$T/source.mbox" "$1/$n"
  done < "$T/users.tsv"
}
wait_port() {
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  say "nothing listens on 127.0.0.1:$1"; return 1
}
start_mailtk() {
  reset_users "$M/spool/mail" "$T/home"
  "$MAILTK/sendmail" -C "$M/etc/mailtk.conf" -bd 9<&-
  for _ in $(seq 300); do [ -s "$M/run/mailtk.pid" ] && break; sleep 0.1; done
  [ -s "$M/run/mailtk.pid" ] || { say "mailtk wrote no pid file; its log:"; tail -5 "$M/log/maillog" >&2 || true; return 1; }
  wait_port "$P_IMAP"
}
start_dovecot() {
  reset_users "$D/spool" "$D/home"
  dovecot -c "$D/dovecot.conf" 9<&- || { say "dovecot did not start; its log:"; tail -5 "$D/log" >&2 || true; return 1; }
  for _ in $(seq 300); do [ -s "$D/run/master.pid" ] && break; sleep 0.1; done
  wait_port "$P_DC"
}

cat > "$T/bench.json" <<EOF
{
  "users": "$T/users.tsv", "mbox": "$T/source.mbox", "messages": $MESSAGES, "concurrency": $CONCURRENCY, "rounds": $ROUNDS,
  "code": "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), dist/ built $DIST_TIME",
  "servers": {
    "mailtk": { "port": $P_IMAP, "pidfile": "$M/run/mailtk.pid" },
    "dovecot": { "port": $P_DC, "pidfile": "$D/run/master.pid" }
  }
}
EOF
: > "$T/results.jsonl"
last=0
for ((r = 0; r < ROUNDS; r++)); do
  if ((r > 0 && SECONDS + last > TIMEOUT)); then
    say "stopping after $r round(s): another would end after TIMEOUT=$TIMEOUT s (the last took $last s)"
    break
  fi
  started=$SECONDS
  if ((r % 2 == 0)); then order="mailtk dovecot"; else order="dovecot mailtk"; fi
  for s in $order; do
    say "round $((r + 1))/$ROUNDS: $s"
    "start_$s"
    budget=$(left)
    node bench/imap-users.mjs measure "$T/bench.json" "$s" "$r" "$budget" >> "$T/results.jsonl" 9<&- &
    DRIVER=$!
    wait "$DRIVER" || {
      say "the driver failed on $s; the end of its log:"
      if [ "$s" = mailtk ]; then tail -8 "$M/log/maillog" >&2 || true; else tail -8 "$D/log" >&2 || true; fi
      exit 1
    }
    DRIVER=
    if [ "$s" = mailtk ]; then stop_tree "$M/run/mailtk.pid"; else stop_tree "$D/run/master.pid"; fi
    left >/dev/null
  done
  last=$((SECONDS - started))
done
node bench/imap-users.mjs report "$T/bench.json" "$T/results.jsonl"
exit
}
