"""Issue 10 part 4: the log tools read postino's log unchanged.

Debian's pflogsumm, run as an administrator would
(`pflogsumm --syslog-name=postino LOGFILE`), on a LogFile after messages
that were sent, deferred, bounced (the hub refused the recipient for
good) and refused (postino itself refused the submission: RateLimit):
its counts must be what happened. Before issue 10 it counted nothing
(no host name in LogFile lines, no /service in the ident, tls= between
Postfix's fields)."""

import re
import shutil
import subprocess

import pytest

import queuehelpers as qh
from helpers import login, token

pytestmark = pytest.mark.skipif(shutil.which("pflogsumm") is None,
                                reason="pflogsumm not installed "
                                "(tests/install-deps.sh)")

SENDER = "%s@example.test" % login()
SENT1, SENT2 = "one@example.org", "two@example.org"
LATER, REFUSED = "later@example.org", "refused@example.org"


def pflogsumm(logfile):
    out = subprocess.run(["pflogsumm", "--syslog-name=postino", logfile],
                         capture_output=True, timeout=60, check=True).stdout
    return out.decode(errors="replace")


def count(report, what):
    """The figure of one line of pflogsumm's "Grand Totals"."""
    m = re.search(r"^\s*(\d+)\s+%s\b" % re.escape(what), report, re.M)
    assert m, report
    return int(m.group(1))


def test_pflogsumm_counts_what_happened(postino, fault):
    srv = fault(rcpt_replies={
        LATER: "450 4.2.1 <%s>: try later" % LATER,
        REFUSED: "550 5.1.1 <%s>: no such user" % REFUSED})
    # Root is exempt from RateLimit unless it has its own line.
    postino.config(MailHub=srv.mailhub(), RetryInterval="1h",
                   HubBackoff=0, RateLimitUser="%s:4/1h" % login())
    for rcpt in (SENT1, SENT2, LATER):
        qh.send(postino, [rcpt], token(), args=["-f", SENDER]).ok()
    # Every recipient refused: 67, kept in the failed area, no report.
    bounced = qh.send(postino, [REFUSED], token(), args=["-f", SENDER])
    assert bounced.rc == 67, bounced.describe()
    refused = qh.send(postino, [SENT1], token(), args=["-f", SENDER])
    assert refused.rc == 73, refused.describe()
    srv.wait_idle()
    qh.wait_runners(postino)
    assert len(srv.messages) == 2, postino.log.text()

    log = postino.log.text()
    report = pflogsumm(postino.logfile)
    assert count(report, "received") == 5, log + report
    assert count(report, "delivered") == 2, log + report
    assert count(report, "deferred") == 1, log + report
    assert count(report, "bounced") == 1, log + report
    assert count(report, "rejected") == 1, log + report
    # dsn= is the hub's enhanced status code, or the outcome's class.
    assert re.search(r"to=<%s>, relay=[^,]+, delay=[^,]+, delays=[^,]+, "
                     r"dsn=5\.1\.1, status=bounced \(550 " % REFUSED, log), log
    assert re.search(r"to=<%s>, .*, dsn=4\.2\.1, status=deferred" % LATER,
                     log), log
    # Per-recipient detail: the bounced and deferred addresses are named.
    assert REFUSED in report and "no such user" in report, report
    assert "try later" in report, report


def test_logfile_lines_look_like_syslog_lines(postino, fault):
    """Stamp, host name, postino/SERVICE[pid]: as syslog writes them."""
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    qh.send(postino, [SENT1], token()).ok()
    lines = [l for l in postino.log.text().splitlines()
             if "warning: delivering as root" not in l]
    assert lines
    rx = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [^\s/\[]+ "
                    r"postino/(pickup|qmgr|smtp)\[\d+\]: [0-9A-F]{10}: ")
    for line in lines:
        assert rx.match(line), line
    services = [rx.match(l).group(1) for l in lines]
    assert services[:3] == ["pickup", "qmgr", "smtp"], lines


@pytest.mark.parametrize("first", ["refused", "450-rcpt"])
def test_pflogsumm_failover_is_one_delivery_no_deferral(postino, fault,
                                                         first):
    """One hub cannot take it, the next one does: Postfix logs the first
    as an informational line without status=, then one final status, so
    pflogsumm counts one delivered and nothing deferred."""
    from helpers import unused_port
    h2 = fault()
    if first == "refused":
        h1 = "127.0.0.1:%d" % unused_port()
    else:
        h1 = fault(replies={"rcpt": "450 4.2.0 hub1 greylisted"}).mailhub()
    postino.config(MailHub="%s, %s" % (h1, h2.mailhub()), HubBackoff=0)
    qh.send(postino, [SENT1], token(), args=["-f", SENDER]).ok()
    h2.wait_idle()
    assert len(h2.messages) == 1
    log = postino.log.text()
    assert "status=deferred" not in log, log
    report = pflogsumm(postino.logfile)
    assert count(report, "received") == 1, log + report
    assert count(report, "delivered") == 1, log + report
    assert count(report, "deferred") == 0, log + report
