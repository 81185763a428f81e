#!/bin/sh
# mkroot.sh CACHE.tar: a throwaway Debian 12 root for tests/e2e/test_deb.py,
# built once and cached as a tarball (make clean removes it). debootstrap
# minbase from the mirror this machine's apt already uses, then apt's
# indexes and the .debs the test installs (ssmtp, postino's libraries)
# downloaded into the root, so that a test run needs no network.
set -eu

out=$1
suite=bookworm
# The mirror in /etc/apt/sources.list(.d), deb822 or one-line style.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -n 's|^URIs: *\(http[^ ]*/debian\)/*$|\1|p;
        s|^deb  *\(\[[^]]*\] *\)\{0,1\}\(http[^ ]*/debian\)/* .*|\2|p' |
    head -n 1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

tmp=$(mktemp -d "${out%/*}/debroot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$tmp/log" 2>&1 || {
	tail -n 20 "$tmp/log" >&2
	exit 1
}
# Not our host's problem: no daemons start inside (policy-rc.d 101).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
unshare --mount --fork chroot "$root" sh -ec '
	mount -t proc proc /proc
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get clean
	apt-get install -q -y --download-only ssmtp libssl3 libbsd0
	umount /proc' >"$tmp/log" 2>&1 || {
	tail -n 20 "$tmp/log" >&2
	exit 1
}
tar -C "$root" -cf "$tmp/root.tar" .
mv "$tmp/root.tar" "$out"
