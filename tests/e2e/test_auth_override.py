"""ssmtp's -au/-am against the administrator's AUTH policy (issue 9,
item 14), on a set-group-ID install (privhelpers.Install) whose system
config, 0640 root:GROUP, holds AuthUser and AuthPass.

Root may override AuthUser/AuthMethod with -au/-am, as in ssmtp; so may
any caller with -C, whose group is given up before the file is read (the
credentials are then their own). From an ordinary user on the system
config they are ignored: the administrator's account and method are
used, stderr gets one line and the log a warning with the uid.

Needs root (skipped otherwise). Its own user and group, so that it can
run beside test_privilege.py.
"""

import re

import pytest

from helpers import token
from privhelpers import accounts_fixture, install_fixture

USER = "postino-authov1"
GROUP = "postino-authov"
ADMIN_ACCOUNT = "alice"
OTHER_ACCOUNT = "bob"
PASSWORD = "Adm1n-Secret-Pw"
RCPT = "rcpt@example.org"
IGNORED = ("-au/-am ignored: only root (or a -C configuration of your "
           "own) may override AuthUser/AuthMethod")


@pytest.fixture(scope="module")
def accounts():
    yield from accounts_fixture({USER: "Auth Override Tester"}, GROUP)


inst = pytest.fixture(install_fixture)


@pytest.fixture
def hub(fault):
    # One password for both accounts: only the user name shows which
    # one postino chose.
    return fault(auth={ADMIN_ACCOUNT: PASSWORD, OTHER_ACCOUNT: PASSWORD},
                 auth_plaintext=True)


def admin_keys(hub):
    return {"MailHub": hub.mailhub(), "AuthUser": ADMIN_ACCOUNT,
            "AuthPass": PASSWORD, "AuthAllowPlaintext": "YES"}


def msg(tok):
    return ("To: %s\nSubject: auth %s\n\nbody %s\n" % (RCPT, tok, tok)
            ).encode()


def logins(hub):
    """(mechanism, user, accepted) of every AUTH the hub saw."""
    return [(a[0], a[1], a[3]) for s in hub.sessions for a in s.auth]


def delivered(hub, tok):
    hub.wait_idle()
    return [m for m in hub.messages if tok.encode() in m.content]


def test_root_overrides_without_C(inst, hub):
    inst.write_config(**admin_keys(hub))
    tok = token()
    res = inst.run(None, ["-au", OTHER_ACCOUNT, "-amLOGIN", RCPT], msg(tok))
    res.ok()
    assert res.stderr == b"", res.describe()
    assert len(delivered(hub, tok)) == 1, res.describe()
    assert logins(hub) == [("LOGIN", OTHER_ACCOUNT, True)]
    assert "-au/-am ignored" not in inst.log()


@pytest.mark.parametrize("args", [
    ["-au", OTHER_ACCOUNT, "-amLOGIN"], ["-au" + OTHER_ACCOUNT],
    ["-am", "plain"]])
def test_user_cannot_override_the_system_config(inst, hub, args):
    inst.write_config(**admin_keys(hub))
    tok = token()
    res = inst.run(USER, args + [RCPT], msg(tok))
    # Not a usage error: the message goes out, as the administrator set.
    assert res.rc == 0, res.describe()
    assert len(delivered(hub, tok)) == 1, res.describe()
    # No AuthMethod in the config: the best offered, CRAM-MD5.
    assert logins(hub) == [("CRAM-MD5", ADMIN_ACCOUNT, True)]
    assert res.stderr.decode() == "sendmail: %s\n" % IGNORED, res.describe()
    uid = inst.acc.users[USER].pw_uid
    warnings = [line for line in inst.log().splitlines()
                if "-au/-am ignored" in line]
    assert len(warnings) == 1, inst.log()
    assert re.search(r"warning: uid=%d: %s$" % (uid, re.escape(IGNORED)),
                     warnings[0]), warnings


def test_user_oeq_keeps_stderr_silent_and_still_logs(inst, hub):
    inst.write_config(**admin_keys(hub))
    tok = token()
    res = inst.run(USER, ["-oeq", "-au", OTHER_ACCOUNT, RCPT], msg(tok))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    assert logins(hub) == [("CRAM-MD5", ADMIN_ACCOUNT, True)]
    assert "uid=%d: %s" % (inst.acc.users[USER].pw_uid, IGNORED) in \
        inst.log()


def test_user_overrides_with_a_config_of_their_own(inst, hub):
    conf = inst.user_config(USER, **admin_keys(hub))
    tok = token()
    res = inst.run(USER, ["-C", conf, "-au", OTHER_ACCOUNT, "-amplain",
                          RCPT], msg(tok))
    res.ok()
    assert res.stderr == b"", res.describe()
    assert len(delivered(hub, tok)) == 1, res.describe()
    assert logins(hub) == [("PLAIN", OTHER_ACCOUNT, True)]
    assert "-au/-am ignored" not in inst.user_log(USER)
