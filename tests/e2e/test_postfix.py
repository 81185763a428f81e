"""postino against a real Postfix hub: plain relay, STARTTLS + AUTH, implicit
TLS, client certificates, revaliases routing, Root=, and the headers of the
delivered message."""

import email.utils
import os
import re
import time

import pytest

from helpers import (DOMAIN, HOSTNAME, addr_of, gecos_name, login, message,
                     token, unused_port)
from postfixhub import SASL_PASS, SASL_USER

RCPT = "rcpt@example.org"


def deliver(postino, hub, tok, args=(RCPT,), msg=None, **keys):
    """Send one message and return (result, the hub's copy)."""
    postino.config(**keys)
    res = postino.run(list(args), msg if msg is not None else message(tok))
    res.ok()
    return res, hub.find_one(tok)


def sasl_method(hub, qid):
    line = hub.wait_log(0, r"%s: client=.*sasl_method=" % qid)
    assert line, "no SASL login logged for %s" % qid
    return re.search(r"sasl_method=(\w[\w-]*)", line).group(1)


def test_plain_relay(postino, hub):
    tok = token()
    port = hub.ports["plain"]
    res, m = deliver(postino, hub, tok, MailHub=hub.hub("plain"))
    assert m.sender == "%s@%s" % (login(), DOMAIN)
    assert m.recipients == [RCPT]
    assert m.server_port == port
    assert m.attrs["client_address"] == "127.0.0.1"
    assert m.attrs["helo_name"] == HOSTNAME
    assert "Hello from the postino e2e suite." in m.body
    # One log line per recipient, with the hub's queue id, and the from line.
    sent = res.log_to(RCPT)
    assert len(sent) == 1, res.describe()
    f = sent[0].fields
    assert f["relay"] == "127.0.0.1[127.0.0.1]:%d" % port, sent[0].line
    assert f["status"] == "sent", sent[0].line
    assert "tls" not in f, res.log_text   # no TLS line without TLS
    assert "TLS connection" not in res.log_text, res.log_text
    # Postfix's fields in Postfix's order, nothing between (pflogsumm).
    assert re.search(r"postino/smtp\[\d+\]: [0-9A-F]{10}: to=<[^>]+>, "
                     r"relay=[^,]+, delay=[\d.]+, delays=[\d.]+/[\d.]+/"
                     r"[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(250 ",
                     sent[0].line), sent[0].line
    assert re.match(r"\d+(\.\d+)?$", f["delay"]), sent[0].line
    assert sent[0].status_text.startswith("250 ")
    assert "queued as " + m.qid in sent[0].status_text, sent[0].line
    # Received (pickup: uid, from), then taken in (qmgr: from, size, nrcpt).
    frm = [e for e in res.log_from() if e.qid == sent[0].qid]
    assert [e.fields["service"] for e in frm] == ["pickup", "qmgr"], \
        res.describe()
    assert frm[0].fields["from"] == "<%s@%s>" % (login(), DOMAIN)
    assert frm[0].fields["uid"] == str(os.getuid())
    assert frm[1].fields["from"] == frm[0].fields["from"]
    assert frm[1].fields["nrcpt"] == "1"
    assert int(frm[1].fields["size"]) > 0
    # The same queue id is the one in our Received: header.
    ours = m.header("Received")[1]
    assert "id %s" % sent[0].qid in ours, ours


def test_plain_relay_ipv6_literal(postino, hub):
    tok = token()
    _, m = deliver(postino, hub, tok, MailHub=hub.hub("plain", v6=True))
    assert m.attrs["client_address"] == "::1"
    assert m.recipients == [RCPT]


def test_remoteport_key(postino, hub):
    """MailHub without a port plus RemotePort= (ssmtp's two-key form)."""
    tok = token()
    _, m = deliver(postino, hub, tok, MailHub="127.0.0.1",
                   RemotePort=hub.ports["alt"])
    assert m.server_port == hub.ports["alt"]


def test_starttls_auth_plain(postino, hub, certs):
    tok = token()
    res, m = deliver(postino, hub, tok, MailHub=hub.hub("submission"),
                     UseSTARTTLS="YES", TLS_CA_File=certs.ca.cert,
                     AuthUser=SASL_USER, AuthPass=SASL_PASS,
                     AuthMethod="plain")
    rcv = m.header("Received")[0]
    assert "using TLSv1." in rcv, rcv
    assert "Authenticated sender: %s@" % SASL_USER in rcv, rcv
    assert sasl_method(hub, m.qid) == "PLAIN"
    tls = res.log_to(RCPT)[0].fields["tls"]
    assert tls.startswith("TLSv1.") and tls.endswith("verified"), tls
    # On a line of its own, as Postfix logs it; none in the delivery line.
    assert re.search(r"postino/smtp\[\d+\]: Verified TLS connection "
                     r"established to \S+\[127\.0\.0\.1\]:\d+: TLSv1\.",
                     res.log_text), res.log_text
    assert "tls=" not in res.log_to(RCPT)[0].line


