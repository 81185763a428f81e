"""What standard input may not do, end to end (issue 9 items 6, 9, 11, 18):
smuggle a second SMTP transaction past postino with bare CRs, keep postino
waiting after the final ".", outgrow MaxMessageSize, forge log lines."""

import os
import subprocess
import time

import pytest

from helpers import parse, token

RCPT = "rcpt@example.org"
EVIL = "evil@example.net"


def wire_has_no_bare_cr_or_lf(wire):
    rest = wire.replace(b"\r\n", b"")
    return b"\r" not in rest and b"\n" not in rest


# -- item 9: SMTP smuggling ----------------------------------------------

SMUGGLE = (b"hello\r.\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
           b"smuggled\r\n" % (EVIL.encode(), EVIL.encode()))


@pytest.mark.parametrize("flags", [["-i"], []])
def test_bare_cr_dot_cannot_smuggle(postino, fault, flags):
    """Body bytes "hello\\r.\\r\\n" followed by commands: the hub gets one
    transaction, its DATA has no bare CR or LF, and the "." line is either
    the end of the message (without -i) or dot-stuffed data (-i)."""
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    tok = token()
    data = b"Subject: %s\n\n" % tok.encode() + SMUGGLE
    postino.run(flags + [RCPT], data).ok()
    srv.wait_idle()
    assert len(srv.sessions) == 1
    s = srv.sessions[0]
    assert s.verbs().count("MAIL") == 1, s.commands
    assert s.verbs().count("DATA") == 1, s.commands
    assert len(s.data_received) == 1
    wire = s.data_received[0]
    assert wire_has_no_bare_cr_or_lf(wire), wire
    assert srv.messages[0].rcpts == [RCPT]
    body = parse(srv.messages[0].content).body
    if flags:
        assert b"\r\nhello\r\n..\r\nMAIL FROM:" in wire, wire
        assert body.startswith(b"hello\r\n.\r\nMAIL FROM:"), body
    else:
        assert body == b"hello\r\n", body
        assert b"MAIL FROM" not in wire


def test_bare_cr_dot_cannot_smuggle_through_bs(postino, fault):
    """The same bytes inside a -bs DATA: one transaction at the hub."""
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    dialogue = (b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\n"
                b"DATA\r\nSubject: s\r\n\r\n%s.\r\nQUIT\r\n"
                % (RCPT.encode(), SMUGGLE))
    res = postino.run(["-bs"], dialogue)
    assert res.rc == 0 and res.stderr == b"", res.describe()
    assert b"250 2.0.0 Ok: queued as" in res.stdout, res.describe()
    srv.wait_idle()
    assert len(srv.sessions) == 1
    s = srv.sessions[0]
    assert s.verbs().count("MAIL") == 1, s.commands
    assert len(s.data_received) == 1
    assert wire_has_no_bare_cr_or_lf(s.data_received[0])
    assert b"\r\nhello\r\n..\r\nMAIL FROM:" in s.data_received[0]


# -- item 6: one drain, one deadline --------------------------------------

DRAIN_S = 5     # MESSAGE_DRAIN_MS in src/postino.h, postino(8) "Message"


def test_writer_holding_stdin_open_does_not_deadlock(postino, fault):
    """A writer that keeps stdin open after the lone "." and waits for
    sendmail to exit: postino stops reading within the drain deadline,
    sends the message and exits 0."""
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    tok = token()
    proc = subprocess.Popen([postino.binary, "-C", postino.config_path,
                             RCPT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=postino.env(), cwd=postino.dir)
    try:
        start = time.monotonic()
        proc.stdin.write(b"Subject: %s\n\nbody\n.\n" % tok.encode())
        proc.stdin.flush()
        # stdin stays open: wait for the exit as such a writer would.
        rc = proc.wait(timeout=DRAIN_S + 10)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert rc == 0 and out == b"" and err == b"", (rc, out, err)
    assert took < DRAIN_S + 5, took
    srv.wait_idle()
    assert len(srv.messages) == 1
    assert parse(srv.messages[0].content).one("Subject") == tok
    assert parse(srv.messages[0].content).body == b"body\r\n"
