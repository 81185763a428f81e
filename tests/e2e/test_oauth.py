"""Issue 13: OAuth 2.0 for hubs (AuthMethod=XOAUTH2 / OAUTHBEARER).

A fault-server hub (STARTTLS with the test CA) that accepts only bearer
tokens the token endpoint issued and has not revoked, and a local HTTPS
token endpoint (tokenserver.py, the same CA): postino's own refresher
with the refresh-token grant and the client-credentials grant, a token
refused by the hub refreshed and tried once more, a rotated refresh
token written back, the endpoint down (queued with a warning, delivered
by -q when it is back), a wrong client secret (queued with a warning
naming the key), AuthTokenFile, postino token, check --hub, and secrets
kept out of the -v transcript and the log.
"""

import base64
import json
import os
import re
import stat

import pytest

from helpers import expect_tempfail, message, token
from tokenserver import oauth_hub, serve_tokens

USER = "mailer@example.org"
RCPT = "rcpt@example.org"
REFRESH = "rt-initial-5f3a9c"


@pytest.fixture
def endpoint(certs):
    yield from serve_tokens(certs, REFRESH)


@pytest.fixture
def hub(fault, certs, endpoint):
    return oauth_hub(fault, certs, endpoint, USER)


def secret_file(postino, name, text, mode=0o600):
    path = os.path.join(postino.dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), mode)
        f.write(text + "\n")
    return path


def configure(postino, hub, endpoint, certs, method="XOAUTH2",
              refresh=True, secret=None, **extra):
    keys = dict(MailHub=hub.mailhub(), UseSTARTTLS="YES",
                TLS_CA_File=certs.ca.cert, AuthUser=USER, AuthMethod=method,
                OAuthTokenURL=endpoint.url,
                OAuthClientID=endpoint.client_id,
                OAuthClientSecretFile=secret_file(
                    postino, "client-secret",
                    secret or endpoint.client_secret),
                OAuthScope="https://outlook.office.com/SMTP.Send "
                           "offline_access")
    if refresh:
        keys["OAuthRefreshTokenFile"] = secret_file(postino, "refresh",
                                                    REFRESH)
    keys.update(extra)
    postino.config(**keys)
    return keys


def bearer_logins(hub):
    """(mechanism, user, token, accepted) of every AUTH the hub saw."""
    return [a for s in hub.sessions for a in s.auth]


def delivered(hub, tok):
    hub.wait_idle()
    return [m for m in hub.messages if tok.encode() in m.content]


def secrets_of(endpoint):
    return [endpoint.client_secret, REFRESH] + list(endpoint.issued) + (
        [endpoint.refresh_token] if endpoint.refresh_token else [])


def assert_no_secret(text, endpoint):
    for s in secrets_of(endpoint):
        assert s not in text, "secret %r leaked" % s
        assert base64.b64encode(s.encode()).decode()[:12] not in text


# -- the grants -------------------------------------------------------------

@pytest.mark.parametrize("method", ["XOAUTH2", "OAUTHBEARER"])
def test_refresh_token_grant(postino, hub, endpoint, certs, method):
    configure(postino, hub, endpoint, certs, method=method)
    tok = token()
    res = postino.run([RCPT], message(tok)).ok()
    assert len(delivered(hub, tok)) == 1, res.describe()
    assert endpoint.grants == ["refresh_token"]
    form = endpoint.forms[0]
    assert form["refresh_token"] == REFRESH
    assert form["scope"] == "https://outlook.office.com/SMTP.Send " \
                            "offline_access"
    assert endpoint.paths == ["/tenant-1/oauth2/v2.0/token"]
    assert bearer_logins(hub) == [(method, USER, endpoint.issued[0], True)]
    # The cache: group-only, and the second message needs no new grant.
    cache = os.path.join(postino.queue_dir, "oauth-token")
    mode = stat.S_IMODE(os.stat(cache).st_mode)
    assert mode & 0o007 == 0, oct(mode)
    tok2 = token()
    postino.run([RCPT], message(tok2)).ok()
    assert len(delivered(hub, tok2)) == 1
    assert endpoint.grants == ["refresh_token"]
    assert_no_secret(postino.log_text(), endpoint)


