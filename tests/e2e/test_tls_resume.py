"""TLS session resumption across invocations (issue 11 item 3), against
the private Postfix hub (which issues TLS 1.3 tickets: tlsmgr runs and
smtpd_tls_session_cache_timeout keeps its default of 3600 s).

The session of a verified connection is kept in
QueueDir/tls-session.HOST.PORT (group-only, bound to the hub's name and
port and to every trust setting) and offered by the next run, which
logs "... verified (resumed)". A changed CA file or pin is another
binding (a full handshake); an expired or corrupt file is ignored; a
resumed session is judged again, so a session whose certificate no
longer matches the pin is refused even when the server resumes it."""

import os
import shutil
import stat

import pytest

from helpers import expect_tempfail, message, token
from postfixhub import SASL_PASS, SASL_USER
from privhelpers import accounts_fixture, install_fixture

RCPT = "rcpt@example.org"


def keys(hub, certs, **extra):
    k = dict(MailHub=hub.hub("submission"), UseSTARTTLS="YES",
             AuthUser=SASL_USER, AuthPass=SASL_PASS,
             TLS_CA_File=certs.ca.cert)
    k.update(extra)
    return k


def session_file(postino, hub):
    return os.path.join(postino.queue_dir, "tls-session.127.0.0.1.%d" %
                        hub.ports["submission"])


def send(postino, hub):
    """One message sent; the TLS details of its log line."""
    tok = token()
    res = postino.run([RCPT], message(tok)).ok()
    hub.find_one(tok)
    return res.log_to(RCPT)[0].fields["tls"]


def test_second_send_is_resumed(postino, hub, certs):
    postino.config(**keys(hub, certs))
    first = send(postino, hub)
    assert first.endswith(" verified"), first
    path = session_file(postino, hub)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode)
    with open(path, "rb") as f:
        head = f.read(200)
    assert head.startswith(b"postino-tls-session 1\nexpires "), head
    assert SASL_PASS.encode() not in open(path, "rb").read()
    second = send(postino, hub)
    assert second.startswith("TLSv1.3 "), second
    assert second.endswith(" verified (resumed)"), second
    # And again: the resumed connection's new ticket was kept.
    assert send(postino, hub).endswith(" verified (resumed)")


def test_changed_ca_file_is_not_resumed(postino, hub, certs):
    postino.config(**keys(hub, certs))
    send(postino, hub)
    # The same CA under another name: another binding, a full handshake.
    other = os.path.join(postino.dir, "ca-copy.pem")
    shutil.copyfile(certs.ca.cert, other)
    postino.config(**keys(hub, certs, TLS_CA_File=other))
    assert send(postino, hub).endswith(" verified")
    # Edited in place (a new bundle): not resumed either.
    assert send(postino, hub).endswith(" verified (resumed)")
    with open(other, "a") as f:
        f.write("\n")
    assert send(postino, hub).endswith(" verified")


def test_changed_pin_is_not_resumed(postino, hub, certs):
    postino.config(**keys(hub, certs,
                          TLSFingerprint=certs.server.spki_pin))
    assert send(postino, hub).endswith(" pinned")
    assert send(postino, hub).endswith(" pinned (resumed)")
    # A pin of another key: a full handshake, refused.
    postino.config(**keys(hub, certs, TLSFingerprint="sha256:" + "ab" * 32))
    res = postino.run([RCPT], message(token()))
    expect_tempfail(res, postino, mentions="TLSFingerprint", admin=True)


def test_resumed_session_is_judged_again(postino, hub, certs):
    """A session file made under a pin that matched, its binding edited to
    name a pin that does not (as if the binding had let it through): the
    hub resumes the session, and the pin check on the certificate the
    session holds refuses it; the file is dropped."""
    good = certs.server.spki_pin
    bad = "sha256:" + "ab" * 32
    postino.config(**keys(hub, certs, TLSFingerprint=good))
    send(postino, hub)
    path = session_file(postino, hub)
    with open(path, "rb") as f:
        data = f.read()
    hexpin = lambda p: p.split(":", 1)[1].replace(":", "").lower().encode()
    assert hexpin(good) in data
    with open(path, "wb") as f:
        f.write(data.replace(hexpin(good), hexpin(bad)))
    postino.config(**keys(hub, certs, TLSFingerprint=bad))
    res = postino.run([RCPT], message(token()))
    line = expect_tempfail(res, postino, mentions="TLSFingerprint",
                           admin=True)
    assert hexpin(good).decode() in line.replace(":", "").lower()
    assert not os.path.exists(path)


@pytest.mark.parametrize("damage", ["expired", "garbage", "truncated",
                                    "empty", "future"])
def test_bad_session_file_is_ignored(postino, hub, certs, damage):
    postino.config(**keys(hub, certs))
    send(postino, hub)
    path = session_file(postino, hub)
    with open(path, "rb") as f:
        data = f.read()
    head, sep, der = data.partition(b"\n\n")
    lines = head.split(b"\n")
    if damage == "expired":
        lines[1] = b"expires 1000000000"
        data = b"\n".join(lines) + sep + der
    elif damage == "future":   # longer than any ticket may live
        lines[1] = b"expires 99999999999"
        data = b"\n".join(lines) + sep + der
    elif damage == "garbage":
        data = head + sep + os.urandom(len(der))
    elif damage == "truncated":
        data = data[:len(head) + 2 + len(der) // 2]
    else:
        data = b""
    with open(path, "wb") as f:
        f.write(data)
    assert send(postino, hub).endswith(" verified")
    # A good session replaced it.
    assert send(postino, hub).endswith(" verified (resumed)")


# -- the cache in a set-group-ID installation --------------------------------

TR_GROUP = "postino-trgrp"
TR_USERS = {"postino-tr1": "Resume Tester One",
            "postino-tr2": "Resume Tester Two"}
accounts = pytest.fixture(scope="module")(
    lambda: (yield from accounts_fixture(TR_USERS, TR_GROUP)))
inst = pytest.fixture(install_fixture)


def test_setgid_session_file_is_the_groups(inst, fault, certs):
    """A user's run keeps the session in the queue with the queue's group,
    0640 (the user cannot reach it: the directory is 2770); another
    user's run reads it through the group and resumes."""
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key)
    inst.write_config(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                      TLS_CA_File=certs.ca.cert)
    one, two = sorted(TR_USERS)
    body = b"To: %s\nSubject: resume\n\nbody\n" % RCPT.encode()
    res = inst.run(one, [RCPT], body)
    assert res.rc == 0 and res.stderr == b"", res.describe()
    path = os.path.join(inst.queue_dir, "tls-session.127.0.0.1.%d" %
                        srv.port)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
        (inst.acc.users[one].pw_uid, inst.gid, 0o640)
    res = inst.run(two, [RCPT], body)
    assert res.rc == 0 and res.stderr == b"", res.describe()
    assert "verified (resumed)" in inst.log(), inst.log()
    assert len(srv.messages) == 2
