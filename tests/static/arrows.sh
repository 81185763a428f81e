#!/bin/sh
# tests/static/arrows.sh: the dependency arrows of src/ (issue 8), read
# from the built objects with nm(1), so that what is checked is what the
# linker sees, not what the sources happen to mention:
#   - OpenSSL's TLS and tls_* are reached only from conn.c and tls.c;
#   - smtp_* is called only from deliver.c (the settlement) and smtp.c
#     (postino check --hub probes through deliver_probe);
#   - no cycle between source files (a calls b and b, maybe through
#     others, calls a).
#
#   sh tests/static/arrows.sh [BUILD_DIR]     (default: build)
# Prints the file graph; exits 1 on a broken arrow.
set -u
cd "$(dirname "$0")/../.." || exit 1
build=${1:-build}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

for o in "$build"/*.o; do
	m=$(basename "$o" .o)
	nm "$o" | awk -v m="$m" '$2 ~ /^[TDBR]$/ { print $3, m }' \
	    >>"$tmp/defs"
	nm "$o" | awk -v m="$m" '$1 == "U" { print m, $2 }' >>"$tmp/uses"
done
# "user owner" lines: which file calls into which other file.
awk 'NR == FNR { def[$1] = $2; next }
    ($2 in def) && def[$2] != $1 { print $1, def[$2] }' \
    "$tmp/defs" "$tmp/uses" | sort -u >"$tmp/edges"

bad=0
broken() {
	echo "arrows: $*" >&2
	bad=1
}
awk '$2 ~ /^tls_/ || $2 ~ /^SSL_/' "$tmp/uses" |
    awk '$1 != "conn" && $1 != "tls" { print $1, $2 }' >"$tmp/x"
[ -s "$tmp/x" ] && broken "TLS called outside conn.c/tls.c: $(cat "$tmp/x")"
awk '$2 ~ /^smtp_/ && $1 != "deliver" && $1 != "smtp" { print $1, $2 }' \
    "$tmp/uses" >"$tmp/x"
[ -s "$tmp/x" ] && broken "smtp_* called outside deliver.c: $(cat "$tmp/x")"
# tsort(1) reports a cycle in the graph on stderr.
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/cycle" || [ -s "$tmp/cycle" ]
then
	broken "a cycle between source files: $(tr '\n' ' ' <"$tmp/cycle")"
fi
awk '{ e[$1] = e[$1] " " $2 } END { for (m in e) print m " ->" e[m] }' \
    "$tmp/edges" | sort
[ "$bad" -eq 0 ] && echo "== arrows: hold"
exit "$bad"
