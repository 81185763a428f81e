"""Who owns what postino creates (issue 9 item 16, postino(8) SECURITY):
a user's process never creates LogFile (it appends to an existing one,
or logs to syslog) nor QueueDir's subdirectories (a missing one is an
error that names it); root creates both, root-owned with the queue's
group.

Needs root, useradd and a private mount namespace (privhelpers); skipped
with the reason otherwise.
"""

import os
import stat

import pytest

from helpers import token, unused_port
from privhelpers import accounts_fixture, install_fixture

OW_GROUP = "postino-owgrp"
OW_USER = "postino-ow1"
accounts = pytest.fixture(scope="module")(
    lambda: (yield from accounts_fixture({OW_USER: "Owner Tester"},
                                         OW_GROUP)))
inst = pytest.fixture(install_fixture)

RCPT = "rcpt@example.org"


def msg():
    return ("To: %s\nSubject: own %s\n\nbody\n" % (RCPT, token())).encode()


def test_user_never_creates_the_log_file(inst):
    # In a directory the group may write (such as /var/log/postino
    # 2770 root:postino): the group alone must not make it the user's.
    logs = os.path.join(inst.base, "logs")
    os.mkdir(logs)
    os.chown(logs, 0, inst.gid)
    os.chmod(logs, 0o2770)
    inst.logfile = os.path.join(logs, "postino.log")
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port(),
                      LogFile=inst.logfile)
    res = inst.run(OW_USER, ["-odq", RCPT], msg())
    assert res.rc == 0, res.describe()
    assert not os.path.exists(inst.logfile), os.stat(inst.logfile)
    assert len(inst.queued()) == 1
    # An existing file is appended to by the user's process.
    inst.run(None, ["-bp"])
    st = os.stat(inst.logfile)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
        (0, inst.gid, 0o660)
    inst.run(OW_USER, ["-odq", RCPT], msg())
    uid = inst.acc.users[OW_USER].pw_uid
    assert "uid=%d " % uid in inst.log(), inst.log()
    assert os.stat(inst.logfile).st_uid == 0


def test_user_never_creates_queue_subdirectories(inst):
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port())
    for area in ("data", "queue", "failed"):
        os.rmdir(os.path.join(inst.queue_dir, area))
    res = inst.run(OW_USER, ["-odq", RCPT], msg())
    assert res.rc == 73, res.describe()
    assert os.path.join(inst.queue_dir, "data") + " is missing" in \
        res.err, res.describe()
    uid = inst.acc.users[OW_USER].pw_uid
    mine = [p for p in os.listdir(inst.queue_dir)
            if os.lstat(os.path.join(inst.queue_dir, p)).st_uid == uid]
    assert mine == [] and not os.path.exists(
        os.path.join(inst.queue_dir, "data"))
    # Root makes them: root's, with the queue's group and its bit.
    inst.run(None, ["-odq", RCPT], msg()).ok()
    for area in ("data", "queue", "failed"):
        st = os.stat(os.path.join(inst.queue_dir, area))
        assert (st.st_uid, st.st_gid) == (0, inst.gid), area
        assert stat.S_IMODE(st.st_mode) == 0o2770, oct(st.st_mode)
    assert inst.run(OW_USER, ["-odq", RCPT], msg()).rc == 0
    assert len(inst.queued()) == 2
