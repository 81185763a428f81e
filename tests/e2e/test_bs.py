"""sendmail -bs driven the way Symfony Mailer's SendmailTransport (and so
Laravel and SwiftMailer) drives it (callers.md 1 rows 8-10, 3.8): start
the process, look at stderr at once without blocking (any byte there and
Symfony gives up), HELO [127.0.0.1], MAIL, RCPT, DATA, a dot-stuffed body,
"\\r\\n.\\r\\n", QUIT. What reaches the fault server must be un-stuffed and
rewritten like any other submission."""

import os
import re
import select
import time

import pytest

from helpers import DOMAIN, parse, token, unused_port

SENDER = "app@example.org"
RCPT = "rcpt@example.org"
QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as [0-9A-F]{10}$")
WAIT = 30   # seconds for any one reply (ASan builds are slow)


class BsClient:
    """A ProcessStream + SmtpTransport look-alike."""

    def __init__(self, postino, args=()):
        self.proc = postino.start(["-bs"] + list(args), bufsize=0)
        # ProcessStream::initialize(): stream_set_blocking($err, false)
        # and stream_get_contents() right after proc_open.
        os.set_blocking(self.proc.stderr.fileno(), False)
        self.early_stderr = self.proc.stderr.read() or b""
        self.buf = b""
        self.transcript = []

    def _line(self):
        deadline = time.monotonic() + WAIT
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "no reply within %ds; so far: %r" % (
                WAIT, self.transcript)
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, "stdout closed; so far: %r" % self.transcript
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        text = line.decode("utf-8", "replace")
        self.transcript.append("S: " + text)
        return text

    def reply(self):
        """One reply: its lines (a multi-line reply ends with "ddd ")."""
        lines = [self._line()]
        while re.match(r"^\d{3}-", lines[-1]):
            lines.append(self._line())
        assert re.match(r"^\d{3}( |$)", lines[-1]), lines
        return lines

    def send(self, data):
        self.transcript.append("C: %r" % data[:200])
        self.proc.stdin.write(data)

    def cmd(self, line, want):
        """Send a command; the reply's code must be one of want."""
        self.send(line.encode() + b"\r\n")
        lines = self.reply()
        assert int(lines[-1][:3]) in want, (line, lines, self.transcript)
        return lines[-1]

    def message(self, sender, rcpts, content):
        """Symfony's SmtpTransport::doSend for one message."""
        self.cmd("MAIL FROM:<%s>" % sender, [250])
        for r in rcpts:
            self.cmd("RCPT TO:<%s>" % r, [250, 251, 252])
        self.cmd("DATA", [354])
        self.send(re.sub(rb"(?m)^\.", b"..", content) + b"\r\n.\r\n")
        return self.reply()[-1]

    def finish(self):
        """Close stdin (EOF) and collect what is left."""
        self.proc.stdin.close()
        rc = self.proc.wait(WAIT)
        os.set_blocking(self.proc.stderr.fileno(), True)
        rest_out = self.buf + self.proc.stdout.read()
        err = self.early_stderr + self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, rest_out, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def bs(postino):
    clients = []

    def start(args=()):
        c = BsClient(postino, args)
        clients.append(c)
        return c

    yield start
    for c in clients:
        c.kill()


def crlf(text):
    return text.replace("\n", "\r\n").encode()


def symfony_message(tok):
    """An Email as Symfony renders it: CRLF, no final line end."""
    return crlf("From: %s\nTo: root, other@example.org\nBcc: hidden@"
                "example.org\nSubject: %s\nMIME-Version: 1.0\n"
                "Content-Type: text/plain; charset=utf-8\n\nline one\n"
                ".leading dot\n.\n..two dots\nend" % (SENDER, tok))


def test_symfony_session(postino, fault, bs):
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    tok = token()
    c = bs()
    assert c.early_stderr == b""
    greeting = c.reply()
    assert re.match(r"^220 \S+ ESMTP postino$", greeting[0]), greeting
    # Still nothing on stderr once the process is fully up.
    assert (c.proc.stderr.read() or b"") == b""
    c.cmd("HELO [127.0.0.1]", [250])
    final = c.message(SENDER, [RCPT], symfony_message(tok))
    assert QUEUED.match(final), c.transcript
    assert c.cmd("QUIT", [221]) == "221 2.0.0 Bye"
    rc, rest, err = c.finish()
    assert (rc, rest, err) == (0, b"", b""), c.transcript

    srv.wait_idle()
    assert len(srv.messages) == 1
    m = srv.messages[0]
    # The envelope comes from MAIL and RCPT only: headers are not scanned.
    assert m.mail_from == SENDER
    assert m.rcpts == [RCPT]
    p = parse(m.content)
    assert p.one("Subject") == tok
    assert p.get("Bcc") == []
    assert p.one("To") == "root@%s, other@example.org" % DOMAIN
    assert "postino" in p.get("Received")[0]
    assert p.get("Date") and p.get("Message-ID")
    assert p.one("From") == SENDER
    # Un-stuffed by -bs, stuffed again on the way out, undone by the
    # server: the caller's lines exactly.
    assert p.body == crlf("line one\n.leading dot\n.\n..two dots\nend\n")