def test_implicit_tls_auth_login(postino, hub, certs):
    tok = token()
    res, m = deliver(postino, hub, tok, MailHub=hub.hub("smtps"),
                     UseTLS="YES", TLS_CA_File=certs.ca.cert,
                     AuthUser=SASL_USER, AuthPass=SASL_PASS,
                     AuthMethod="login")
    rcv = m.header("Received")[0]
    assert "using TLSv1." in rcv and "ESMTPSA" in rcv, rcv
    assert sasl_method(hub, m.qid) == "LOGIN"
    assert res.log_to(RCPT)[0].fields["tls"].endswith("verified")


def test_auth_refused_by_hub(postino, hub, certs):
    from helpers import expect_tempfail
    tok = token()
    off = hub.log_size()
    postino.config(MailHub=hub.hub("submission"), UseSTARTTLS="YES",
                   TLS_CA_File=certs.ca.cert, AuthUser=SASL_USER,
                   AuthPass="not-the-password")
    res = postino.run([RCPT], message(tok))
    expect_tempfail(res, postino, admin=True)
    line = hub.wait_log(off, r"postfix-submission/smtpd.*disconnect from")
    assert line and "auth=0/1" in line and "mail=" not in line, line
    assert hub.find(tok, timeout=0.3) == []


@pytest.mark.parametrize("combined", [False, True],
                         ids=["cert+key", "one-pem"])
def test_client_certificate(postino, hub, certs, combined):
    tok = token()
    keys = dict(MailHub=hub.hub("ccert"), UseSTARTTLS="YES",
                TLS_CA_File=certs.ca.cert, UseTLSCert="YES")
    if combined:
        keys["TLSCert"] = certs.client_combined
    else:
        keys.update(TLSCert=certs.client.cert, TLSKey=certs.client.key)
    _, m = deliver(postino, hub, tok, **keys)
    rcv = m.header("Received")[0]
    assert 'Client CN "postino-client"' in rcv, rcv
    assert "(verified OK)" in rcv, rcv


def test_revaliases_sender_and_route(postino, hub):
    """root:ops@example.net:HUB:PORT sends as ops@ through its own hub while
    MailHub points at a port where nothing listens."""
    tok = token()
    alt = hub.ports["alt"]
    postino.write_revaliases("# test\n%s:ops@example.net:127.0.0.1:%d\n"
                             % (login(), alt))
    res, m = deliver(postino, hub, tok,
                     MailHub="127.0.0.1:%d" % unused_port(),
                     msg=message(tok, headers=[("To", RCPT)]))
    assert m.sender == "ops@example.net"
    assert m.server_port == alt
    # The From: that postino adds uses the revaliases address.
    assert addr_of(m.header("From")[0]) == "ops@example.net"
    assert res.log_to(RCPT)[0].fields["relay"].endswith(":%d" % alt)


def test_revaliases_overrides_f(postino, hub):
    tok = token()
    postino.write_revaliases("%s:ops@example.net\n" % login())
    _, m = deliver(postino, hub, tok, args=("-f", "other@example.org", RCPT),
                   MailHub=hub.hub("plain"))
    assert m.sender == "ops@example.net"


def test_revaliases_hub_without_port_keeps_config_port(postino, hub):
    """A revaliases hub without a port keeps the port of ssmtp.conf."""
    tok = token()
    alt = hub.ports["alt"]
    postino.write_revaliases("%s:ops@example.net:127.0.0.1\n" % login())
    # 127.0.0.2 is loopback too, but the hub listens on 127.0.0.1 only.
    _, m = deliver(postino, hub, tok, MailHub="127.0.0.2:%d" % alt)
    assert m.sender == "ops@example.net"
    assert m.server_port == alt


@pytest.mark.parametrize("rcpt", ["root", "root@localhost",
                                  "root@" + HOSTNAME])
def test_root_mapped_by_root_key(postino, hub, rcpt):
    tok = token()
    _, m = deliver(postino, hub, tok, args=(rcpt,), MailHub=hub.hub("plain"),
                   Root="postmaster@example.net")
    assert m.recipients == ["postmaster@example.net"]


def test_root_aliases_sent_once(postino, hub):
    tok = token()
    _, m = deliver(postino, hub, tok,
                   args=("root", "root@localhost", "root@" + HOSTNAME),
                   MailHub=hub.hub("plain"), Root="postmaster@example.net")
    assert m.recipients == ["postmaster@example.net"]


