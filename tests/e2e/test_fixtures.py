"""The fixtures on their own, driven by Python's smtplib instead of postino:
when a postino test fails, these say whether the hub or the fault server
is at fault. They need no postino binary."""

import smtplib
import socket
import ssl
import time

import pytest

from helpers import token
from postfixhub import SASL_PASS, SASL_USER


def msg(tok):
    return ("From: fixture@example.org\r\nTo: rcpt@example.org\r\n"
            "Subject: fixture %s\r\n\r\nbody\r\n" % tok)


def ctx(certs, client=False):
    c = ssl.create_default_context(cafile=certs.ca.cert)
    if client:
        c.load_cert_chain(certs.client.cert, certs.client.key)
    return c


def test_hub_plain(hub):
    tok = token()
    with smtplib.SMTP("127.0.0.1", hub.ports["plain"], timeout=10) as s:
        s.sendmail("fixture@example.org", ["rcpt@example.org"], msg(tok))
    m = hub.find_one(tok)
    assert m.sender == "fixture@example.org"
    assert m.recipients == ["rcpt@example.org"]
    assert m.server_port == hub.ports["plain"]


def test_hub_submission_relays_only_after_auth(hub):
    with smtplib.SMTP("127.0.0.1", hub.ports["submission"], timeout=10) as s:
        s.starttls(context=ssl.create_default_context(
            cafile=hub.certs.ca.cert))
        s.ehlo()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("f@example.org", ["rcpt@example.org"], msg(token()))


def test_hub_submission_auth(hub, certs):
    tok = token()
    with smtplib.SMTP("127.0.0.1", hub.ports["submission"], timeout=10) as s:
        s.starttls(context=ctx(certs))
        s.login(SASL_USER, SASL_PASS)
        s.sendmail("fixture@example.org", ["rcpt@example.org"], msg(tok))
    rcv = hub.find_one(tok).header("Received")[0]
    assert "Authenticated sender: %s@" % SASL_USER in rcv, rcv


def test_hub_smtps_auth(hub, certs):
    tok = token()
    with smtplib.SMTP_SSL("127.0.0.1", hub.ports["smtps"], timeout=10,
                          context=ctx(certs)) as s:
        s.login(SASL_USER, SASL_PASS)
        s.sendmail("fixture@example.org", ["rcpt@example.org"], msg(tok))
    assert "ESMTPSA" in hub.find_one(tok).header("Received")[0]


def test_hub_client_cert(hub, certs):
    tok = token()
    with smtplib.SMTP("127.0.0.1", hub.ports["ccert"], timeout=10) as s:
        s.starttls(context=ctx(certs, client=True))
        s.sendmail("fixture@example.org", ["rcpt@example.org"], msg(tok))
    assert "(verified OK)" in hub.find_one(tok).header("Received")[0]


@pytest.mark.parametrize("service", ["wrongname", "unknownca"])
def test_hub_bad_certs_fail_verification(hub, certs, service):
    with smtplib.SMTP("localhost", hub.ports[service], timeout=10) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            s.starttls(context=ctx(certs))


def test_certs_pins(certs):
    for pair in (certs.server, certs.wrongname, certs.unknownca):
        for pin in (pair.spki_pin, pair.cert_pin):
            assert pin.startswith("sha256:") and len(pin) == 7 + 64
        assert pair.spki_pin != pair.cert_pin


def test_fault_records_pipelined_group(fault):
    srv = fault()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo("fixture.test")
        assert s.has_extn("pipelining")
        s.sock.sendall(b"MAIL FROM:<a@example.org>\r\n"
                       b"RCPT TO:<b@example.org>\r\nDATA\r\n")
        for want in (250, 250, 354):
            assert s.getreply()[0] == want
        s.sock.sendall(b"Subject: x\r\n\r\n..dot\r\n.\r\n")
        assert s.getreply()[0] == 250
    s = srv.wait_idle()[0]
    assert any(c.count(b"\r\n") == 3 for c in s.chunks), s.chunks
    m = srv.messages[0]
    assert m.wire == b"Subject: x\r\n\r\n..dot\r\n"
    assert m.content == b"Subject: x\r\n\r\n.dot\r\n"


def test_fault_stall_and_reply_codes(fault):
    srv = fault(stall_at="mail", rcpt_replies={"x@example.org": "550 no"})
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=1) as s:
        s.ehlo("fixture.test")
        t = time.monotonic()
        with pytest.raises((socket.timeout, smtplib.SMTPServerDisconnected)):
            s.mail("a@example.org")
        assert time.monotonic() - t >= 0.9
    assert "stalled at mail" in srv.wait_idle()[0].events


def test_fault_starttls_injection_and_auth(fault, certs):
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                inject=b"250 injected\r\n", auth={"u": "p"})
    raw = socket.create_connection(("127.0.0.1", srv.port), 10)
    raw.recv(1024)
    raw.sendall(b"EHLO x\r\n")
    time.sleep(0.2)
    assert b"STARTTLS" in raw.recv(4096)
    raw.sendall(b"STARTTLS\r\n")
    time.sleep(0.2)
    assert raw.recv(4096) == (b"220 2.0.0 Ready to start TLS\r\n"
                              b"250 injected\r\n")
    raw.close()
    assert srv.wait_idle()[0].saw("STARTTLS")


def test_fault_drop_in_data(fault):
    srv = fault(drop_in_data=100)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.sendmail("a@example.org", ["b@example.org"], "x" * 10000)
    s = srv.wait_idle()[0]
    assert any(e.startswith("dropped in DATA") for e in s.events)
    assert srv.messages == []
