"""What the hub says or does, and what postino makes of it: reply codes at
every step, stalls, trickled replies, a connection dropped mid-DATA,
pipelining, AUTH mechanisms and the -v transcript."""

import os
import base64
import re

import pytest

from helpers import (LOAD_SLACK, expect_partial_report, expect_tempfail, login,
                     message, parse, token, unused_port)

RCPT = "rcpt@example.org"
GOOD = "good@example.org"
BAD = "bad@example.org"


def run(postino, srv, args=(RCPT,), msg=None, **keys):
    keys.setdefault("MailHub", srv.mailhub())
    postino.config(**keys)
    return postino.run(list(args), msg if msg is not None else
                       message(token()))


def after(verbs, verb):
    """Commands sent after the last `verb`."""
    i = len(verbs) - 1 - verbs[::-1].index(verb)
    return verbs[i + 1:]


# -- temporary failures ------------------------------------------------

@pytest.mark.parametrize("step,reply", [
    ("greeting", "421 4.3.2 fault.test busy, try later"),
    ("ehlo", "421 4.3.2 shutting down"),
    ("mail", "451 4.3.0 sender check failed, try later"),
    ("rcpt", "450 4.2.1 mailbox busy"),
    ("data", "451 4.3.0 not now"),
    ("dot", "452 4.3.1 insufficient system storage"),
])
def test_4xx_is_temporary(postino, fault, step, reply):
    srv = fault(replies={step: reply})
    res = run(postino, srv)
    expect_tempfail(res, postino)
    s = srv.wait_idle()[0]
    assert srv.messages == []
    verbs = s.verbs()
    if step in ("greeting", "ehlo"):
        assert "MAIL" not in verbs, verbs
    if step == "dot":
        # The message went out once and the hub said "later".
        assert len(s.data_received) == 1
        log = res.log_to(RCPT)
        assert log and log[0].fields["status"] == "deferred", res.describe()
    else:
        assert s.data_received == [], s.commands


def test_hub_down(postino):
    postino.config(MailHub="127.0.0.1:%d" % unused_port())
    res = postino.run([RCPT], message(token()))
    expect_tempfail(res, postino)


@pytest.mark.parametrize("step", ["greeting", "mail", "data", "dot"])
def test_stalled_hub_times_out(postino, fault, step):
    timeout = 2
    srv = fault(stall_at=step)
    res = run(postino, srv, Timeout=timeout)
    expect_tempfail(res, postino)
    assert res.elapsed < 2 * timeout + LOAD_SLACK, res.describe()
    assert res.elapsed > timeout * 0.9, res.describe()
    s = srv.wait_idle()[0]
    assert ("stalled at " + step) in s.events
    if step == "dot":
        # The message went out; only the reply was lost, so the hub may
        # have it: the log must say it could be a duplicate.
        assert len(s.data_received) == 1
        assert "duplicate" in res.log_text.lower(), res.describe()
    else:
        assert s.data_received == []


def test_trickled_greeting_hits_the_step_deadline(postino, fault):
    """One byte a second never lets a per-read timeout fire; the step's
    deadline must."""
    timeout = 2
    srv = fault(trickle=1.0)
    res = run(postino, srv, Timeout=timeout)
    expect_tempfail(res, postino)
    assert res.elapsed < 2 * timeout + LOAD_SLACK, res.describe()
    s = srv.wait_idle()[0]
    assert not s.saw("MAIL")


def test_replies_in_single_bytes_are_reassembled(postino, fault):
    srv = fault(trickle=0.002)
    res = run(postino, srv, Timeout=20)
    res.ok()
    assert len(srv.messages) == 1


def test_connection_dropped_mid_data(postino, fault):
    srv = fault(drop_in_data=4096)
    body = ("x" * 70 + "\n") * 2000
    res = run(postino, srv, msg=message(token(), body=body))
    expect_tempfail(res, postino)
    s = srv.wait_idle()[0]
    assert any(e.startswith("dropped in DATA") for e in s.events), s.events
    assert srv.messages == []


# -- permanent refusals ------------------------------------------------

