"""Memory does not grow with the message: a 20 MiB message is relayed with a
peak RSS under 8 MiB. This is a memory assertion, not a timing one."""

import hashlib

import pytest

from helpers import parse

RCPT = "rcpt@example.org"
SIZE = 20 * 1024 * 1024
RSS_LIMIT_KIB = 8 * 1024


def big_message(size):
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" \
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ.-\n"
    body = line * (size // len(line) + 1)
    return b"Subject: big\nTo: rcpt@example.org\n\n" + body[:size - 1] + b"\n"


def test_20mib_message_small_rss(postino, fault, asan):
    data = big_message(SIZE)
    srv = fault()
    postino.config(MailHub=srv.mailhub(), Timeout=60)
    res = postino.run([RCPT], data, measure_rss=True, timeout=120)
    res.ok()
    srv.wait_idle(30)
    assert len(srv.messages) == 1
    got = parse(srv.messages[0].content).body
    want = data.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n")
    assert len(got) == len(want)
    assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest()
    if asan:
        pytest.skip("ASan build: RSS is the sanitizer's, not postino's "
                    "(relay itself checked)")
    assert res.maxrss_kib < RSS_LIMIT_KIB, (
        "peak RSS %d KiB for a %d MiB message (limit %d KiB)"
        % (res.maxrss_kib, SIZE >> 20, RSS_LIMIT_KIB))
