"""What standard input may not do, end to end (issue 9 items 6, 9, 11, 18):
smuggle a second SMTP transaction past postino with bare CRs, keep postino
waiting after the final ".", outgrow MaxMessageSize, forge log lines."""

import os
import re
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


# -- item 18: MaxMessageSize ---------------------------------------------

LIMIT = 1000


def sized_message(size):
    """A CRLF message of exactly size bytes (the size MaxMessageSize
    counts: the caller's message, line ends as CRLF)."""
    head = b"Subject: size\r\nTo: %s\r\n\r\n" % RCPT.encode()
    filler = size - len(head) - 2
    body = b"".join(b"x" * min(70, filler - i) + b"\r\n"
                    for i in range(0, filler, 72))
    msg = head + body
    msg = msg[:-2] + b"y" * (size - len(msg) - 2) + b"\r\n"
    if len(msg) != size:
        msg = head + b"z" * (size - len(head) - 2) + b"\r\n"
    assert len(msg) == size
    return msg


def spooled_files(postino):
    """Every regular file under the queue directory but lock files."""
    out = []
    for d, _, files in os.walk(postino.queue_dir):
        out += [os.path.join(d, f) for f in files if not f.endswith(".lock")]
    return out


def test_message_at_the_limit_is_sent(postino, fault):
    srv = fault()
    postino.config(MailHub=srv.mailhub(), MaxMessageSize=LIMIT)
    postino.run([RCPT], sized_message(LIMIT)).ok()
    srv.wait_idle()
    assert len(srv.messages) == 1


def test_message_over_the_limit_is_refused(postino, fault):
    """limit + 1 bytes: exit 65, one stderr line naming MaxMessageSize,
    nothing sent, nothing queued, and stdin drained (the writer of a far
    bigger input gets no EPIPE)."""
    srv = fault()
    postino.config(MailHub=srv.mailhub(), MaxMessageSize=LIMIT)
    res = postino.run([RCPT], sized_message(LIMIT + 1))
    assert res.rc == 65, res.describe()
    assert res.stdout == b""
    lines = res.err_lines()
    assert len(lines) == 1 and "MaxMessageSize" in lines[0], res.describe()
    assert postino.queue_entries() == []
    assert spooled_files(postino) == []
    srv.wait_idle()
    assert srv.sessions == [], "nothing may be sent"


def test_over_the_limit_writer_gets_no_epipe(postino, fault):
    srv = fault()
    postino.config(MailHub=srv.mailhub(), MaxMessageSize="1k")
    writer = subprocess.Popen(
        ["/usr/bin/python3", "-c",
         "import sys\n"
         "sys.stdout.buffer.write(b'Subject: s\\n\\n' + "
         "b'x' * 79 + b'\\n') \n"
         "for i in range(20000):\n"
         "    sys.stdout.buffer.write(b'y' * 79 + b'\\n')\n"
         "sys.stdout.flush()\n"],
        stdout=subprocess.PIPE)
    try:
        proc = subprocess.run([postino.binary, "-C", postino.config_path,
                               RCPT], stdin=writer.stdout,
                              capture_output=True, env=postino.env(),
                              cwd=postino.dir, timeout=30)
    finally:
        writer.stdout.close()
        wrc = writer.wait(timeout=30)
    assert proc.returncode == 65, proc.stderr
    assert b"MaxMessageSize" in proc.stderr
    assert wrc == 0, "the writer got EPIPE: stdin was not drained"
    assert postino.queue_entries() == []
    srv.wait_idle()
    assert srv.sessions == []


def test_bs_announces_and_enforces_size(postino, fault):
    srv = fault()
    postino.config(MailHub=srv.mailhub(), MaxMessageSize=LIMIT)
    over = sized_message(LIMIT + 1)
    ok = sized_message(LIMIT)
    dialogue = (b"EHLO x\r\n"
                b"MAIL FROM:<a@example.org> SIZE=%d\r\n"
                b"MAIL FROM:<a@example.org> SIZE=%d\r\n"
                b"RCPT TO:<%s>\r\nDATA\r\n%s.\r\n"
                b"MAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                b"%s.\r\nQUIT\r\n"
                % (LIMIT + 1, LIMIT, RCPT.encode(), over, RCPT.encode(), ok))
    res = postino.run(["-bs"], dialogue)
    assert res.rc == 0 and res.stderr == b"", res.describe()
    replies = res.out.split("\r\n")
    assert "250-SIZE %d" % LIMIT in replies, replies
    assert replies.count("250 2.1.0 Ok") == 2, replies
    assert sum(r.startswith("552 5.3.4") for r in replies) == 2, replies
    assert sum(r.startswith("250 2.0.0 Ok: queued as") for r in replies) \
        == 1, replies
    srv.wait_idle()
    assert len(srv.messages) == 1


def test_default_limit_is_announced(postino):
    postino.config(MailHub="127.0.0.1:9")
    res = postino.run(["-bs"], b"EHLO x\r\nQUIT\r\n")
    assert "250-SIZE %d\r\n" % (50 * 1024 * 1024) in res.out, res.describe()
    postino.config(MailHub="127.0.0.1:9", MaxMessageSize=0)
    res = postino.run(["-bs"], b"EHLO x\r\nQUIT\r\n")
    assert "SIZE" not in res.out, res.describe()


# -- item 11: log forging -------------------------------------------------

FORGED = "0123456789: to=<victim@example.org>, status=sent (forged)"


def test_argv0_newline_forges_no_log_line(postino, fault):
    """argv[0] names the ident's service part: a newline in it must not
    start a line of its own in LogFile, nor can it pose as another
    service or a queue id (anything but a plain name gives sendmail)."""
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    argv0 = "sendmail\nDec  1 00:00:00 host postino[1]: " + FORGED
    tok = token()
    before = os.path.getsize(postino.logfile) \
        if os.path.exists(postino.logfile) else 0
    proc = subprocess.run([argv0, "-C", postino.config_path, RCPT],
                          executable=postino.binary,
                          input=b"Subject: %s\n\nbody\n" % tok.encode(),
                          capture_output=True, env=postino.env(),
                          cwd=postino.dir, timeout=30)
    assert proc.returncode == 0, proc.stderr
    srv.wait_idle()
    assert len(srv.messages) == 1
    with open(postino.logfile, "rb") as f:
        f.seek(before)
        lines = f.read().decode(errors="replace").splitlines()
    assert lines, "postino logged nothing"
    for line in lines:
        # Every line is one of ours: stamp, host, ident, pid.
        assert re.match(r"\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ postino/"
                        r"(sendmail|pickup|qmgr|smtp)\[\d+\]: ", line), line
        assert "Dec  1 00:00:00 host" not in line, line
        assert not line.startswith(FORGED[:10]), line
        assert not line.startswith("Dec  1 00:00:00"), line
