# Sourced by the benchmarks that start a mailtk daemon in a scratch folder:
# bench_conf WORK prints the mailtk.conf keys they share (every file and
# folder under WORK, nothing under /etc/mail or /var/spool); each script
# appends its own listeners, resolver and extras after it.
bench_conf() {
  local w=$1
  cat <<CONF
hostname = bench.test
queue_dir = $w/q
mail_spool_dir = $w/mail
alias_file = $w/aliases
alias_db = $w/aliases.cdb
log_file = $w/maillog
pid_file = $w/mailtk.pid
user_db = $w/passwd
passwd_file = $w/mail-passwd
tls_cert_file = $w/tls.crt
tls_key_file = $w/tls.key
CONF
}
