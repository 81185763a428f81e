"""Issue 10 part 2: `postino check --hub`, a hub check that replaces
`openssl s_client` and doubles as a monitoring plugin: first line
POSTINO HUB OK|WARNING|CRITICAL - ..., exit 0/1/2, performance data
after '|', --json; a session as a delivery opens it (TLS, verification,
AUTH), QUIT, and never MAIL, RCPT or DATA."""

import json
import re
import socket

import pytest

from helpers import message, token, unused_port
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


def test_check_never_resumes_a_stored_session(postino, hub, certs):
    """A send keeps its TLS session for the next run; check --hub makes a
    full handshake anyway, so that it shows the certificate the hub
    presents now (a resumed session only holds the one it was made with)."""
    keys = dict(MailHub=hub.hub("submission"), UseSTARTTLS="YES",
                TLS_CA_File=certs.ca.cert, AuthUser=SASL_USER,
                AuthPass=SASL_PASS)
    postino.config(**keys)
    for _ in range(2):
        tok = token()
        res = postino.run(["rcpt@example.org"], message(tok)).ok()
        hub.find_one(tok)
    assert res.log_to("rcpt@example.org")[0].fields["tls"].endswith(
        " verified (resumed)"), "the send did not resume: nothing tested"
    res = check(postino, **keys)
    assert res.rc == 0, res.describe()
    assert re.search(r"^  TLS: TLSv1\.3 \S+ verified$", res.out, re.M), \
        res.out
    assert "resumed" not in res.out, res.out


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


# -- every address of a hub ---------------------------------------------------

DUAL_HOSTS = "::1 localhost\n127.0.0.1 localhost\n"


def check_dual(postino, *extra, **keys):
    """check --hub with localhost on ::1 and 127.0.0.1 (a private
    /etc/hosts: this machine maps localhost to 127.0.0.1 only)."""
    from test_hubs import run_with_hosts
    postino.config(**keys)
    return run_with_hosts(postino, DUAL_HOSTS, ["check", "--hub"] +
                          list(extra), b"")


