"""TLS policy: certificates that must be refused before any secret is sent,
the keys that make them acceptable, STARTTLS that is missing or tampered
with."""

import base64

import pytest

from helpers import expect_tempfail, message, token
from postfixhub import SASL_PASS, SASL_USER

RCPT = "rcpt@example.org"
HINT = r"TLS_CA_File|TLSFingerprint"


def auth_keys(hub, service, **extra):
    keys = dict(MailHub=hub.hub(service), UseSTARTTLS="YES",
                AuthUser=SASL_USER, AuthPass=SASL_PASS)
    keys.update(extra)
    return keys


def hub_session_line(hub, service, offset):
    """The hub's 'disconnect from' line of postino's session (one that
    said EHLO: the hub's own readiness probe, which may be logged after
    offset when this is the first test to use the service, did not)."""
    line = hub.wait_log(offset, r"postfix-%s/smtpd\[\d+\]: disconnect from "
                        r"\S+ ehlo=" % service)
    assert line, hub.log_since(offset)
    return line


# -- refused before AUTH --------------------------------------------------

@pytest.mark.parametrize("service,ca,key", [
    # The CA is right but the name is not: only a pin can vouch for it.
    ("wrongname", "ca", "TLSFingerprint"),
    # A CA nobody told postino about.
    ("unknownca", None, "TLS_CA_File"),
])
def test_bad_certificate_refused_before_auth(postino, hub, certs, service,
                                             ca, key):
    tok = token()
    off = hub.log_size()
    extra = {"TLS_CA_File": certs.ca.cert} if ca else {}
    postino.config(**auth_keys(hub, service, **extra))
    res = postino.run([RCPT], message(tok))
    line = expect_tempfail(res, postino, mentions=HINT, admin=True)
    assert key in line, res.describe()
    assert SASL_PASS not in res.err and SASL_PASS not in res.log_text
    # The hub saw EHLO and STARTTLS and then nothing: no AUTH, no MAIL.
    stats = hub_session_line(hub, service, off)
    assert "starttls=" in stats, stats
    assert "auth=" not in stats and "mail=" not in stats, stats
    assert "sasl_method" not in hub.log_since(off)
    assert hub.find(tok, timeout=0.3) == []


def test_unknown_ca_accepted_with_its_ca_file(postino, hub, certs):
    tok = token()
    postino.config(**auth_keys(hub, "unknownca",
                               TLS_CA_File=certs.other_ca.cert))
    res = postino.run([RCPT], message(tok)).ok()
    m = hub.find_one(tok)
    assert "Authenticated sender: %s@" % SASL_USER in m.header("Received")[0]
    assert res.log_to(RCPT)[0].fields["tls"].endswith("verified")


@pytest.mark.parametrize("service", ["wrongname", "unknownca"])
@pytest.mark.parametrize("pin", ["spki", "cert"])
def test_pinned_certificate_accepted(postino, hub, certs, service, pin):
    pair = certs.wrongname if service == "wrongname" else certs.unknownca
    fp = pair.spki_pin if pin == "spki" else pair.cert_pin
    tok = token()
    postino.config(**auth_keys(hub, service, TLSFingerprint=fp))
    postino.run([RCPT], message(tok)).ok()
    m = hub.find_one(tok)
    assert "Authenticated sender: %s@" % SASL_USER in m.header("Received")[0]


def test_wrong_pin_does_not_vouch(postino, hub, certs):
    """A pin that does not match vouches for nothing: a chain that does not
    verify is still refused."""
    tok = token()
    off = hub.log_size()
    postino.config(**auth_keys(hub, "unknownca",
                               TLSFingerprint=certs.wrongname.spki_pin))
    res = postino.run([RCPT], message(tok))
    expect_tempfail(res, postino, mentions=HINT, admin=True)
    stats = hub_session_line(hub, "unknownca", off)
    assert "auth=" not in stats and "mail=" not in stats, stats
    assert hub.find(tok, timeout=0.3) == []


def test_verification_off_is_logged(postino, hub, certs):
    tok = token()
    postino.config(**auth_keys(hub, "unknownca", TLSVerify="NO"))
    res = postino.run([RCPT], message(tok)).ok()
    hub.find_one(tok)
    assert "tlsverify" in res.log_text.lower(), res.describe()
    assert not res.log_to(RCPT)[0].fields["tls"].endswith(" verified")