def test_client_credentials_grant(postino, hub, endpoint, certs):
    configure(postino, hub, endpoint, certs, refresh=False,
              OAuthScope="https://outlook.office365.com/.default")
    tok = token()
    postino.run([RCPT], message(tok)).ok()
    assert len(delivered(hub, tok)) == 1
    assert endpoint.grants == ["client_credentials"]
    assert "refresh_token" not in endpoint.forms[0]
    assert endpoint.forms[0]["client_secret"] == endpoint.client_secret
    assert endpoint.forms[0]["scope"] == \
        "https://outlook.office365.com/.default"


def test_chunked_token_response(postino, hub, endpoint, certs):
    endpoint.chunked = True
    configure(postino, hub, endpoint, certs)
    tok = token()
    postino.run([RCPT], message(tok)).ok()
    assert len(delivered(hub, tok)) == 1


# -- expiry and refusal -------------------------------------------------------

def test_token_near_expiry_is_refreshed_before_use(postino, hub, endpoint,
                                                   certs):
    # Less than five minutes left: every connection gets a fresh token.
    endpoint.expires_in = 120
    configure(postino, hub, endpoint, certs)
    for _ in range(2):
        tok = token()
        postino.run([RCPT], message(tok)).ok()
        assert len(delivered(hub, tok)) == 1
    assert endpoint.grants == ["refresh_token", "refresh_token"]
    assert [a[3] for a in bearer_logins(hub)] == [True, True]


@pytest.mark.parametrize("method,ack", [("XOAUTH2", "b''"),
                                        ("OAUTHBEARER", "b'AQ=='")])
def test_refused_token_refreshed_and_retried_once(postino, hub, endpoint,
                                                  certs, method, ack):
    configure(postino, hub, endpoint, certs, method=method)
    postino.run([RCPT], message(token())).ok()
    # The hub now refuses the cached token (expired early, revoked).
    endpoint.revoke()
    tok = token()
    res = postino.run([RCPT], message(tok)).ok()
    assert len(delivered(hub, tok)) == 1, res.describe()
    logins = bearer_logins(hub)
    assert [(a[2], a[3]) for a in logins[1:]] == [
        (endpoint.issued[0], False), (endpoint.issued[1], True)]
    assert endpoint.grants == ["refresh_token", "refresh_token"]
    # The RFC 7628 error challenge was acknowledged before the 535.
    assert any(e == "oauth-ack %s" % ack for s in hub.sessions
               for e in s.events), [s.events for s in hub.sessions]
    assert "refused the OAuth token" in res.log_text


def test_second_refusal_queues_with_a_warning(postino, fault, certs,
                                              endpoint):
    hub = fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                oauth=lambda user, tok: False)
    configure(postino, hub, endpoint, certs)
    res = postino.run([RCPT], message(token()))
    line = expect_tempfail(res, postino, mentions=r"OAuthScope",
                           admin=True)
    assert "refused the OAuth token" in line
    # One token, refused; no second refresh for a fresh token.
    assert len(bearer_logins(hub)) == 1 and endpoint.grants == [
        "refresh_token"]
    assert_no_secret(res.err + postino.log_text(), endpoint)


def test_rotated_refresh_token_written_back(postino, hub, endpoint, certs):
    endpoint.rotate = True
    endpoint.expires_in = 60
    keys = configure(postino, hub, endpoint, certs)
    path = keys["OAuthRefreshTokenFile"]
    for i in range(3):
        tok = token()
        postino.run([RCPT], message(tok)).ok()
        assert len(delivered(hub, tok)) == 1
        with open(path) as f:
            assert f.read() == endpoint.refresh_token + "\n"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # Each grant used the refresh token the one before it issued.
    used = [f["refresh_token"] for f in endpoint.forms]
    assert used[0] == REFRESH and len(set(used)) == 3
    assert not [n for n in os.listdir(postino.dir) if ".new." in n]
    assert_no_secret(postino.log_text(), endpoint)


