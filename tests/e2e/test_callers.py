"""Every real caller works (callers.md section 1): each case of the corpus
in callers/corpus.py (a caller's exact argv and stdin) runs through
postino against the fault server, and the test checks the envelope (MAIL
FROM, the set of RCPT TO), the delivered headers and body, the exit status
and silence on stdout and stderr."""

import re

import pytest

from callers import corpus, harness
from helpers import gecos_name, login, parse

# Removed from every message, whatever the caller (callers.md 3.6).
DROPPED = {"bcc", "resent-bcc", "return-path", "content-length"}


def fmt(text):
    return text.format(login=login(), gecos=gecos_name())


def split_message(raw):
    """The caller's header fields (unfolded the way helpers.parse unfolds
    the delivered ones) and body lines, whatever its line ends."""
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [l[:-1] if l.endswith(b"\r") else l for l in lines]
    end = lines.index(b"") if b"" in lines else len(lines)
    headers = []
    for line in lines[:end]:
        text = line.decode("utf-8", "surrogateescape")
        if text[:1] in (" ", "\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + text.strip())
        else:
            n, _, v = text.partition(":")
            headers.append((n, v.strip()))
    return headers, lines[end + 1:]


def expected_headers(case, given):
    """The caller's headers as they must be delivered, in order."""
    rewritten = {k: fmt(v) for k, v in case.get("rewritten", {}).items()}
    out = []
    for name, value in given:
        if name.lower() in DROPPED:
            continue
        out.append((name, rewritten.get((name, value), value)))
    return out


def check_headers(case, p, given):
    names = [n.lower() for n in p.names()]
    assert names[0] == "received", p.raw_header[:300]
    assert names.count("received") == 1
    assert "postino" in p.headers[0][1], p.headers[0]
    added = [a.lower() for a in case.get("added", [])]
    caller_names = {n.lower() for n, _ in given}
    for name in added:
        assert name not in caller_names, "bad case: %s is not added" % name
        assert names.count(name) == 1, "want one added %s:\n%s" % (
            name, p.raw_header.decode(errors="replace"))
    if "from_added" in case:
        assert p.one("From") == fmt(case["from_added"])
    kept = [(n, v) for n, v in p.headers[1:] if n.lower() not in added]
    assert kept == expected_headers(case, given), \
        p.raw_header.decode(errors="replace")


def check_envelope(case, srv, m):
    assert m.mail_from == fmt(case["mail_from"])
    want = sorted({fmt(r) for r in case["rcpts"]})
    # Each recipient once (duplicates collapse, callers.md 3.4).
    assert sorted(m.rcpts) == want
    rcpt_cmds = [c for c in srv.commands() if c.upper().startswith("RCPT")]
    # The fault server offers no DSN: no NOTIFY=/ORCPT= may reach it.
    assert all(re.fullmatch(r"RCPT TO:<[^<>]*>", c) for c in rcpt_cmds), \
        rcpt_cmds
    params = m.mail_params.split()
    for want_param in case.get("params", []):
        assert want_param in params, m.mail_params


def check_smtp_replies(case, res):
    assert res.rc == 0 and res.stderr == b"", res.describe()
    lines = [l for l in res.out.split("\r\n") if l]
    codes = [l[:3] for l in lines if not re.match(r"^\d{3}-", l)]
    assert codes == case["smtp"], lines


@pytest.mark.parametrize("case", corpus.CASES, ids=[c["id"] for c in
                                                     corpus.CASES])
def test_caller(postino, fault, case):
    srv = fault()
    harness.config(postino, srv, **case.get("config", {}))
    res = harness.run(postino, case["argv"], case["stdin"],
                      argv0=case["argv0"], env=case.get("env"))
    if case.get("rc", 0) != 0:
        assert case["rc"] == 64, "only usage errors are in the corpus"
        harness.usage_error(res, srv)
        return
    if "smtp" in case:
        check_smtp_replies(case, res)
    else:
        res.ok()
    srv.wait_idle()
    assert len(srv.messages) == 1, res.describe()
    m = srv.messages[0]
    check_envelope(case, srv, m)
    given, body_lines = split_message(case.get("message", case["stdin"]))
    p = parse(m.content)
    check_headers(case, p, given)
    want_body = case.get("body")
    if want_body is None:
        want_body = b"".join(l + b"\r\n" for l in body_lines)
    assert p.body == want_body


def test_corpus_covers_the_caller_table():
    """At least 30 distinct rows of the caller table, each case whole."""
    rows = {int(re.match(r"\d+", c["id"]).group()) for c in corpus.CASES}
    assert len(rows) >= 30, sorted(rows)
    ids = [c["id"] for c in corpus.CASES]
    assert len(ids) == len(set(ids))
    for c in corpus.CASES:
        assert {"id", "caller", "argv0", "argv", "stdin"} <= set(c), c["id"]
        assert isinstance(c["stdin"], bytes), c["id"]
        if c.get("rc", 0) == 0:
            assert {"mail_from", "rcpts", "added"} <= set(c), c["id"]
