#!/bin/sh
# bench.sh (make bench): postino beside ssmtp and msmtp, from Debian's
# packages unpacked (never installed) under $(BUILD)/bench/. Prints figures;
# it is not a test. Everything runs on loopback: Postfix's smtp-sink as
# the hub, and with root a private Postfix for STARTTLS + AUTH figures.
# bench/refclient.c (built by the Makefile's bench target into $B) is the
# floor (bench/selftest.py checks what it sends). Arguments go to
# bench/bench.py (--runs, --only 1,2,..., --help).
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
B="$BUILD/bench"
mkdir -p "$B/debs" "$B/pkgroot"

have_tools() {
	[ -x "$B/pkgroot/usr/sbin/ssmtp" ] && [ -x "$B/pkgroot/usr/bin/msmtp" ]
}

# ssmtp, msmtp and the libraries of theirs that this machine lacks.
fetch() {
	pkgs="ssmtp msmtp"
	for p in $(apt-cache depends --recurse --no-recommends --no-suggests \
	    --no-conflicts --no-breaks --no-replaces --no-enhances \
	    --no-pre-depends ssmtp msmtp 2>/dev/null | grep '^lib' |
	    sort -u); do
		case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" \
		    2>/dev/null || true)" in
		ii*) ;;
		*) pkgs="$pkgs $p" ;;
		esac
	done
	# shellcheck disable=SC2086
	(cd "$B/debs" && apt-get download -q $pkgs </dev/null)
}

if ! have_tools; then
	echo "bench: fetching ssmtp and msmtp (apt-get download, not installed)"
	if ! fetch >"$B/fetch.log" 2>&1; then
		if [ "$(id -u)" -eq 0 ]; then
			apt-get update -q </dev/null >>"$B/fetch.log" 2>&1 || true
			fetch >>"$B/fetch.log" 2>&1 || true
		fi
	fi
	for d in "$B"/debs/*.deb; do
		[ -e "$d" ] && dpkg -x "$d" "$B/pkgroot"
	done
	have_tools || echo "bench: ssmtp/msmtp unavailable (see $B/fetch.log);" \
	    "showing postino alone"
fi

# The last output stays in $B/last.txt (README's figures come from it).
/usr/bin/python3 bench/bench.py --postino "${POSTINO_BIN:-./postino}" \
    --ref "$B/refclient" --root "$B/pkgroot" --work "$B" "$@" 2>&1 |
    tee "$B/last.txt"
