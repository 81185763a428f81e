#!/bin/sh
# install-deps.sh: install the Debian packages that building and testing
# postino need (make deps, run by make check). Quiet when nothing is
# missing. As root it installs what is missing without asking (no stdin
# needed: CI runs it with none); otherwise it lists what is missing and
# exits 1.
#
# util-linux (unshare, setpriv), mount and passwd (useradd) are in every
# Debian 12 base system, but not necessarily in a container image; the
# privilege tests need them (and skip, saying so, where they cannot work).
#
# postfix is preseeded to "No configuration": the tests start their own
# private instance and the system one is never configured or started.
set -eu

PACKAGES="
gcc
make
pkg-config
libssl-dev
libbsd-dev
libcmocka-dev
openssl
postfix
libsasl2-modules
libsasl2-modules-db
sasl2-bin
python3
python3-aiosmtpd
python3-pytest
mandoc
time
procps
strace
util-linux
mount
passwd
clang
libclang-rt-14-dev
monitoring-plugins-standard
pflogsumm
python3-prometheus-client
php-cli
bsd-mailx
git-email
libmailtools-perl
cppcheck
clang-tidy
debhelper
dpkg-dev
fakeroot
lintian
debootstrap
systemd
"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null ||
	    true)
	case "$status" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages:$missing" >&2
	echo "install-deps: as root: apt-get install$missing" >&2
	exit 1
fi

echo "install-deps: installing$missing"
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
# shellcheck disable=SC2086 # the list is meant to split
apt-get install -y -q --no-install-recommends $missing </dev/null
