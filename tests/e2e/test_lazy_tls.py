"""OpenSSL is loaded only by a hop that needs it (issue 11 item 2).

postino is not linked with libssl/libcrypto (src/ossl.c opens them by
soname at the first TLS hop): a plain hop, and AUTH PLAIN/LOGIN over it
(base64 is our own), open neither; CRAM-MD5 opens libcrypto alone; a TLS
hop opens both. What the process opens is read with strace -e openat
(skipped without strace). Where OpenSSL cannot be loaded, a TLS hop
fails as a TLS failure does: the message is queued and the administrator
is told why (a mount namespace hides libssl; skipped without one)."""

import os
import re
import shutil
import subprocess

import pytest

from helpers import execute, expect_tempfail, message, token

RCPT = "rcpt@example.org"
STRACE = shutil.which("strace")


def run_traced(postino, tmp_path):
    """Run postino under strace; the result and the libraries it opened
    (the dynamic loader's and dlopen's openat calls)."""
    if STRACE is None:
        pytest.skip("needs strace")
    out = str(tmp_path / ("strace-" + token()))
    argv = [STRACE, "-f", "-qq", "-e", "trace=openat", "-o", out]
    env = postino.env()
    # LeakSanitizer cannot run under ptrace (make asan): leaks are the
    # other tests' business here.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [
        env.get("ASAN_OPTIONS", ""), "detect_leaks=0"]))
    res = execute(argv + postino.argv([RCPT]), message(token()),
                  env=env, cwd=postino.dir, log=postino.log)
    with open(out) as f:
        trace = f.read()
    libs = set(re.findall(r'"[^"]*/(lib(?:ssl|crypto)\.so[.0-9]*)"', trace))
    return res, {l.split(".so")[0] for l in libs}


def test_plain_hop_loads_no_openssl(postino, fault, tmp_path):
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    res, libs = run_traced(postino, tmp_path)
    res.ok()
    srv.wait_idle()
    assert len(srv.messages) == 1
    assert libs == set(), libs


@pytest.mark.parametrize("method", ["plain", "login"])
def test_plain_auth_over_plain_hop_loads_no_openssl(postino, fault, tmp_path,
                                                    method):
    srv = fault(auth={"user": "secret-pw"})
    postino.config(MailHub=srv.mailhub(), AuthUser="user",
                   AuthPass="secret-pw", AuthAllowPlaintext="YES",
                   AuthMethod=method)
    res, libs = run_traced(postino, tmp_path)
    res.ok()
    s = srv.wait_idle()[0]
    assert [(a[0], a[3]) for a in s.auth] == [(method.upper(), True)]
    assert libs == set(), libs


def test_cram_md5_loads_libcrypto_only(postino, fault, tmp_path):
    srv = fault(auth={"user": "secret-pw"})
    postino.config(MailHub=srv.mailhub(), AuthUser="user",
                   AuthPass="secret-pw", AuthAllowPlaintext="YES",
                   AuthMethod="cram-md5")
    res, libs = run_traced(postino, tmp_path)
    res.ok()
    assert [(a[0], a[3]) for a in srv.wait_idle()[0].auth] == [
        ("CRAM-MD5", True)]
    assert libs == {"libcrypto"}, libs


def test_tls_hop_loads_openssl(postino, fault, certs, tmp_path):
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key)
    postino.config(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                   TLS_CA_File=certs.ca.cert)
    res, libs = run_traced(postino, tmp_path)
    res.ok()
    assert srv.wait_idle()[0].tls
    assert libs == {"libssl", "libcrypto"}, libs


def lib_path(soname):
    """The file the dynamic loader would open for soname."""
    out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True,
                         text=True).stdout
    m = re.search(re.escape(soname) + r" \(libc6,x86-64\) => (\S+)",
                  out) or re.search(re.escape(soname) + r" .*=> (\S+)", out)
    return os.path.realpath(m.group(1)) if m else None


def run_without(postino, soname):
    """Run postino with soname hidden (a bind mount of /dev/null in a
    mount namespace of this run only)."""
    unshare = shutil.which("unshare")
    lib = lib_path(soname)
    if os.geteuid() != 0 or unshare is None or lib is None:
        pytest.skip("needs root, unshare(1) and ldconfig's %s" % soname)
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespace here: %s" % probe.stderr)
    script = 'mount --bind /dev/null "$1" && shift && exec "$@"'
    argv = [unshare, "-m", "sh", "-c", script, "sh", lib] + \
        postino.argv([RCPT])
    return execute(argv, message(token()), env=postino.env(),
                   cwd=postino.dir, log=postino.log)


def test_openssl_missing_queues_the_message(postino, fault, certs):
    """libssl hidden: the TLS hop fails cleanly, the message is queued and
    the administrator told; nothing crashes."""
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key)
    postino.config(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                   TLS_CA_File=certs.ca.cert)
    res = run_without(postino, "libssl.so.3")
    expect_tempfail(res, postino, mentions="OpenSSL unavailable",
                    admin=True)
    s = srv.wait_idle()[0]
    assert s.saw("STARTTLS") and not s.tls and not s.saw("MAIL")


def test_libcrypto_missing_cram_md5_queues(postino, fault):
    """libcrypto hidden: CRAM-MD5 cannot be answered; the exchange is
    cancelled, the message queued and the administrator told."""
    srv = fault(auth={"user": "secret-pw"})
    postino.config(MailHub=srv.mailhub(), AuthUser="user",
                   AuthPass="secret-pw", AuthAllowPlaintext="YES",
                   AuthMethod="cram-md5")
    res = run_without(postino, "libcrypto.so.3")
    expect_tempfail(res, postino, mentions="OpenSSL unavailable",
                    admin=True)
    s = srv.wait_idle()[0]
    assert not any(a[3] for a in s.auth) and not s.saw("MAIL"), s.commands