def test_every_recipient_refused(postino, fault):
    srv = fault(rcpt_replies={
        GOOD: "550 5.1.1 <%s>: User unknown" % GOOD,
        BAD: "553 5.7.1 <%s>: Relay access denied" % BAD})
    res = run(postino, srv, args=(GOOD, BAD))
    assert res.rc == 67, res.describe()
    assert res.stdout == b""
    err = res.err
    assert re.search(r"%s\.\.\. 550 5\.1\.1" % re.escape(GOOD), err), err
    assert re.search(r"%s\.\.\. 553 5\.7\.1" % re.escape(BAD), err), err
    s = srv.wait_idle()[0]
    # Nothing after the refusals but a pipelined DATA (which the hub
    # refuses) and RSET/QUIT: no message data.
    assert set(after(s.verbs(), "RCPT")) <= {"DATA", "RSET", "QUIT"}, \
        s.commands
    assert srv.messages == []
    wire = b"".join(s.chunks)
    assert b"Subject: e2e" not in wire
    for e in res.log():
        if "to" in e.fields:
            assert e.fields["status"] == "bounced", e.line


def test_partial_rejection(postino, fault):
    srv = fault(rcpt_replies={BAD: "550 5.1.1 <%s>: User unknown" % BAD})
    res = run(postino, srv, args=(GOOD, BAD))
    expect_partial_report(res, srv, "%s@example.test" % login(), BAD, [GOOD])
    assert GOOD not in res.err
    assert res.log_to(GOOD)[0].fields["status"] == "sent"
    assert res.log_to(BAD)[0].fields["status"] == "bounced"


def test_sender_refused(postino, fault):
    srv = fault(replies={"mail": "553 5.7.1 <x>: Sender address rejected"})
    res = run(postino, srv)
    assert res.rc == 69, res.describe()
    assert res.err_lines(), res.describe()
    srv.wait_idle()
    assert srv.messages == []


@pytest.mark.parametrize("step", ["data", "dot"])
def test_data_refused(postino, fault, step):
    srv = fault(replies={step: "554 5.6.0 message content rejected"})
    res = run(postino, srv)
    assert res.rc == 65, res.describe()
    assert res.err_lines(), res.describe()
    s = srv.wait_idle()[0]
    assert srv.messages == []
    assert len(s.data_received) == (1 if step == "dot" else 0)
    assert b"Subject: e2e" not in b"".join(s.chunks)
    assert res.log_to(RCPT)[0].fields["status"] == "bounced", res.describe()


def test_message_over_hub_size_limit(postino, fault):
    srv = fault(size_limit=2000)
    res = run(postino, srv, msg=message(token(), body="y" * 5000 + "\n"))
    assert res.rc == 69, res.describe()
    s = srv.wait_idle()[0]
    assert not s.saw("DATA"), s.commands
    assert srv.messages == []


# -- the protocol ------------------------------------------------------

def test_pipelining_groups_commands(postino, fault):
    srv = fault()
    res = run(postino, srv, args=("a@example.org", "b@example.org",
                                  "c@example.org"))
    res.ok()
    s = srv.wait_idle()[0]
    grouped = [c for c in s.chunks if b"MAIL FROM:" in c]
    assert len(grouped) == 1
    c = grouped[0]
    assert c.count(b"RCPT TO:") == 3 and b"DATA\r\n" in c, s.chunks
    assert len(srv.messages[0].rcpts) == 3


def test_no_pipelining_one_command_per_reply(postino, fault):
    srv = fault(hide=["PIPELINING"])
    res = run(postino, srv, args=("a@example.org", "b@example.org"))
    res.ok()
    s = srv.wait_idle()[0]
    for c in s.chunks:
        n = sum(c.count(v) for v in (b"MAIL FROM:", b"RCPT TO:", b"DATA\r\n"))
        assert n <= 1, "pipelined without PIPELINING: %r" % c
    assert len(srv.messages) == 1


def test_ehlo_refused_falls_back_to_helo(postino, fault):
    srv = fault(replies={"ehlo": "502 5.5.2 Error: command not recognized"})
    run(postino, srv).ok()
    s = srv.wait_idle()[0]
    assert s.verbs()[:2] == ["EHLO", "HELO"], s.commands
    assert len(srv.messages) == 1


def test_ehlo_name_is_hostname(postino, fault):
    srv = fault()
    run(postino, srv).ok()
    s = srv.wait_idle()[0]
    assert s.commands[0] == "EHLO postino-host.example.test"
    assert s.verbs()[-1] == "QUIT"
    assert len(srv.messages) == 1


@pytest.mark.parametrize("offer,flag,body", [
    (True, ["-B8BITMIME"], "ascii\n"),
    (True, [], "caf\u00e9\n"),
    (False, ["-B8BITMIME"], "ascii\n"),
])
def test_8bitmime(postino, fault, offer, flag, body):
    srv = fault(hide=() if offer else ["8BITMIME"])
    run(postino, srv, args=flag + [RCPT],
        msg=message(token(), body=body)).ok()
    srv.wait_idle()
    params = srv.messages[0].mail_params.upper()
    if offer:
        assert "BODY=8BITMIME" in params, params
    else:
        assert "BODY=" not in params, params


