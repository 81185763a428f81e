"""HubBackoff on a set-group-ID install, used by users outside the group
(audit item 8): the hub-down mark is written and removed with the group
(queue.c's priv_group_enter/leave), so that it works for PHP and users'
cron jobs, and a mark that root wrote is removed by a user's successful
session. Own group and users (not test_privilege.py's), so that the two
files can run at once; skipped where users cannot be made."""

import glob
import os

import pytest

from helpers import token, unused_port
from privhelpers import accounts_fixture, install_fixture

GROUP = "postino-hbo"
USERS = {"postino-hbo1": "Backoff Tester One",
         "postino-hbo2": "Backoff Tester Two"}
RCPT = "rcpt@example.org"


@pytest.fixture(scope="module")
def accounts():
    yield from accounts_fixture(USERS, GROUP)


inst = pytest.fixture(install_fixture)


def msg(tok):
    return ("To: %s\nSubject: backoff %s\n\nbody\n" % (RCPT, tok)).encode()


def marks(inst):
    return glob.glob(os.path.join(inst.queue_dir, "hub-down.*"))


def test_user_writes_the_mark_and_the_next_user_backs_off(inst):
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port(),
                      HubBackoff="1h")
    one, two = list(USERS)
    inst.run(one, [RCPT], msg(token())).ok()
    assert len(marks(inst)) == 1, (inst.log(), inst.queue_files())
    st = os.stat(marks(inst)[0])
    assert st.st_uid == inst.acc.users[one].pw_uid and st.st_gid == inst.gid
    inst.run(two, [RCPT], msg(token())).ok()
    assert "not tried (HubBackoff)" in inst.log(), inst.log()
    assert len(inst.queued()) == 2


def test_users_success_removes_roots_mark(inst, fault):
    srv = fault(replies={"greeting": "421 4.3.2 down for maintenance"})
    inst.write_config(MailHub=srv.mailhub(), HubBackoff="1h")
    inst.run(None, [RCPT], msg(token())).ok()
    assert len(marks(inst)) == 1, inst.log()
    assert os.stat(marks(inst)[0]).st_uid == 0
    # The hub is back; a user's session reaches it (HubBackoff off).
    srv.replies["greeting"] = "220 fault.test ESMTP faultserver"
    inst.write_config(MailHub=srv.mailhub(), HubBackoff="0")
    tok = token()
    inst.run(list(USERS)[0], [RCPT], msg(tok)).ok()
    srv.wait_idle()
    assert any(tok.encode() in m.content for m in srv.messages)
    assert marks(inst) == [], "root's mark kept after a user's success:\n" \
        + inst.log()
