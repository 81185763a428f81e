#!/bin/sh
# tests/static/static.sh: `make static`, the static checks of src/*.c.
# cppcheck (suppressions: tests/static/cppcheck.suppress) and then
# clang-tidy with the analyzer (checks: .clang-tidy); any finding fails.
#
#   sh tests/static/static.sh DEFS...
#
# The arguments are the Makefile's DEFS, so that both tools see the
# program that gcc builds; PKG_CFLAGS (from the Makefile, else asked of
# pkg-config) adds the OpenSSL and libbsd-overlay flags for clang-tidy.
# cppcheck gets no system headers: its posix, gnu, bsd and openssl
# libraries describe those functions instead.
set -u
cd "$(dirname "$0")/../.." || exit 1

if [ -z "${PKG_CFLAGS:-}" ]; then
	PKG_CFLAGS=$(${PKG_CONFIG:-pkg-config} --cflags openssl \
	    libbsd-overlay) || exit 1
fi

echo "== cppcheck"
# C11 is the newest cppcheck 2.10 knows; C17 only fixed defects of it.
cppcheck -q --std=c11 --library=posix,gnu,bsd,openssl \
    --enable=warning,style,portability,performance \
    --error-exitcode=1 --inline-suppr \
    --suppressions-list=tests/static/cppcheck.suppress \
    -Isrc "$@" src/*.c || exit 1

echo "== clang-tidy"
# Two files at a time. analyzer.h goes into every file but log.c, which
# defines error_set. Each file's report is printed whole, without the
# count of warnings clang generated and the checks then dropped.
# shellcheck disable=SC2016,SC2086
printf '%s\n' src/*.c | xargs -P2 -I{} sh -c '
	f=$1
	shift
	inc="-include tests/static/analyzer.h"
	[ "$f" = src/log.c ] && inc=
	out=$(clang-tidy --quiet "$f" -- $inc "$@" 2>&1)
	rc=$?
	[ -z "$out" ] ||
	    printf "%s\n" "$out" | grep -v "warnings\{0,1\} generated\.$"
	exit $rc' sh {} -std=c17 -Isrc $PKG_CFLAGS "$@" || exit 1
echo "== static: no findings"