# -- STARTTLS missing or tampered with (fault server) -------------------------

def test_starttls_required_but_not_offered(postino, fault):
    srv = fault(auth={"user": "secret-pw"}, auth_plaintext=True)
    postino.config(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                   AuthUser="user", AuthPass="secret-pw")
    res = postino.run([RCPT], message(token()))
    expect_tempfail(res, postino, mentions=r"(?i)starttls", admin=True)
    s = srv.wait_idle()[0]
    assert s.saw("EHLO") or s.saw("HELO"), s.commands
    assert not s.auth_seen, s.commands
    assert not s.saw("MAIL") and not s.saw("STARTTLS"), s.commands
    assert srv.messages == []


def test_starttls_response_injection_refused(postino, fault, certs):
    """Bytes after the 220 to STARTTLS would be read as the reply to the
    first command inside TLS (CVE-2011-0411 class): refuse them."""
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                replies={"starttls": "220 go ahead"},
                inject=b"250 injected\r\n", auth={"user": "secret-pw"})
    postino.config(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                   TLS_CA_File=certs.ca.cert, AuthUser="user",
                   AuthPass="secret-pw")
    res = postino.run([RCPT], message(token()))
    expect_tempfail(res, postino, admin=None)
    s = srv.wait_idle()[0]
    assert s.saw("STARTTLS"), s.commands
    assert not s.auth_seen and not s.saw("MAIL"), s.commands
    assert srv.messages == []


def test_starttls_4xx_is_temporary(postino, fault, certs):
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                replies={"starttls": "454 4.7.0 TLS not available"})
    postino.config(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                   TLS_CA_File=certs.ca.cert)
    res = postino.run([RCPT], message(token()))
    expect_tempfail(res, postino)
    s = srv.wait_idle()[0]
    assert not s.saw("MAIL"), s.commands


def test_starttls_good_certificate_then_auth(postino, fault, certs):
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                auth={"user": "secret-pw"})
    postino.config(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                   TLS_CA_File=certs.ca.cert, AuthUser="user",
                   AuthPass="secret-pw")
    postino.run([RCPT], message(token())).ok()
    s = srv.wait_idle()[0]
    assert s.tls and s.tls_version in ("TLSv1.2", "TLSv1.3")
    # RFC 3207: forget what was said before TLS and EHLO again.
    verbs = s.verbs()
    assert verbs.index("STARTTLS") < len(verbs) - 1
    after = verbs[verbs.index("STARTTLS") + 1:]
    assert after[0] == "EHLO", verbs
    assert [a[3] for a in s.auth] == [True]
    assert len(srv.messages) == 1


def test_no_auth_without_tls(postino, fault):
    """AUTH never goes over a connection without TLS unless asked to."""
    srv = fault(auth={"user": "secret-pw"})
    postino.config(MailHub=srv.mailhub(), AuthUser="user",
                   AuthPass="secret-pw")
    res = postino.run([RCPT], message(token()))
    sessions = srv.wait_idle()
    assert not any(s.auth_seen for s in sessions), srv.commands()
    wire = b"".join(c for s in sessions for c in s.chunks)
    for secret in (b"secret-pw", base64.b64encode(b"secret-pw"),
                   base64.b64encode(b"\0user\0secret-pw")):
        assert secret not in wire
    if srv.messages:
        res.ok()    # sent without AUTH, as an unauthenticated client
    else:
        # A config that can never authenticate: the admin must hear of it.
        expect_tempfail(res, postino, mentions="AuthAllowPlaintext|TLS",
                        admin=True)


def test_auth_plaintext_when_allowed(postino, fault):
    srv = fault(auth={"user": "secret-pw"})
    postino.config(MailHub=srv.mailhub(), AuthUser="user",
                   AuthPass="secret-pw", AuthAllowPlaintext="YES")
    postino.run([RCPT], message(token())).ok()
    s = srv.wait_idle()[0]
    assert [(a[1], a[3]) for a in s.auth] == [("user", True)]
    assert len(srv.messages) == 1
