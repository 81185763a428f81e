"""Hostile standard input and hostile arguments, end to end.

Each hostile input checks three things: the exit status, what the hub
received (byte for byte where the man page says what it must be), and
that the peak RSS of postino stayed under 16 MiB (GNU time's figure for
the child itself; skipped for an ASan build).
The injection cases check the hub's session transcript: an address or a
name given by the caller must never become a second SMTP command, an
ESMTP parameter or a second header.

What the man page (Message, EXIT STATUS) promises and is asserted here:
NUL bytes are removed and logged; LF, CRLF and mixed ends become CRLF, a
bare CR ends a line; lines over 998 octets are split (folded in the header,
broken in the body); CR, LF or NUL in an address or in -f exits 65; line
breaks in -F become spaces.
"""

import os
import re

import pytest

from helpers import addr_of, login, parse, token
from hostilehelpers import check_rss

RCPT = "rcpt@example.org"
EVIL = "evil@example.net"
MB = 1024 * 1024


def relay(postino, fault, data, args=(RCPT,), srv_kw=None, timeout=60,
          **keys):
    """Run postino against a fresh fault server; return (res, srv)."""
    srv = fault(**(srv_kw or {}))
    keys.setdefault("MailHub", srv.mailhub())
    keys.setdefault("Timeout", 60)
    postino.config(**keys)
    res = postino.run(list(args), data, measure_rss=True, timeout=timeout)
    srv.wait_idle(30)
    return res, srv


def one_message(res, srv):
    res.ok()
    assert len(srv.messages) == 1, res.describe()
    return srv.messages[0]


def wire_lines_ok(m):
    """CRLF only, no CR doubled before a line end, no line over 998."""
    assert b"\n" not in m.wire.replace(b"\r\n", b""), "bare LF on the wire"
    assert b"\r\r\n" not in m.wire, "CR CR LF on the wire"
    longest = max(len(l) for l in m.wire.split(b"\r\n"))
    # +1: a dot-stuffed line may carry one more octet on the wire.
    assert longest <= 998 + 1, "wire line of %d octets" % longest


class Big:
    """helpers.parse() for huge messages: linear, raw fields kept."""

    def __init__(self, content):
        head, sep, self.body = content.partition(b"\r\n\r\n")
        assert sep, "no end of header block"
        self.raw_header = head
        self.fields = []        # (name, [raw lines])
        for line in head.split(b"\r\n"):
            if line[:1] in (b" ", b"\t") and self.fields:
                self.fields[-1][1].append(line)
            else:
                name = line.split(b":", 1)[0].decode("latin-1")
                self.fields.append((name, [line]))

    def names(self):
        return [n for n, _ in self.fields]

    def get(self, name):
        """Raw field lines joined with CRLF, folding kept."""
        return [b"\r\n".join(ls) for n, ls in self.fields
                if n.lower() == name.lower()]


def session_of(srv):
    sessions = srv.sessions
    assert len(sessions) <= 1, [s.commands for s in sessions]
    return sessions[0] if sessions else None


def assert_nothing_sent(res, srv, postino):
    """A refused caller: no envelope reached the hub, nothing queued."""
    s = session_of(srv)
    if s is not None:
        assert not s.saw("MAIL") and not s.saw("RCPT"), s.commands
        assert not s.saw("DATA"), s.commands
    assert srv.messages == []
    assert postino.queue_entries() == [], postino.queue_entries()
    assert res.stdout == b""
    assert res.stderr != b"", res.describe()


def assert_one_stderr_line(res):
    """EXIT STATUS: one line on standard error says why; the caller's
    bytes must not break it into two (or rewrite the terminal)."""
    text = res.stderr.decode(errors="replace")
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert "\r" not in text and "\0" not in text, repr(text)


def assert_clean_transcript(srv, rcpts):
    """Exactly one transaction with exactly these recipients, and no
    command that postino did not mean to send."""
    s = session_of(srv)
    assert s is not None
    verbs = s.verbs()
    assert verbs.count("MAIL") == 1, s.commands
    assert verbs.count("DATA") == 1, s.commands
    rcpt_cmds = [c for c in s.commands if c.upper().startswith("RCPT")]
    for c in s.commands:
        assert "\r" not in c and "\0" not in c, repr(c)
        if c.upper().startswith(("MAIL", "RCPT")):
            # One path, ESMTP keywords after it: no second path, no
            # parameter smuggled in through an address.
            assert re.fullmatch(r"(MAIL FROM|RCPT TO):<[^<>\s]*>"
                                r"( [A-Z0-9-]+(=[^\s=]+)?)*", c), repr(c)
            assert not re.search(r"(?i)\b(NOTIFY|ORCPT|RET|ENVID|AUTH)=",
                                 c), repr(c)
    got = sorted(re.match(r"RCPT TO:<(.*)>", c).group(1) for c in rcpt_cmds)
    assert got == sorted(rcpts), s.commands
    assert EVIL not in " ".join(s.commands), s.commands


