"""Issue 13 on a set-group-ID install (privhelpers.Install): an ordinary
user's sendmail fetches the OAuth token with the group (the client
secret and the refresh token are 0640 root:GROUP, readable by no
sender), shares it through the queue directory's cache with the next
sender, and never leaves a secret a sender could read: a rotated refresh
token is not written back by the sender's process (a warning), so the
root-owned file stays root's, and is kept in the group-only cache as the
file's successor for the next grant.

Needs root (skipped otherwise). Its own user and group, so that it can
run beside the other privilege tests.
"""

import os
import stat

import pytest

from helpers import message, token
from privhelpers import _chown, accounts_fixture, install_fixture
from tokenserver import oauth_hub, serve_tokens

USER = "postino-oauth1"
GROUP = "postino-oauthg"
MAILBOX = "mailer@example.org"
RCPT = "rcpt@example.org"
REFRESH = "rt-setgid-initial"


@pytest.fixture(scope="module")
def accounts():
    yield from accounts_fixture({USER: "OAuth Setgid Tester"}, GROUP)


inst = pytest.fixture(install_fixture)


@pytest.fixture
def endpoint(certs):
    yield from serve_tokens(certs, REFRESH)


@pytest.fixture
def hub(fault, certs, endpoint):
    return oauth_hub(fault, certs, endpoint, MAILBOX)


def group_secret(inst, name, text):
    path = os.path.join(inst.etc, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    _chown(path, 0, inst.gid, 0o640)
    return path


def configure(inst, hub, endpoint, certs):
    keys = dict(MailHub=hub.mailhub(), UseSTARTTLS="YES",
                TLS_CA_File=certs.ca.cert, AuthUser=MAILBOX,
                AuthMethod="XOAUTH2", OAuthTokenURL=endpoint.url,
                OAuthClientID=endpoint.client_id,
                OAuthClientSecretFile=group_secret(
                    inst, "client-secret", endpoint.client_secret),
                OAuthRefreshTokenFile=group_secret(inst, "refresh",
                                                   REFRESH),
                OAuthScope="https://mail.google.com/")
    inst.write_config(**keys)
    return keys


def delivered(hub, tok):
    hub.wait_idle()
    return [m for m in hub.messages if tok.encode() in m.content]


def test_user_fetches_and_shares_the_token_with_the_group(inst, hub,
                                                          endpoint, certs):
    keys = configure(inst, hub, endpoint, certs)
    # The sender cannot read the secrets without the binary's group.
    assert inst.as_user(USER, ["/bin/cat", keys["OAuthClientSecretFile"]]) \
        != 0
    tok = token()
    res = inst.run(USER, [RCPT], message(tok))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    assert len(delivered(hub, tok)) == 1
    assert endpoint.grants == ["refresh_token"]
    cache = os.path.join(inst.queue_dir, "oauth-token")
    st = os.stat(cache)
    assert st.st_gid == inst.gid and stat.S_IMODE(st.st_mode) & 0o007 == 0
    assert inst.as_user(USER, ["/bin/cat", cache]) != 0
    # The next sender takes the cached token: no second grant.
    tok2 = token()
    res = inst.run(USER, [RCPT], message(tok2))
    assert res.rc == 0, res.describe()
    assert len(delivered(hub, tok2)) == 1
    assert endpoint.grants == ["refresh_token"]
    for secret in [endpoint.client_secret, REFRESH] + endpoint.issued:
        assert secret not in inst.log() + res.err


def test_sender_does_not_take_over_the_refresh_token_file(inst, hub,
                                                          endpoint, certs):
    endpoint.rotate = True
    keys = configure(inst, hub, endpoint, certs)
    path = keys["OAuthRefreshTokenFile"]
    tok = token()
    res = inst.run(USER, [RCPT], message(tok))
    assert res.rc == 0, res.describe()
    assert len(delivered(hub, tok)) == 1
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
        (0, inst.gid, 0o640)
    with open(path) as f:
        assert f.read() == REFRESH + "\n"
    assert "OAuthRefreshTokenFile: the rotated refresh token could not be " \
        "written back" in inst.log()
    rotated = endpoint.refresh_token
    # The endpoint took REFRESH once and no more; the next grant (the
    # hub refuses the cached access token) must use what it rotated to.
    endpoint.revoke()
    tok2 = token()
    res = inst.run(USER, [RCPT], message(tok2))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    assert len(delivered(hub, tok2)) == 1
    assert [f["refresh_token"] for f in endpoint.forms] == [REFRESH, rotated]
    with open(path) as f:
        assert f.read() == REFRESH + "\n"
    # An administrator's new refresh token in the file wins over the
    # cached successor.
    endpoint.refresh_token = "rt-from-the-admin"
    group_secret(inst, "refresh", "rt-from-the-admin")
    endpoint.revoke()
    tok3 = token()
    res = inst.run(USER, [RCPT], message(tok3))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    assert endpoint.forms[-1]["refresh_token"] == "rt-from-the-admin"
    for secret in [REFRESH, rotated, endpoint.refresh_token]:
        assert secret not in inst.log()
    assert not [n for n in os.listdir(inst.etc) if ".new." in n]
