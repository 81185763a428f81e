#!/bin/sh
# demo.sh (make demo): one cron-like message through ./postino to a
# throwaway hub on 127.0.0.1, then what the hub received and the log line.
# The hub is the e2e suite's fault server in plain-accept mode; it and the
# temporary directory are removed whatever happens. Works as root and as
# an ordinary user.
set -u

cd "$(dirname "$0")/.." || exit 1
PYTHON=/usr/bin/python3
BIN=${POSTINO_BIN:-./postino}

if [ ! -x "$BIN" ]; then
	echo "demo: $BIN is missing; run make first" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/postino-demo.XXXXXX") || exit 1
hub_pid=""
cleanup() {
	if [ -n "$hub_pid" ]; then
		kill "$hub_pid" 2>/dev/null
		wait "$hub_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

mkdir "$tmp/spool" "$tmp/queue"
: >"$tmp/revaliases"

# The hub: accepts everything, saves each message and its envelope.
"$PYTHON" tests/e2e/faultserver.py --portfile "$tmp/port" \
    --spool "$tmp/spool" --lifetime 120 </dev/null &
hub_pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$hub_pid" 2>/dev/null; then
		echo "demo: the hub did not start" >&2
		exit 1
	fi
	sleep 0.1
done
port=$(cat "$tmp/port")

cat >"$tmp/ssmtp.conf" <<EOF
MailHub=127.0.0.1:$port
HostName=demo-host.example
RewriteDomain=example.org
LogFile=$tmp/postino.log
QueueDir=$tmp/queue
RevaliasesFile=$tmp/revaliases
Timeout=10
EOF

# What Debian's cron pipes into sendmail (LF line ends).
printf '%s\n' \
    'From: root (Cron Daemon)' \
    'To: root' \
    'Subject: Cron <root@demo-host> run-parts --report /etc/cron.hourly' \
    'MIME-Version: 1.0' \
    'Content-Type: text/plain; charset=UTF-8' \
    'Content-Transfer-Encoding: 8bit' \
    'X-Cron-Env: <SHELL=/bin/sh>' \
    'X-Cron-Env: <HOME=/root>' \
    'X-Cron-Env: <PATH=/usr/bin:/bin>' \
    'X-Cron-Env: <LOGNAME=root>' \
    '' \
    '/etc/cron.hourly/backup:' \
    'backup done: 3 files, 0 errors' >"$tmp/message"

echo "== the hub: 127.0.0.1:$port"
echo "== config ($tmp/ssmtp.conf):"
sed 's/^/   /' "$tmp/ssmtp.conf"
echo "== as cron runs it:"
echo "   $BIN -C $tmp/ssmtp.conf -FCronDaemon -i -B8BITMIME -oem root"
"$BIN" -C "$tmp/ssmtp.conf" -FCronDaemon -i -B8BITMIME -oem root \
    <"$tmp/message" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
echo "== exit status: $rc"
for f in stdout stderr; do
	if [ -s "$tmp/$f" ]; then
		echo "== postino's $f:"
		sed 's/^/   /' "$tmp/$f"
	fi
done

found=""
for j in "$tmp"/spool/*.json; do
	[ -e "$j" ] || continue
	found=1
	echo "== the hub received (envelope):"
	"$PYTHON" - "$j" <<'EOF'
import json, sys
e = json.load(open(sys.argv[1]))
print("   MAIL FROM:<%s>%s" % (e["mail_from"],
      " " + e["mail_params"] if e["mail_params"] else ""))
for r in e["rcpts"]:
    print("   RCPT TO:<%s>" % r)
EOF
	echo "== the hub received (message, CRLF shown as line ends):"
	tr -d '\r' <"${j%.json}.eml" | sed 's/^/   /'
done
[ -n "$found" ] || echo "== the hub received nothing"

echo "== postino's log ($tmp/postino.log):"
if [ -s "$tmp/postino.log" ]; then
	sed 's/^/   /' "$tmp/postino.log"
else
	echo "   (empty)"
fi

[ "$rc" -eq 0 ] && [ -n "$found" ]