@pytest.mark.parametrize("method", ["plain", "login", "cram-md5"])
def test_auth_methods(postino, fault, certs, method):
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                auth={"user@example.org": "pa#ss w=rd"})
    run(postino, srv, UseSTARTTLS="YES", TLS_CA_File=certs.ca.cert,
        AuthUser="user@example.org", AuthPass="pa#ss w=rd",
        AuthMethod=method).ok()
    s = srv.wait_idle()[0]
    assert [(a[0], a[1], a[3]) for a in s.auth] == [
        (method.upper(), "user@example.org", True)], s.auth
    assert len(srv.messages) == 1


def test_auth_best_method_is_cram_md5(postino, fault, certs):
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                auth={"user": "pw"})
    run(postino, srv, UseSTARTTLS="YES", TLS_CA_File=certs.ca.cert,
        AuthUser="user", AuthPass="pw").ok()
    s = srv.wait_idle()[0]
    assert [a[0] for a in s.auth] == ["CRAM-MD5"], s.auth
    assert len(srv.messages) == 1


def test_auth_pass_file(postino, fault, certs):
    pwfile = postino.dir + "/pass"
    # A password file others can read is refused (78): keep it private.
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("from-a-file\n")
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                auth={"user": "from-a-file"})
    run(postino, srv, UseSTARTTLS="YES", TLS_CA_File=certs.ca.cert,
        AuthUser="user", AuthPassFile=pwfile, AuthMethod="plain").ok()
    s = srv.wait_idle()[0]
    assert [a[3] for a in s.auth] == [True], s.auth
    assert len(srv.messages) == 1


def test_auth_refused(postino, fault, certs):
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                auth={"user": "right"})
    res = run(postino, srv, UseSTARTTLS="YES", TLS_CA_File=certs.ca.cert,
              AuthUser="user", AuthPass="wrong")
    expect_tempfail(res, postino, admin=True)
    assert "wrong" not in res.err
    s = srv.wait_idle()[0]
    assert not s.saw("MAIL"), s.commands


@pytest.mark.parametrize("method", ["plain", "login"])
def test_verbose_transcript_redacts_credentials(postino, fault, certs,
                                                method):
    user, pw = "vuser", "Sup3r-Secret-Pw"
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                auth={user: pw})
    res = run(postino, srv, args=("-v", RCPT), UseSTARTTLS="YES",
              TLS_CA_File=certs.ca.cert, AuthUser=user, AuthPass=pw,
              AuthMethod=method)
    assert res.rc == 0 and res.stderr == b"", res.describe()
    out = res.out
    assert "MAIL FROM:" in out and "STARTTLS" in out, out
    assert "<redacted>" in out, out
    secrets = [pw, base64.b64encode(pw.encode()).decode(),
               base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode(),
               base64.b64encode(user.encode()).decode()]
    for secret in secrets:
        assert secret not in out, "secret %r in -v output" % secret
        assert secret not in res.log_text
    # What postino sent: the AUTH command without its argument, and every
    # answer to a 334 challenge, are "<redacted>".
    sent = [l[4:] for l in out.splitlines() if l.startswith(">>> ")]
    auth = [i for i, l in enumerate(sent) if l.upper().startswith("AUTH")]
    assert len(auth) == 1, out
    assert re.fullmatch(r"AUTH %s( <redacted>)?" % method.upper(),
                        sent[auth[0]]), sent[auth[0]]
    for l in sent[auth[0] + 1:]:
        if l.startswith("MAIL FROM"):
            break
        assert l == "<redacted>", l
    srv.wait_idle()
    assert len(srv.messages) == 1


def test_crlf_and_dot_stuffing_on_the_wire(postino, fault):
    srv = fault()
    body = ".\n..x\n.y\nlast\n"
    run(postino, srv, args=("-i", RCPT),
        msg=message(token(), body=body)).ok()
    srv.wait_idle()
    m = srv.messages[0]
    assert m.wire.endswith(b"\r\n\r\n..\r\n...x\r\n..y\r\nlast\r\n")
    assert b"\n" not in m.wire.replace(b"\r\n", b"")
    assert parse(m.content).body == b".\r\n..x\r\n.y\r\nlast\r\n"