def port_closed(host, port):
    try:
        socket.create_connection((host, port), 1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("served", ["::1", "127.0.0.1"])
def test_one_address_of_a_hub_closed_is_warning(postino, fault, served):
    """localhost on both addresses, one served, the other closed: mail
    flows (a delivery moves on to the next address) but every message
    pays for the dead one, so an admin is needed: WARNING, with one
    finding per address."""
    srv = fault(host=served)
    closed = "127.0.0.1" if served == "::1" else "::1"
    if not port_closed(closed, srv.port):
        pytest.skip("port %d is in use on %s" % (srv.port, closed))
    hub = "localhost:%d" % srv.port
    res = check_dual(postino, MailHub=hub)
    assert res.rc == 1, res.describe()
    first = first_line(res)
    up = "localhost[%s]:%d" % (served, srv.port)
    down = "localhost[%s]:%d" % (closed, srv.port)
    assert first.startswith("POSTINO HUB WARNING - 1/1 hub takes mail "
                            "(1/2 addresses); %s: cannot connect to mailhub "
                            "%s: " % (down, down)), first
    assert " | hubs_up=1;;1;0;1 addresses_up=1;;1;0;2 " in first, first
    assert re.search(r"'greeting_%s'=[\d.]+s" % re.escape(up), first), first
    assert "greeting_%s" % down not in first, first
    assert re.search(r"^hub %s: takes mail\n  greeting: \d+ ms: 220 "
                     r"(.*\n)*?  QUIT: 221 2\.0\.0 Bye\n"
                     % re.escape(up), res.out, re.M), res.out
    assert re.search(r"^hub %s: unreachable\n(  .*\n)*?  error: cannot "
                     r"connect" % re.escape(down), res.out, re.M), res.out
    srv.wait_idle()
    assert [s.verbs() for s in srv.sessions] == [["EHLO", "QUIT"]]
    # --json: the same two findings, each with its address.
    js = check_dual(postino, "--json", MailHub=hub)
    assert js.rc == 1, js.describe()
    doc = json.loads(js.out)
    assert (doc["status"], doc["hubs_up"], doc["hubs_total"],
            doc["addresses_up"], doc["addresses_total"]) == \
        ("WARNING", 1, 1, 1, 2), doc
    found = {h["address"]: h for h in doc["hubs"]}
    assert set(found) == {"::1", "127.0.0.1"}, doc
    assert all(h["hub"] == hub for h in doc["hubs"]), doc
    assert found[served]["takes_mail"] and found[served]["reachable"]
    assert found[served]["relay"] == up, doc
    assert found[served]["quit"] == "221 2.0.0 Bye", doc
    assert not found[closed]["takes_mail"] and \
        not found[closed]["reachable"], doc
    assert found[closed]["error"].startswith("cannot connect"), doc


def test_every_address_served_is_ok(postino, fault, certs):
    """Both addresses served, STARTTLS verified against the name (the
    connection is made to an address, the certificate is checked for
    localhost): OK with two findings, one session on each address."""
    tls = dict(tls_cert=certs.server.cert, tls_key=certs.server.key)
    v6 = fault(host="::1", **tls)
    try:
        v4 = fault(host="127.0.0.1", port=v6.port, **tls)
    except OSError:
        pytest.skip("port %d is in use on 127.0.0.1" % v6.port)
    res = check_dual(postino, MailHub="localhost:%d" % v6.port,
                     UseSTARTTLS="YES", TLS_CA_File=certs.ca.cert)
    assert res.rc == 0, res.describe()
    first = first_line(res)
    assert first.startswith("POSTINO HUB OK - 1/1 hub takes mail "
                            "(2/2 addresses) | hubs_up=1;;1;0;1 "
                            "addresses_up=2;;1;0;2 "), first
    for addr in ("::1", "127.0.0.1"):
        name = re.escape("localhost[%s]:%d" % (addr, v6.port))
        assert re.search(r"'greeting_%s'=[\d.]+s" % name, first), first
        assert re.search(r"'cert_days_%s'=36[45];14" % name, first), first
        assert re.search(r"^hub %s: takes mail$" % name, res.out, re.M), \
            res.out
    assert len(re.findall(r"^  TLS: TLSv1\.\d \S+ verified$", res.out,
                          re.M)) == 2, res.out
    for srv in (v6, v4):
        srv.wait_idle()
        assert [s.verbs() for s in srv.sessions] == \
            [["EHLO", "STARTTLS", "EHLO", "QUIT"]], srv.sessions


def test_literal_address_hub(postino, fault):
    """A hub given as an address is one finding, named as configured."""
    srv = fault(host="::1")
    res = check(postino, MailHub="[::1]:%d" % srv.port)
    assert res.rc == 0, res.describe()
    first = first_line(res)
    assert first.startswith("POSTINO HUB OK - 1/1 hub takes mail | "
                            "hubs_up=1;;1;0;1 addresses_up=1;;1;0;1 "), first
    assert re.search(r"'greeting_\[::1\]:%d'=[\d.]+s" % srv.port, first)
    assert re.search(r"^hub \[::1\]:%d: takes mail$" % srv.port, res.out,
                     re.M), res.out
    js = check(postino, "--json", MailHub="[::1]:%d" % srv.port)
    doc = json.loads(js.out)
    assert len(doc["hubs"]) == 1, doc
    h = doc["hubs"][0]
    assert (h["hub"], h["address"], h["takes_mail"]) == \
        ("[::1]:%d" % srv.port, "::1", True), doc


def test_hub_without_a_usable_address_is_a_finding(postino, fault):
    """SourceAddress=127.0.0.1 cannot reach an IPv6 hub: a delivery skips
    it, and the check names it (one of two hubs: WARNING)."""
    srv = fault(host="127.0.0.1")
    v6 = "[::1]:%d" % unused_port()
    res = check(postino, MailHub="%s, %s" % (v6, srv.mailhub()),
                SourceAddress="127.0.0.1")
    assert res.rc == 1, res.describe()
    first = first_line(res)
    assert first.startswith("POSTINO HUB WARNING - 1/2 hubs take mail; "
                            "%s: mailhub '::1' has no IPv4 address "
                            "(SourceAddress=127.0.0.1) | " % v6), first
    assert "hub %s: unreachable" % v6 in res.out, res.out
