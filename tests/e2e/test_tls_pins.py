"""TLSFingerprint against the private Postfix hub: a pin is a constraint
(a chain that verifies does not override it), a matching pin vouches
alone, several pins allow a key rotation, and a list that is too long or
malformed is a configuration error naming file and line."""

import pytest

from helpers import expect_tempfail, message, token
from postfixhub import SASL_PASS, SASL_USER

RCPT = "rcpt@example.org"
# Pins of a key the hub does not have: the old key of a rotation.
OLD = "sha256:" + "ab" * 32
OTHER = "sha256:" + ":".join(["cd"] * 32)


def auth_keys(hub, service, **extra):
    keys = dict(MailHub=hub.hub(service), UseSTARTTLS="YES",
                AuthUser=SASL_USER, AuthPass=SASL_PASS)
    keys.update(extra)
    return keys


def refused_before_auth(hub, service, offset, tok):
    """The hub saw STARTTLS and then nothing: no AUTH, no MAIL, no mail."""
    line = hub.wait_log(offset, r"postfix-%s/smtpd\[\d+\]: disconnect from"
                        % service)
    assert line, hub.log_since(offset)
    assert "auth=" not in line and "mail=" not in line, line
    assert hub.find(tok, timeout=0.3) == []


def hex_of(pin):
    return pin.split(":", 1)[1]


@pytest.mark.parametrize("verify", ["YES", "NO"])
def test_wrong_pin_refused_although_chain_verifies(postino, hub, certs,
                                                   verify):
    """The CA file verifies the hub's chain and name; the pin names
    another key: the message is queued, and the warning names the key to
    fix and the key the hub really has."""
    tok = token()
    off = hub.log_size()
    postino.config(**auth_keys(hub, "submission", TLSVerify=verify,
                               TLS_CA_File=certs.ca.cert,
                               TLSFingerprint=OLD))
    res = postino.run([RCPT], message(tok))
    line = expect_tempfail(res, postino, mentions="TLSFingerprint",
                           admin=True)
    assert hex_of(certs.server.spki_pin) in line, res.describe()
    assert SASL_PASS not in res.err and SASL_PASS not in res.log_text
    refused_before_auth(hub, "submission", off, tok)


def test_same_config_without_pin_is_sent(postino, hub, certs):
    """The control for the test above: the same hub and CA file send."""
    tok = token()
    postino.config(**auth_keys(hub, "submission",
                               TLS_CA_File=certs.ca.cert))
    res = postino.run([RCPT], message(tok)).ok()
    hub.find_one(tok)
    assert res.log_to(RCPT)[0].fields["tls"].endswith("verified")


@pytest.mark.parametrize("service,ca", [
    # The chain verifies: the pin list still has to match.
    ("submission", True),
    # It does not (wrong name, unknown CA): the matching pin vouches.
    ("wrongname", False),
    ("unknownca", False),
])
def test_second_of_two_pins_matches(postino, hub, certs, service, ca):
    pair = {"submission": certs.server, "wrongname": certs.wrongname,
            "unknownca": certs.unknownca}[service]
    tok = token()
    extra = {"TLS_CA_File": certs.ca.cert} if ca else {}
    postino.config(**auth_keys(hub, service,
                               TLSFingerprint="%s, %s" % (OLD,
                                                          pair.spki_pin),
                               **extra))
    res = postino.run([RCPT], message(tok)).ok()
    m = hub.find_one(tok)
    assert "Authenticated sender: %s@" % SASL_USER in m.header("Received")[0]
    assert res.log_to(RCPT)[0].fields["tls"].endswith("pinned")


def test_certificate_pin_among_several(postino, hub, certs):
    """Formats mix in one list: a colon-separated pin, then the digest of
    the whole certificate in upper case, blanks after the commas."""
    tok = token()
    pins = "%s,  %s ,%s" % (OTHER, certs.wrongname.cert_pin.upper(), OLD)
    postino.config(**auth_keys(hub, "wrongname", TLSFingerprint=pins))
    postino.run([RCPT], message(tok)).ok()
    hub.find_one(tok)


def test_no_pin_of_the_list_matches(postino, hub, certs):
    tok = token()
    off = hub.log_size()
    postino.config(**auth_keys(hub, "unknownca",
                               TLSFingerprint="%s, %s, %s" % (
                                   OLD, OTHER, certs.wrongname.spki_pin)))
    res = postino.run([RCPT], message(tok))
    line = expect_tempfail(res, postino, mentions="TLSFingerprint",
                           admin=True)
    assert hex_of(certs.unknownca.spki_pin) in line, res.describe()
    refused_before_auth(hub, "unknownca", off, tok)


@pytest.mark.parametrize("value,want", [
    (", ".join("sha256:%02x%s" % (i, "00" * 31) for i in range(9)),
     "more than 8 pins"),
    (OLD + ", sha256:" + "ab" * 31, "pin 2 is not one"),
    (OLD + ",", "pin 2 is not one"),
], ids=["nine", "short", "empty"])
def test_bad_pin_list_names_file_and_line(postino, hub, value, want):
    path = postino.raw_config("# pins\nMailHub=%s\nTLSFingerprint=%s\n"
                              % (hub.hub("submission"), value))
    res = postino.run([RCPT], message(token()), config=path)
    assert res.rc == 78, res.describe()
    assert res.stdout == b""
    line = res.err_lines()[0]
    assert "%s:3: TLSFingerprint" % path in line, res.describe()
    assert want in line, res.describe()
    assert postino.queue_entries() == []