def test_concurrent_senders_share_one_refresh(postino, hub, endpoint,
                                              certs):
    # Each refresh token works once: senders that refreshed at the same
    # time would all but one be refused. One refreshes, the others wait
    # for it and take its token.
    endpoint.rotate = True
    endpoint.delay = 0.5
    configure(postino, hub, endpoint, certs)
    toks = [token() for _ in range(4)]
    procs = [postino.start([RCPT]) for _ in toks]
    for p, tok in zip(procs, toks):     # all of them at once
        p.stdin.write(message(tok))
        p.stdin.close()
    for p in procs:
        p.wait(timeout=60)
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        assert p.returncode == 0 and err == b"", err
    for tok in toks:
        assert len(delivered(hub, tok)) == 1
    assert endpoint.grants == ["refresh_token"]


# -- the endpoint fails -----------------------------------------------------

def test_endpoint_down_queues_then_q_delivers(postino, hub, endpoint, certs):
    configure(postino, hub, endpoint, certs, HubBackoff="0")
    endpoint.stop()
    tok = token()
    res = postino.run([RCPT], message(tok))
    line = expect_tempfail(res, postino, mentions=r"OAuthTokenURL",
                           admin=True)
    assert "localhost:%d" % endpoint.port in line
    assert not hub.sessions or not bearer_logins(hub)
    endpoint.start()
    qid = os.path.basename(postino.queue_entries()[0])
    res = postino.run(["-qI" + qid])
    assert res.rc == 0, res.describe()
    assert len(delivered(hub, tok)) == 1, res.describe()
    assert postino.queue_entries() == []


def test_wrong_client_secret_names_the_key(postino, hub, endpoint, certs):
    configure(postino, hub, endpoint, certs, secret="not-the-secret")
    res = postino.run([RCPT], message(token()))
    line = expect_tempfail(res, postino, mentions=r"OAuthClientSecretFile",
                           admin=True)
    assert "invalid_client" in line
    assert "not-the-secret" not in res.err + postino.log_text()
    assert bearer_logins(hub) == []


def test_revoked_refresh_token_names_its_file(postino, hub, endpoint, certs):
    endpoint.refresh_token = "rt-something-else"
    configure(postino, hub, endpoint, certs)
    res = postino.run([RCPT], message(token()))
    expect_tempfail(res, postino, mentions=r"OAuthRefreshTokenFile.*"
                    r"invalid_grant", admin=True)


def test_endpoint_with_unknown_ca_is_refused(postino, hub, endpoint, certs):
    # The hub's CA file is the only trust: the other CA signs nothing here.
    configure(postino, hub, endpoint, certs)
    postino.config(**dict(configure(postino, hub, endpoint, certs),
                          TLS_CA_File=certs.other_ca.cert, UseSTARTTLS="NO",
                          AuthAllowPlaintext="YES"))
    res = postino.run([RCPT], message(token()))
    expect_tempfail(res, postino, mentions=r"OAuthTokenURL", admin=True)
    assert endpoint.grants == []


# -- AuthTokenFile ------------------------------------------------------------

def test_auth_token_file(postino, hub, endpoint, certs):
    endpoint.answer({"grant_type": "client_credentials",
                     "client_id": endpoint.client_id,
                     "client_secret": endpoint.client_secret})
    good = endpoint.issued[0]
    path = secret_file(postino, "access-token", good)
    postino.config(MailHub=hub.mailhub(), UseSTARTTLS="YES",
                   TLS_CA_File=certs.ca.cert, AuthUser=USER,
                   AuthMethod="XOAUTH2", AuthTokenFile=path)
    tok = token()
    postino.run([RCPT], message(tok)).ok()
    assert len(delivered(hub, tok)) == 1
    # Re-read for every connection: a stale token there is refused once,
    # and the warning names the file's key.
    secret_file(postino, "access-token", "stale-token-value")
    res = postino.run([RCPT], message(token()))
    expect_tempfail(res, postino, mentions=r"AuthTokenFile", admin=True)
    assert [a[2] for a in bearer_logins(hub)] == [good,
                                                  "stale-token-value"]
    assert "stale-token-value" not in res.err + postino.log_text()
    assert good not in postino.log_text()


