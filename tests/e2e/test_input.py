"""Shapes of standard input, checked byte for byte on the wire of the fault
server: line ends, the lone dot with and without -i, "..x" lines, no body,
no header, no final newline, mbox From_ lines, bare CR (a line end), NUL,
long lines."""

import pytest

from helpers import parse, token

RCPT = "rcpt@example.org"


def relay(postino, fault, data, args=(RCPT,)):
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    res = postino.run(list(args), data)
    res.ok()
    srv.wait_idle()
    assert len(srv.messages) == 1, res.describe()
    return srv.messages[0]


def assert_wire_clean(m):
    """CRLF only: no bare LF, no CR doubled in front of a line end."""
    bare = m.wire.replace(b"\r\n", b"")
    assert b"\n" not in bare, m.wire[:400]
    assert b"\r\r\n" not in m.wire
    assert m.wire.endswith(b"\r\n")


@pytest.mark.parametrize("shape", ["lf", "crlf", "mixed"])
def test_line_endings(postino, fault, shape):
    tok = token()
    head = "Subject: %s\nTo: %s\n" % (tok, RCPT)
    body = "one\ntwo\n\nfour\n"
    if shape == "lf":
        data = head + "\n" + body
    elif shape == "crlf":
        data = (head + "\n" + body).replace("\n", "\r\n")
    else:   # PHP >= 8: CRLF headers, LF body
        data = head.replace("\n", "\r\n") + "\r\n" + body
    m = relay(postino, fault, data.encode())
    assert_wire_clean(m)
    p = parse(m.content)
    assert p.one("Subject") == tok
    assert p.body == b"one\r\ntwo\r\n\r\nfour\r\n"


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_lone_dot_ends_input_without_i(postino, fault, eol):
    data = ("Subject: dot\n\nbefore\n.\nafter\n").replace("\n", eol)
    m = relay(postino, fault, data.encode())
    assert parse(m.content).body == b"before\r\n"
    assert b"after" not in m.wire


def test_lone_dot_is_data_with_i(postino, fault):
    data = b"Subject: dot\n\nbefore\n.\nafter\n"
    for flag in ("-i", "-oi"):
        m = relay(postino, fault, data, args=(flag, RCPT))
        assert parse(m.content).body == b"before\r\n.\r\nafter\r\n"
        assert b"\r\n..\r\nafter\r\n" in m.wire   # dot-stuffed on the wire


@pytest.mark.parametrize("flag", [[], ["-i"]])
def test_double_dot_lines_kept(postino, fault, flag):
    data = b"Subject: dots\n\n..x\n...\n.y\n"
    m = relay(postino, fault, data, args=flag + [RCPT])
    assert parse(m.content).body == b"..x\r\n...\r\n.y\r\n"
    assert m.wire.endswith(b"\r\n\r\n...x\r\n....\r\n..y\r\n")


def test_headers_only_no_body(postino, fault):
    m = relay(postino, fault, b"Subject: no body\nTo: rcpt@example.org\n")
    p = parse(m.content)
    assert p.one("Subject") == "no body"
    assert p.body == b""
    assert b"\r\n\r\n" in m.content


def test_empty_input(postino, fault):
    m = relay(postino, fault, b"")
    p = parse(m.content)
    for name in ("Received", "Date", "Message-ID", "From"):
        assert len(p.get(name)) == 1, p.headers
    assert p.body == b""


def test_no_header_block(postino, fault):
    m = relay(postino, fault, b"hello world\nsecond line\n")
    p = parse(m.content)
    for name in ("Received", "Date", "Message-ID", "From"):
        assert len(p.get(name)) == 1, p.headers
    assert p.body == b"hello world\r\nsecond line\r\n"


def test_header_ends_at_first_non_header_line(postino, fault):
    m = relay(postino, fault, b"Subject: s\nthis is body text\nmore\n")
    p = parse(m.content)
    assert p.one("Subject") == "s"
    assert p.body == b"this is body text\r\nmore\r\n"


def test_no_final_newline(postino, fault):
    m = relay(postino, fault, b"Subject: s\n\nfirst\nlast")
    assert parse(m.content).body == b"first\r\nlast\r\n"
    assert_wire_clean(m)


def test_mbox_from_line_dropped(postino, fault):
    data = b"From someone@example.org Mon Jan  2 15:04:05 2006\n" \
           b"Subject: s\n\nbody\n"
    m = relay(postino, fault, data)
    assert b"someone@example.org" not in m.content
    assert parse(m.content).one("Subject") == "s"


def test_bare_cr_ends_a_line(postino, fault):
    m = relay(postino, fault, b"Subject: s\n\na\rb\nc\r\r\nd\n")
    assert_wire_clean(m)
    assert b"\r" not in m.wire.replace(b"\r\n", b""), m.wire
    assert parse(m.content).body == b"a\r\nb\r\nc\r\nd\r\n"


def test_nul_bytes_removed(postino, fault):
    m = relay(postino, fault, b"Subject: s\n\na\0b\n")
    assert parse(m.content).body == b"ab\r\n"


def test_eight_bit_body_untouched(postino, fault):
    body = "caf\u00e9 \u2014 na\u00efve\n".encode()
    m = relay(postino, fault, b"Subject: s\n\n" + body)
    assert parse(m.content).body == body.replace(b"\n", b"\r\n")


def test_long_lines_split(postino, fault):
    long = b"L" * 2500
    m = relay(postino, fault, b"Subject: s\n\n" + long + b"\nend\n")
    assert_wire_clean(m)
    lines = m.wire.split(b"\r\n")
    assert max(len(l) for l in lines) <= 998 + 1   # +1: a stuffed dot
    body = parse(m.content).body
    assert body.replace(b"\r\n", b"") == long + b"end"