def test_two_messages_one_session(postino, fault, bs):
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    toks = [token(), token()]
    c = bs()
    c.reply()
    c.cmd("HELO [127.0.0.1]", [250])
    assert QUEUED.match(c.message(SENDER, ["a@example.org"], crlf(
        "Subject: %s\n\nfirst" % toks[0])))
    # What Symfony does after an error, and its keep-alive ping.
    c.cmd("RSET", [250])
    c.cmd("NOOP", [250])
    assert QUEUED.match(c.message("other@example.org", ["b@example.org",
                                                        "c@example.org"],
                                  crlf("Subject: %s\n\nsecond" % toks[1])))
    c.cmd("QUIT", [221])
    rc, rest, err = c.finish()
    assert (rc, rest, err) == (0, b"", b"")

    srv.wait_idle()
    got = {parse(m.content).one("Subject"): m for m in srv.messages}
    assert set(got) == set(toks)
    assert got[toks[0]].mail_from == SENDER
    assert got[toks[0]].rcpts == ["a@example.org"]
    assert parse(got[toks[0]].content).body == b"first\r\n"
    assert got[toks[1]].mail_from == "other@example.org"
    assert sorted(got[toks[1]].rcpts) == ["b@example.org", "c@example.org"]
    assert parse(got[toks[1]].content).body == b"second\r\n"


def test_laravel_bs_i_and_ehlo(postino, fault, bs):
    """Laravel's default '-bs -i'; a generic client's EHLO."""
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    c = bs(["-i"])
    assert c.early_stderr == b""
    c.reply()
    c.send(b"EHLO [127.0.0.1]\r\n")
    ehlo = c.reply()
    assert ehlo[-1].startswith("250 ")
    keywords = [l[4:].split()[0] for l in ehlo[1:]]
    assert "PIPELINING" in keywords and "8BITMIME" in keywords
    assert not {"AUTH", "STARTTLS", "CHUNKING"} & set(keywords)
    assert QUEUED.match(c.message(SENDER, [RCPT], crlf(
        "Subject: laravel\n\n.x")))
    c.cmd("QUIT", [221])
    rc, rest, err = c.finish()
    assert (rc, rest, err) == (0, b"", b"")
    srv.wait_idle()
    # -i does not stop -bs from un-stuffing: "..x" on the wire was ".x".
    assert parse(srv.messages[0].content).body == b".x\r\n"


def test_pipelined_session(postino, fault):
    """Everything in one write, as a PIPELINING client may send it."""
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    script = (b"EHLO x\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
              b"Subject: piped\r\n\r\nbody\r\n.\r\nQUIT\r\n"
              % (SENDER.encode(), RCPT.encode()))
    res = postino.run(["-bs"], script)
    assert res.rc == 0 and res.stderr == b"", res.describe()
    replies = [l for l in res.out.split("\r\n") if l]
    codes = [l[:3] for l in replies if not l.startswith("250-")]
    assert codes == ["220", "250", "250", "250", "354", "250", "221"], \
        replies
    assert QUEUED.match(replies[-2]), replies
    srv.wait_idle()
    assert [m.rcpts for m in srv.messages] == [[RCPT]]


def test_eof_without_quit_sends_nothing(postino, fault, bs):
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    c = bs()
    c.reply()
    c.cmd("HELO [127.0.0.1]", [250])
    c.cmd("MAIL FROM:<%s>" % SENDER, [250])
    c.cmd("RCPT TO:<%s>" % RCPT, [250])
    c.cmd("DATA", [354])
    c.send(b"Subject: never\r\n\r\nhalf a mess")
    rc, rest, err = c.finish()
    assert (rc, rest, err) == (0, b"", b""), c.transcript
    srv.wait_idle()
    assert srv.messages == []


def test_hub_rejects_recipient(postino, fault, bs):
    """A permanent refusal comes back as 5yz after the dot; the session
    goes on."""
    srv = fault(rcpt_replies={RCPT: "550 5.1.1 <%s>: no such user" % RCPT})
    postino.config(MailHub=srv.mailhub())
    c = bs()
    c.reply()
    c.cmd("HELO [127.0.0.1]", [250])
    final = c.message(SENDER, [RCPT], crlf("Subject: refused\n\nx"))
    assert final.startswith("5"), c.transcript
    c.cmd("RSET", [250])
    c.cmd("QUIT", [221])
    rc, rest, err = c.finish()
    assert (rc, rest, err) == (0, b"", b""), c.transcript
    assert srv.messages == []


def test_hub_down_is_queued(postino, bs):
    """Queued counts as accepted: 250 with our queue id."""
    postino.config(MailHub="127.0.0.1:%d" % unused_port())
    c = bs()
    c.reply()
    c.cmd("HELO [127.0.0.1]", [250])
    final = c.message(SENDER, [RCPT], crlf("Subject: later\n\nx"))
    assert QUEUED.match(final), c.transcript
    c.cmd("QUIT", [221])
    rc, rest, err = c.finish()
    assert (rc, rest, err) == (0, b"", b""), c.transcript
    queued = [e for e in postino.queue_entries() if "/queue/" in e]
    assert len(queued) == 1
    assert final.endswith(os.path.basename(queued[0]))


@pytest.mark.parametrize("args", [["-bs", RCPT], ["-bs", "-t"],
                                  ["-t", "-bs"]])
def test_bs_usage_errors(postino, args):
    postino.config()
    res = postino.run(args, b"QUIT\r\n")
    assert res.rc == 64, res.describe()
    assert b"220 " not in res.stdout