def test_secret_files_readable_by_others_are_refused(postino, hub, endpoint,
                                                     certs):
    keys = configure(postino, hub, endpoint, certs)
    os.chmod(keys["OAuthClientSecretFile"], 0o644)
    res = postino.run([RCPT], message(token()))
    assert res.rc == 78, res.describe()
    assert "OAuthClientSecretFile" in res.err and "chmod" in res.err
    assert endpoint.grants == []


def test_config_needs_a_token_source(postino):
    postino.config(AuthUser=USER, AuthMethod="XOAUTH2")
    res = postino.run(["check"], b"")
    assert res.rc == 78, res.describe()
    assert "AuthTokenFile or OAuthTokenURL" in res.err


# -- secrets out of transcripts and logs ---------------------------------------

def test_verbose_transcript_redacts_the_sasl_line(postino, hub, endpoint,
                                                  certs):
    configure(postino, hub, endpoint, certs)
    res = postino.run(["-v", RCPT], message(token()))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    sent = [l[4:] for l in res.out.splitlines() if l.startswith(">>> ")]
    assert [l for l in sent if l.upper().startswith("AUTH")] == [
        "AUTH XOAUTH2 <redacted>"], res.out
    assert_no_secret(res.err + res.out + postino.log_text(), endpoint)


# -- postino token, check --hub, the queue run ---------------------------------

def test_postino_token_refreshes_now(postino, hub, endpoint, certs):
    configure(postino, hub, endpoint, certs)
    res = postino.run(["token"], b"")
    assert res.rc == 0, res.describe()
    assert re.match(r"OAuth token refreshed: expires \d{4}-\d\d-\d\dT"
                    r"\d\d:\d\d:\d\dZ \(in 3[56]\d\ds\)$", res.out.strip()), \
        res.out
    assert endpoint.grants == ["refresh_token"]
    # Now, again: a refresh even though the cached one is still good.
    postino.run(["token"], b"")
    assert endpoint.grants == ["refresh_token"] * 2
    assert_no_secret(res.out + res.err + postino.log_text(), endpoint)
    # check --hub shows the cached token's state, never the token.
    res = postino.run(["check", "--hub"], b"")
    assert res.rc == 0, res.describe()
    assert re.search(r"^  OAuth token: valid for \d+s more$", res.out,
                     re.M), res.out
    assert_no_secret(res.out, endpoint)
    # And in --json, once for the configuration.
    res = postino.run(["check", "--hub", "--json"], b"")
    assert res.rc == 0, res.describe()
    doc = json.loads(res.out)
    assert re.match(r"valid for \d+s more$", doc["oauth_token"]), doc
    assert_no_secret(res.out, endpoint)


def test_postino_token_without_refresher(postino):
    postino.config()
    res = postino.run(["token"], b"")
    assert res.rc == 78, res.describe()
    assert "OAuthTokenURL" in res.err


def test_queue_run_refreshes_before_expiry(postino, hub, endpoint, certs):
    endpoint.expires_in = 600      # under three margins: the run renews
    configure(postino, hub, endpoint, certs)
    postino.run(["token"], b"")
    res = postino.run(["-q"], b"")
    assert res.rc == 0, res.describe()
    assert endpoint.grants == ["refresh_token"] * 2
    assert "OAuth token refreshed" in res.log_text


def test_check_names_a_missing_secret_file(postino, hub, endpoint, certs):
    keys = configure(postino, hub, endpoint, certs)
    os.unlink(keys["OAuthRefreshTokenFile"])
    res = postino.run(["check"], b"")
    assert res.rc == 78, res.describe()
    assert re.search(r"OAuthRefreshTokenFile: \S+/refresh: No such file",
                     res.err), res.err