def test_root_without_root_key_is_qualified(postino, hub):
    tok = token()
    _, m = deliver(postino, hub, tok, args=("root",),
                   MailHub=hub.hub("plain"))
    assert m.recipients == ["root@" + DOMAIN]


# -- the delivered message ------------------------------------------------

def test_delivered_headers(postino, hub):
    tok = token()
    msg = message(tok, headers=[
        ("To", "rcpt, other@example.org"),
        ("Cc", "Carbon <cc1>"),
        ("Bcc", "secret@example.org"),
        ("Reply-To", "helpdesk"),
        ("Sender", "robot"),
        ("Return-Path", "<bogus@example.org>"),
        ("Content-Length", "12345"),
    ], body="line one\n\nline three\n")
    start = time.time()
    res, m = deliver(postino, hub, tok,
                     args=("-F", "Test User", "-f", "sender@example.org",
                           RCPT),
                     msg=msg, MailHub=hub.hub("plain"))
    names = [n.lower() for n, _ in m.headers]
    # The hub's Received: first, then ours, prepended to the caller's.
    assert names[0] == "received" and names[1] == "received", names
    ours = m.headers[1][1]
    qid = res.log_to(RCPT)[0].qid
    rx = (r"^by %s \(postino, from userid %d\) id %s; (.+)$"
          % (re.escape(HOSTNAME), os.getuid(), qid))
    mm = re.match(rx, ours)
    assert mm, ours
    assert abs(email.utils.parsedate_to_datetime(mm.group(1)).timestamp()
               - start) < 120
    for gone in ("bcc", "return-path", "content-length"):
        assert gone not in names, m.header_block
    date = m.header("Date")
    assert len(date) == 1
    assert abs(email.utils.parsedate_to_datetime(date[0]).timestamp()
               - start) < 120
    mid = m.header("Message-ID")
    assert len(mid) == 1 and re.match(r"^<[^<>@\s]+@[^<>@\s]+>$", mid[0]), mid
    assert m.header("From") == ["Test User <sender@example.org>"]
    assert m.header("To") == ["rcpt@%s, other@example.org" % DOMAIN]
    assert m.header("Cc") == ["Carbon <cc1@%s>" % DOMAIN]
    assert m.header("Reply-To") == ["helpdesk@%s" % DOMAIN]
    assert m.header("Sender") == ["robot@%s" % DOMAIN]
    assert m.sender == "sender@example.org"
    # Bcc: was a header only; without -t it names no recipient.
    assert m.recipients == [RCPT]
    assert m.body.startswith("line one\n\nline three\n"), m.body


def test_added_from_uses_gecos(postino, hub):
    tok = token()
    _, m = deliver(postino, hub, tok, MailHub=hub.hub("plain"))
    assert m.header("From") == ["%s <%s@%s>" % (gecos_name(), login(),
                                               DOMAIN)]


def test_existing_headers_kept(postino, hub):
    tok = token()
    msg = message(tok, headers=[
        ("From", "Alice <alice@example.org>"), ("To", RCPT),
        ("Date", "Mon, 02 Jan 2006 15:04:05 +0000"),
        ("Message-ID", "<fixed-%s@example.org>" % tok)])
    _, m = deliver(postino, hub, tok, MailHub=hub.hub("plain"), msg=msg)
    assert m.header("From") == ["Alice <alice@example.org>"]
    assert m.header("Date") == ["Mon, 02 Jan 2006 15:04:05 +0000"]
    assert m.header("Message-ID") == ["<fixed-%s@example.org>" % tok]
    # FromLineOverride is off: the envelope is still login@domain.
    assert m.sender == "%s@%s" % (login(), DOMAIN)


def test_from_line_override(postino, hub):
    tok = token()
    msg = message(tok, headers=[("From", "Alice <alice@example.org>"),
                                ("To", RCPT)])
    _, m = deliver(postino, hub, tok, MailHub=hub.hub("plain"), msg=msg,
                   FromLineOverride="YES")
    assert m.sender == "alice@example.org"


def test_extract_recipients_t(postino, hub):
    tok = token()
    msg = message(tok, headers=[
        ("To", '"Doe, John" <jd@example.org>'),
        ("Cc", "jane@example.org,\n\tundisclosed-recipients:;"),
        ("Bcc", "hidden@example.org"),
    ])
    _, m = deliver(postino, hub, tok, args=("-t", "extra@example.org"),
                   msg=msg, MailHub=hub.hub("plain"))
    assert sorted(m.recipients) == sorted([
        "jd@example.org", "jane@example.org", "hidden@example.org",
        "extra@example.org"])
    assert m.header("Bcc") == []
    assert m.header("To") == ['"Doe, John" <jd@example.org>']
