"""Issue 10 part 2: `postino check --hub`, a hub check that replaces
`openssl s_client` and doubles as a monitoring plugin: first line
POSTINO HUB OK|WARNING|CRITICAL - ..., exit 0/1/2, performance data
after '|', --json; a session as a delivery opens it (TLS, verification,
AUTH), QUIT, and never MAIL, RCPT or DATA."""

import json
import re

from helpers import token, unused_port
from postfixhub import SASL_PASS, SASL_USER


def check(postino, *extra, **keys):
    postino.config(**keys)
    return postino.run(["check", "--hub"] + list(extra), b"",
                       argv0="postino")


def first_line(res):
    return res.out.splitlines()[0] if res.out else ""


def no_mail_in_hub_log(hub, offset):
    """Postfix's smtpd summary line names every command the client sent."""
    line = hub.wait_log(offset, r"disconnect from .* quit=1")
    assert "mail=" not in line and "rcpt=" not in line, line
    assert "data=" not in line, line
    return line


def test_ok_against_postfix_with_starttls_and_auth(postino, hub, certs):
    off = hub.log_size()
    res = check(postino, MailHub=hub.hub("submission"), UseSTARTTLS="YES",
                TLS_CA_File=certs.ca.cert, AuthUser=SASL_USER,
                AuthPass=SASL_PASS)
    assert res.rc == 0, res.describe()
    assert first_line(res).startswith("POSTINO HUB OK - 1/1 hub takes "
                                      "mail | hubs_up=1;"), res.out
    assert re.search(r"'greeting_127\.0\.0\.1:\d+'=[\d.]+s", first_line(res))
    assert re.search(r"^  greeting: \d+ ms: 220 ", res.out, re.M), res.out
    assert re.search(r"^  EHLO: .*\bAUTH\b", res.out, re.M), res.out
    assert re.search(r"^  TLS: TLSv1\.\d \S+ verified$", res.out, re.M), \
        res.out
    assert "AUTH: accepted as %s (password not shown)" % SASL_USER \
        in res.out, res.out
    # The certificate: subject, issuer, days until it expires.
    assert re.search(r"^  certificate: subject CN=localhost,O=postino tests; "
                     r"issuer CN=postino test CA,O=postino tests; "
                     r"expires in 36[45] days$", res.out, re.M), res.out
    assert re.search(r"'cert_days_127\.0\.0\.1:\d+'=36[45];14",
                     first_line(res)), res.out
    assert SASL_PASS not in res.out + res.err
    line = no_mail_in_hub_log(hub, off)
    assert "auth=1" in line and "starttls=1" in line, line


def test_warning_when_tls_is_not_verified(postino, hub):
    res = check(postino, MailHub=hub.hub("submission"), UseSTARTTLS="YES",
                TLSVerify="NO")
    assert res.rc == 1, res.describe()
    assert first_line(res).startswith("POSTINO HUB WARNING - "), res.out
    assert "TLSVerify=NO" in first_line(res), res.out


def test_critical_with_a_wrong_ca_names_the_pin(postino, hub):
    """Without the hub's CA the chain fails: CRITICAL, and the output
    gives the TLSFingerprint line that would pin the hub's key."""
    off = hub.log_size()
    res = check(postino, MailHub=hub.hub("submission"), UseSTARTTLS="YES")
    assert res.rc == 2, res.describe()
    assert first_line(res).startswith("POSTINO HUB CRITICAL - 0/1 "), \
        res.out
    assert re.search(r"TLSFingerprint=sha256:[0-9A-Fa-f:]{20,}", res.out), \
        res.out
    assert "hubs_up=0;" in first_line(res)
    hub.wait_log(off, r"disconnect from ")
    assert "MAIL FROM" not in hub.log_since(off)


def test_critical_with_a_wrong_password(postino, hub, certs):
    wrong = "not-the-password-%s" % token()
    res = check(postino, MailHub=hub.hub("submission"), UseSTARTTLS="YES",
                TLS_CA_File=certs.ca.cert, AuthUser=SASL_USER,
                AuthPass=wrong)
    assert res.rc == 2, res.describe()
    assert first_line(res).startswith("POSTINO HUB CRITICAL - "), res.out
    assert "AUTH: refused" in res.out, res.out
    assert re.search(r"\b535\b", res.out), res.out
    assert wrong not in res.out + res.err


def test_critical_when_unreachable(postino):
    port = unused_port()
    res = check(postino, MailHub="127.0.0.1:%d" % port)
    assert res.rc == 2, res.describe()
    assert first_line(res).startswith("POSTINO HUB CRITICAL - 0/1 "), \
        res.out
    assert "127.0.0.1:%d: unreachable" % port in res.out, res.out


def test_only_ehlo_and_quit_reach_the_hub(postino, fault):
    srv = fault()
    res = check(postino, MailHub=srv.mailhub())
    assert res.rc == 0, res.describe()
    srv.wait_idle()
    assert srv.sessions and srv.sessions[0].verbs() == ["EHLO", "QUIT"], \
        [s.commands for s in srv.sessions]


def test_json(postino, fault):
    srv = fault()
    res = check(postino, "--json", MailHub=srv.mailhub())
    assert res.rc == 0, res.describe()
    doc = json.loads(res.out)
    assert doc["status"] == "OK" and doc["hubs_up"] == 1, doc
    h = doc["hubs"][0]
    assert h["hub"] == "127.0.0.1:%d" % srv.port
    assert h["reachable"] and h["takes_mail"], h
    assert h["greeting"].startswith("220"), h
    assert h["auth"] == "not configured"


def test_plain_check_is_unchanged(postino, fault):
    """Without --hub, postino check connects to nothing."""
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    res = postino.run(["check"], b"", argv0="postino")
    assert res.rc == 0, res.describe()
    assert "POSTINO HUB" not in res.out
    assert not srv.sessions


def test_warning_when_the_certificate_expires_soon(postino, fault, certs):
    """A hub certificate expiring within --warn-days (default 14) is a
    WARNING: mail still flows, an admin has to renew it."""
    srv = fault(tls_cert=certs.shortlived.cert, tls_key=certs.shortlived.key)
    keys = dict(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                TLS_CA_File=certs.ca.cert)
    res = check(postino, **keys)
    assert res.rc == 1, res.describe()
    # Made for three days a moment ago: two whole days left (three if
    # this is still the second it was made in).
    assert re.match(r"POSTINO HUB WARNING - 1/1 hub takes mail; %s: "
                    r"certificate expires in [23] days \| "
                    % re.escape(srv.mailhub()), first_line(res)), res.out
    assert re.search(r"^  certificate: subject CN=localhost,O=postino tests; "
                     r"issuer CN=postino test CA,O=postino tests; expires in "
                     r"[23] days \(WARNING: within --warn-days\)$", res.out,
                     re.M), res.out
    js = check(postino, "--json", **keys)
    assert js.rc == 1, js.describe()
    hub = json.loads(js.out)["hubs"][0]
    assert hub["cert_days_left"] in (2, 3), js.out
    assert hub["cert_expiring"] is True, js.out
    assert hub["cert_subject"] == "CN=localhost,O=postino tests", js.out
    # --warn-days 1: two days left is no longer a warning.
    ok = check(postino, "--warn-days", "1", **keys)
    assert ok.rc == 0, ok.describe()
    assert first_line(ok).startswith("POSTINO HUB OK - 1/1 hub takes mail"), \
        ok.out