# -- NUL bytes -------------------------------------------------------------

def test_nul_bytes_removed_and_logged(postino, fault, asan):
    tok = token()
    nuls = 100000 + 4
    data = (b"Sub\0ject: " + tok.encode() + b"\0\nTo: " + RCPT.encode() +
            b"\n\nab\0\0c\n" + b"\0" * 100000 + b"end\n")
    res, srv = relay(postino, fault, data)
    m = one_message(res, srv)
    assert b"\0" not in m.wire
    p = parse(m.content)
    assert p.one("Subject") == tok
    assert p.body == b"abc\r\nend\r\n"
    assert re.search(r"removed %d NUL bytes" % nuls, res.log_text), \
        res.describe()
    check_rss(res, asan, "NUL bytes")


# -- endless lines and huge header blocks ----------------------------------

# No colon, no space: a header scanner cannot tell early that this is no
# field name, so it must give up after a bounded length.
PATTERN = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"


def test_100mb_single_line_without_newline(postino, fault, asan):
    size = 100 * MB
    data = (PATTERN * (size // len(PATTERN) + 1))[:size]
    # MaxMessageSize=0: this is about memory, not the spool limit.
    res, srv = relay(postino, fault, data, srv_kw={"size_limit": 0},
                     timeout=120, MaxMessageSize=0)
    m = one_message(res, srv)
    check_rss(res, asan, "a 100 MB line")
    wire_lines_ok(m)
    p = Big(m.content)
    # It is no header: the headers are postino's own, then the line.
    assert sorted(p.names()) == ["Date", "From", "Message-ID", "Received"]
    lines = p.body.split(b"\r\n")
    assert lines[-1] == b""
    assert max(len(l) for l in lines) <= 998
    assert len(lines) - 1 >= size // 998
    assert b"".join(lines) == data, "bytes lost or added in the split"
    assert re.search(r"split \d+ lines? longer than 998", res.log_text), \
        res.describe()


def test_100k_header_lines(postino, fault, asan):
    tok = token()
    n = 100000
    hdrs = b"".join(b"X-H%06d: v%d\n" % (i, i) for i in range(n))
    data = hdrs + b"To: rcpt@example.org\nSubject: " + tok.encode() + \
        b"\n\nbody\n"
    res, srv = relay(postino, fault, data)
    m = one_message(res, srv)
    check_rss(res, asan, "100,000 header lines")
    assert hdrs.replace(b"\n", b"\r\n") in m.content
    p = Big(m.content)
    xs = [n_ for n_ in p.names() if n_.startswith("X-H")]
    assert xs == ["X-H%06d" % i for i in range(n)]
    assert p.get("Subject") == [b"Subject: " + tok.encode()]
    for name in ("Received", "Date", "Message-ID", "From"):
        assert len(p.get(name)) == 1, name
    assert p.body == b"body\r\n"


def test_100k_distinct_to_headers_with_t(postino, fault, asan):
    """-t over more addresses than any hub takes: refused as a data
    error (postino.h: RCPT_MAX, ST_DATA), nothing half-sent."""
    n = 100000
    data = b"".join(b"To: u%d@example.org\n" % i for i in range(n)) + \
        b"Subject: many\n\nbody\n"
    res, srv = relay(postino, fault, data, args=("-t",))
    check_rss(res, asan, "100,000 To: headers")
    assert res.rc == 65, res.describe()
    assert_nothing_sent(res, srv, postino)


def test_100k_duplicate_to_headers_with_t(postino, fault, asan):
    n = 100000
    data = b"To: rcpt@example.org\n" * n + b"Subject: dup\n\nbody\n"
    res, srv = relay(postino, fault, data, args=("-t",))
    m = one_message(res, srv)
    check_rss(res, asan, "100,000 duplicate To: headers")
    assert m.rcpts == [RCPT]
    assert len(Big(m.content).get("To")) == n


def test_t_duplicates_cost_linear_time(postino, fault):
    """Recipients are deduplicated without rescanning the whole list for
    every address: CPU time stays proportional to the input."""
    distinct, repeats = 10000, 50000
    last = b"To: u%d@example.org\n" % (distinct - 1)
    data = (b"".join(b"To: u%d@example.org\n" % i for i in range(distinct))
            + last * repeats + b"Subject: dup\n\nbody\n")
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    # -odq: only read and commit, so the time is postino's own; CPU time
    # of that one child (wait4), not wall time, so a busy machine does
    # not decide.
    proc = postino.start(["-odq", "-t"])
    proc.stdin.write(data)
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err
    entries = [e for e in postino.queue_entries() if "/queue/" in e]
    assert len(entries) == 1
    with open(entries[0]) as f:
        assert len(re.findall(r"(?m)^rcpt ", f.read())) == distinct
    cpu = usage.ru_utime + usage.ru_stime
    assert cpu < 1.0, "%.1f s of CPU to read %d To: lines" % (
        cpu, distinct + repeats)


def test_50mb_header_block(postino, fault, asan):
    """One folded field of 50 MB: passed through as it came (each of its
    lines is short), and the scan goes on after it: To: root below it is
    still qualified."""
    tok = token()
    cont = b"\t" + (PATTERN * 2)[:74] + b"\n"
    big = b"X-Big: start\n" + cont * (50 * MB // len(cont))
    data = big + b"To: root\nSubject: " + tok.encode() + b"\n\nbody\n"
    res, srv = relay(postino, fault, data, srv_kw={"size_limit": 0},
                     timeout=120, MaxMessageSize=0)
    m = one_message(res, srv)
    check_rss(res, asan, "a 50 MB header block")
    wire_lines_ok(m)
    assert big.replace(b"\n", b"\r\n") in m.content
    p = Big(m.content)
    assert p.names().count("X-Big") == 1
    assert p.get("Subject") == [b"Subject: " + tok.encode()]
    assert p.get("To") == [b"To: root@example.test"]
    assert p.body == b"body\r\n"


def test_20mb_header_line_is_folded(postino, fault, asan):
    """One header line without any white space to fold at: folded at 998
    anyway (CRLF SP, man page), still one field, nothing lost."""
    size = 20 * MB
    value = (PATTERN * (size // len(PATTERN) + 1))[:size]
    data = b"X-Long: " + value + b"\nSubject: after\n\nbody\n"
    res, srv = relay(postino, fault, data, srv_kw={"size_limit": 0},
                     timeout=120)
    m = one_message(res, srv)
    check_rss(res, asan, "a 20 MB header line")
    wire_lines_ok(m)
    p = Big(m.content)
    assert p.names().count("X-Long") == 1
    assert p.get("Subject") == [b"Subject: after"]
    field = p.get("X-Long")[0]
    assert field.replace(b"\r\n ", b"") == b"X-Long: " + value
    assert p.body == b"body\r\n"


# -- 8-bit and invalid UTF-8 ------------------------------------------------

BAD_UTF8 = b"\xff\xfe \xc3\x28 \xed\xa0\x80 \xc0\xaf \xf8\x88\x80\x80\x80"


@pytest.mark.parametrize("offer", [True, False])
def test_invalid_utf8_passes_through(postino, fault, asan, offer):
    head = (b"Subject: " + BAD_UTF8 + b"\nX-Latin1: caf\xe9\n"
            b"To: " + BAD_UTF8[:2] + b" <rcpt@example.org>\n")
    body = b"body " + BAD_UTF8 + b"\n\x80\x81\n"
    res, srv = relay(postino, fault, head + b"\n" + body, args=("-t",),
                     srv_kw={"hide": () if offer else ["8BITMIME"]})
    m = one_message(res, srv)
    check_rss(res, asan, "invalid UTF-8")
    assert m.rcpts == [RCPT]
    assert head.replace(b"\n", b"\r\n") in m.content
    assert parse(m.content).body == body.replace(b"\n", b"\r\n")
    params = m.mail_params.upper()
    if offer:
        assert "BODY=8BITMIME" in params, params
    else:
        assert "BODY=" not in params, params


def test_8bit_headers_and_utf8_address(postino, fault, asan):
    """8-bit only in the header block still makes the message 8-bit; an
    address that needs SMTPUTF8 gets it."""
    zoe = "zo\u00eb@example.org"
    head = ("Subject: caf\u00e9 \u2014 na\u00efve\n"
            "To: Zo\u00eb <%s>\n" % zoe).encode()
    res, srv = relay(postino, fault, head + b"\nascii body\n",
                     args=("-t",))
    m = one_message(res, srv)
    check_rss(res, asan, "8-bit headers")
    assert head.replace(b"\n", b"\r\n") in m.content
    params = m.mail_params.upper()
    assert "BODY=8BITMIME" in params and "SMTPUTF8" in params, params
    s = session_of(srv)
    assert ("RCPT TO:<%s>" % zoe).encode() in b"".join(s.chunks)


# -- CR-only line ends ------------------------------------------------------

def test_cr_only_line_ends_are_lines(postino, fault, asan):
    """Old Mac line ends: a bare CR ends a line (man page), so this is a
    header of two fields, an empty line and a body; the header scan saw
    the same lines as the hub (the To: is a field, seen and qualified by
    the scan; without -t it names no recipient)."""
    tok = token()
    text = ("Subject: %s\rTo: %s\r\rfirst\r%s\rlast"
            % (tok, EVIL, "y" * 2500)).encode()
    res, srv = relay(postino, fault, text)
    m = one_message(res, srv)
    check_rss(res, asan, "CR-only line ends")
    wire_lines_ok(m)
    assert b"\r" not in m.wire.replace(b"\r\n", b"")
    assert m.rcpts == [RCPT]
    p = parse(m.content)
    assert p.one("Subject") == tok
    assert p.one("To") == EVIL
    assert p.body.replace(b"\r\n", b"") == b"first" + b"y" * 2500 + b"last"
    assert p.body.startswith(b"first\r\ny")


@pytest.mark.parametrize("pos", [996, 997, 998, 999])
def test_cr_at_the_split_point(postino, fault, asan, pos):
    """A CR right where a long line is split ends the line there: never
    CR CR LF (callers.md 3.1), no byte lost."""
    line = b"a" * pos + b"\r" + b"b" * 1200
    res, srv = relay(postino, fault, b"Subject: s\n\n" + line + b"\n")
    m = one_message(res, srv)
    check_rss(res, asan, "CR at the split point")
    wire_lines_ok(m)
    body = parse(m.content).body
    assert b"a\r\nb" in body, body[:1200]   # the CR became the line end
    assert b"".join(body.split(b"\r\n")) == line.replace(b"\r", b"")


@pytest.mark.parametrize("flags", [[], ["-i"]])
def test_split_never_makes_a_lone_dot(postino, fault, flags):
    """The tail of a split line that is a single '.' is data: stuffed on
    the wire, so the hub's DATA does not end there and the next lines
    are never read as commands."""
    line = b"x" * 998 + b"."
    body = (line + b"\nMAIL FROM:<%s>\nRCPT TO:<%s>\nDATA\nafter\n"
            % (EVIL.encode(), EVIL.encode()))
    res, srv = relay(postino, fault, b"Subject: s\n\n" + body,
                     args=flags + [RCPT])
    m = one_message(res, srv)
    wire_lines_ok(m)
    assert b"\r\n.\r\n" not in m.wire
    assert parse(m.content).body.replace(b"\r\n", b"") == \
        body.replace(b"\n", b"")
    assert_clean_transcript(srv, [RCPT])


@pytest.mark.parametrize("body", [
    b"a\n.\r\nMAIL FROM:<evil@example.net>\r\n",
    b"a\r\n.\nRCPT TO:<evil@example.net>\n",
    b"a\n.\nDATA\n",
])
def test_smuggled_end_of_data(postino, fault, body):
    """LF and CRLF mixed around a dot: with -i the dot line is data and
    stuffed, so nothing after it reaches the hub as a command."""
    res, srv = relay(postino, fault, b"Subject: s\n\n" + body,
                     args=("-i", RCPT))
    m = one_message(res, srv)
    wire_lines_ok(m)
    assert m.wire.count(b"\r\n..\r\n") == 1, m.wire
    assert_clean_transcript(srv, [RCPT])


# -- addresses from the caller ----------------------------------------------

CRLF_SENDERS = [
    "sender@example.org\r\nRCPT TO:<%s>" % EVIL,
    "sender@example.org\nDATA",
    "sender@example.org\rRCPT TO:<%s>" % EVIL,
    "<sender@example.org>\r\n",
    "Name\r\nX: y <sender@example.org>",
]
# No NUL here: execve(2) ends an argument at its first NUL, so no caller
# can pass one in -f or a recipient. NUL from stdin: test_nul_bytes_*.


@pytest.mark.parametrize("form", ["-f", "-fattached", "-r"])
@pytest.mark.parametrize("sender", CRLF_SENDERS)
def test_sender_with_cr_lf_is_refused(postino, fault, asan, form, sender):
    if form == "-fattached":
        args = ["-f" + sender, RCPT]
    else:
        args = [form, sender, RCPT]
    res, srv = relay(postino, fault, b"Subject: s\n\nbody\n", args=args)
    assert res.rc == 65, res.describe()
    assert_nothing_sent(res, srv, postino)
    assert_one_stderr_line(res)
    check_rss(res, asan, "CR/LF in -f")


CRLF_RCPTS = [
    "victim@example.org\r\nRCPT TO:<%s>" % EVIL,
    "victim@example.org\nDATA",
    "victim@example.org\r",
    "Name <victim@example.org>\r\nQUIT",
]


@pytest.mark.parametrize("bad", CRLF_RCPTS)
def test_recipient_with_cr_lf_is_refused(postino, fault, asan, bad):
    """Even after a good recipient: nothing at all is sent."""
    res, srv = relay(postino, fault, b"Subject: s\n\nbody\n",
                     args=[RCPT, bad])
    assert res.rc == 65, res.describe()
    assert_nothing_sent(res, srv, postino)
    check_rss(res, asan, "CR/LF in a recipient")


@pytest.mark.parametrize("bad", CRLF_RCPTS)
def test_recipient_with_cr_lf_one_stderr_line(postino, fault, bad):
    res, srv = relay(postino, fault, b"Subject: s\n\nbody\n",
                     args=[RCPT, bad])
    assert res.rc == 65, res.describe()
    assert_one_stderr_line(res)


ANGLE_SENDERS = [
    "sender@example.org> NOTIFY=NEVER",
    "<sender@example.org> RET=FULL",
    "sender@example.org>RCPT TO:<%s" % EVIL,
    "<sender@example.org>>",
    "<<sender@example.org>",
]


@pytest.mark.parametrize("sender", ANGLE_SENDERS)
def test_sender_with_angle_brackets(postino, fault, sender):
    """'<' and '>' in -f cannot close the path early and smuggle an ESMTP
    parameter or a command: bad address syntax, exit 65, nothing sent."""
    res, srv = relay(postino, fault, b"Subject: s\n\nbody\n",
                     args=["-f", sender, RCPT])
    assert res.rc == 65, res.describe()
    assert_nothing_sent(res, srv, postino)
    assert_one_stderr_line(res)


ANGLE_RCPTS = [
    "victim@example.org> NOTIFY=NEVER",
    "<victim@example.org> ORCPT=rfc822;%s" % EVIL,
    "victim@example.org>RCPT TO:<%s" % EVIL,
    "<victim@example.org>>",
]


@pytest.mark.parametrize("bad", ANGLE_RCPTS)
def test_recipient_with_angle_brackets(postino, fault, bad):
    res, srv = relay(postino, fault, b"Subject: s\n\nbody\n",
                     args=[RCPT, bad])
    assert res.rc == 65, res.describe()
    assert_nothing_sent(res, srv, postino)
    assert_one_stderr_line(res)


# -- addresses from the header (-t) ----------------------------------------

@pytest.mark.parametrize("head,rcpts", [
    # The injected line is no header field (a space in its name): the
    # header block ends there and it is body text.
    ("To: good@example.org\r\nRCPT TO:<%s>\r\nDATA\r\n" % EVIL,
     ["good@example.org"]),
    ("To: good@example.org\nMAIL FROM:<%s>\n" % EVIL,
     ["good@example.org"]),
    # Brackets and quotes in names and comments are not addresses.
    ('To: "Evil <%s>" <good@example.org>\n' % EVIL, ["good@example.org"]),
    ("To: good@example.org (Evil <%s>)\n" % EVIL, ["good@example.org"]),
    ('To: "x\\" <%s> \\"" <good@example.org>\n' % EVIL,
     ["good@example.org"]),
    ('To: good@example.org, "RCPT TO:<%s>" <two@example.org>\n' % EVIL,
     ["good@example.org", "two@example.org"]),
])
def test_t_header_cannot_inject(postino, fault, head, rcpts):
    tok = token()
    data = (head + "Subject: %s\n\nbody\n" % tok).encode()
    res, srv = relay(postino, fault, data, args=("-t",))
    m = one_message(res, srv)
    assert sorted(m.rcpts) == sorted(rcpts)
    assert_clean_transcript(srv, rcpts)
    if "\nRCPT" in head or "\nMAIL" in head:
        # Kept, as body text: the header ended at the first non-field.
        body = parse(m.content).body
        assert b"TO:<%s>" % EVIL.encode() in body or \
            b"FROM:<%s>" % EVIL.encode() in body, body


@pytest.mark.parametrize("head", [
    # A bare CR ends a line in a header too: it cuts the address short.
    "To: <good@example.org\rRCPT TO:<%s>>\n" % EVIL,
    "To: <good@example.org\r>\n",
])
def test_t_header_with_bare_cr(postino, fault, head):
    """A CR inside a -t address ends the line there: the address left
    does not parse, exit 65, nothing sent, never on the wire."""
    data = (head + "Subject: s\n\nbody\n").encode()
    res, srv = relay(postino, fault, data, args=("-t",))
    assert res.rc == 65, res.describe()
    assert_nothing_sent(res, srv, postino)
    assert_one_stderr_line(res)


def test_t_header_bare_crs_end_the_header(postino, fault):
    """Two bare CRs are two line ends: an empty line, so the header ends
    and "DATA" is body text, never a command."""
    data = b"To: good@example.org\r\rDATA\nSubject: s\n\nbody\n"
    res, srv = relay(postino, fault, data, args=("-t",))
    m = one_message(res, srv)
    assert m.rcpts == ["good@example.org"]
    assert_clean_transcript(srv, ["good@example.org"])
    wire_lines_ok(m)
    assert b"\r" not in m.wire.replace(b"\r\n", b"")
    assert parse(m.content).body.startswith(b"DATA\r\n")


# -- -F ---------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "Evil\nX-Injected: yes",
    "Evil\r\nX-Injected: yes",
    "Evil\r\n\r\nInjected body",
    "Evil\n Bcc-Folded: yes",
    "Evil <%s>" % EVIL,
    'Evil" <%s>, "' % EVIL,
    "Evil\\",
])
def test_full_name_cannot_inject(postino, fault, asan, name):
    tok = token()
    data = ("To: %s\nSubject: %s\n\nthe body\n" % (RCPT, tok)).encode()
    res, srv = relay(postino, fault, data, args=["-F", name, RCPT])
    m = one_message(res, srv)
    check_rss(res, asan, "-F")
    wire_lines_ok(m)
    p = parse(m.content)
    assert p.get("X-Injected") == [] and p.get("Bcc-Folded") == []
    froms = p.get("From")
    assert len(froms) == 1, p.headers
    assert addr_of(froms[0]) == "%s@example.test" % login(), froms
    assert EVIL not in addr_of(froms[0])
    assert p.one("Subject") == tok
    assert p.body == b"the body\r\n"
    assert_clean_transcript(srv, [RCPT])
    if "\n" in name:
        # Line breaks become spaces: the words stay in the name.
        for word in name.split():
            assert word in froms[0], froms


# -- degenerate messages ----------------------------------------------------

@pytest.mark.parametrize("data,body", [
    (b"Subject: empty body\nTo: rcpt@example.org\n\n", b""),
    (b"Subject: headers only, no newline", b""),
    (b"", b""),
    (b"\n\n\n", b"\r\n\r\n"),
    (b".\nnot sent\n", b""),
    (b": no field name\nline\n", b": no field name\r\nline\r\n"),
    (b" starts folded\nSubject: x\n", b" starts folded\r\nSubject: x\r\n"),
    (b"\r", b""),
])
def test_degenerate_messages(postino, fault, asan, data, body):
    res, srv = relay(postino, fault, data)
    m = one_message(res, srv)
    check_rss(res, asan, "degenerate")
    wire_lines_ok(m)
    p = parse(m.content)
    for name in ("Received", "Date", "Message-ID", "From"):
        assert len(p.get(name)) == 1, p.headers
    assert p.body == body, p.body
    assert m.rcpts == [RCPT]


def test_empty_stdin_with_t_has_no_recipient(postino, fault):
    res, srv = relay(postino, fault, b"", args=("-t",))
    assert res.rc == 64, res.describe()
    assert_nothing_sent(res, srv, postino)
