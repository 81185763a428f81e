"""Deliveries started by root never speak SMTP or TLS as root (issue 9
item 12, postino(8) SECURITY): postino switches, after the configuration
and before the message, a queue entry or a connection, to RunAsUser or
else to the owner of QueueDir, with QueueDir's group. Only a QueueDir of
root's without RunAsUser stays root, with a warning at every run. What
shows it from outside: who owns the files the run makes in the queue (a
committed entry, a rewritten control file, a bounce), while the entry
keeps root's uid. Modes that never touch the queue again give the group
up for good (item 15), and -bs parses the dialogue without it.

Needs root, useradd and a private mount namespace (privhelpers); skipped
with the reason otherwise.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from helpers import DOMAIN, token, unused_port
from privhelpers import (SYSTEM_CONF, accounts_fixture, install_fixture, wait_exec,
                         wait_ids)

RA_GROUP = "postino-ragrp"
RA_USER = "postino-ra1"
RA_CALLER = "postino-ra2"
accounts = pytest.fixture(scope="module")(
    lambda: (yield from accounts_fixture(
        {RA_USER: "RunAs Tester", RA_CALLER: "RunAs Caller"}, RA_GROUP)))
inst = pytest.fixture(install_fixture)

RCPT = "rcpt@example.org"
GONE = "gone@example.org"
BACK = "back@example.org"      # the sender; its bounce is deferred
ROOT_WARNING = "delivering as root"


def msg(tok):
    return ("To: %s\nSubject: runas %s\n\nbody %s\n"
            % (RCPT, tok, tok)).encode()


def owners(inst, area):
    d = os.path.join(inst.queue_dir, area)
    return {n: (os.stat(os.path.join(d, n)).st_uid,
                os.stat(os.path.join(d, n)).st_gid)
            for n in os.listdir(d) if not n.startswith(".")}


def control(inst, qid):
    with open(os.path.join(inst.queue_dir, "queue", qid)) as f:
        return f.read()


def runner_ids(inst):
    return inst.acc.users[RA_USER].pw_uid, inst.gid


def refusing_hub(fault):
    return fault(rcpt_replies={GONE: "550 5.1.1 no such user",
                               BACK: "450 4.2.0 try later"})


def check_run_as_runner(inst, srv):
    """root queues a message, a queue run as root delivers it: what the
    runs made in the queue belongs to the runner user, not root."""
    want = runner_ids(inst)
    tok = token()
    res = inst.run(None, ["-odq", "-f", BACK, RCPT, GONE], msg(tok))
    res.ok()
    committed = owners(inst, "queue")
    assert list(committed.values()) == [want], (committed, inst.log())
    assert set(owners(inst, "data").values()) == {want}
    qid = list(committed)[0]
    assert re.search(r"^uid 0$", control(inst, qid), re.M)
    res = inst.run(None, ["-q"])
    res.ok()
    srv.wait_idle()
    assert [m for m in srv.messages if tok.encode() in m.content], \
        inst.log()
    # The original is gone; the report to BACK was deferred, so its
    # control file was committed, then rewritten, by the runner.
    left = owners(inst, "queue")
    assert qid not in left and len(left) == 1, (left, inst.log())
    bounce = list(left)[0]
    assert left[bounce] == want, (left, want)
    ctl = control(inst, bounce)
    assert re.search(r"^attempts [1-9]", ctl, re.M), ctl
    assert re.search(r"^uid 0$", ctl, re.M), ctl   # still root's entry
    assert ROOT_WARNING not in inst.log()


def test_root_runs_as_RunAsUser(inst, fault):
    srv = refusing_hub(fault)
    inst.write_config(MailHub=srv.mailhub(), RunAsUser=RA_USER)
    check_run_as_runner(inst, srv)


def test_root_runs_as_the_queue_owner(inst, fault):
    srv = refusing_hub(fault)
    uid, gid = runner_ids(inst)
    os.chown(inst.queue_dir, uid, gid)
    os.chmod(inst.queue_dir, 0o2770)
    inst.write_config(MailHub=srv.mailhub())
    check_run_as_runner(inst, srv)


def test_root_queue_without_RunAsUser_warns_every_run(inst):
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port())
    inst.run(None, ["-odq", RCPT], msg(token())).ok()
    inst.run(None, ["-q"]).ok()
    lines = [l for l in inst.log().splitlines() if ROOT_WARNING in l]
    assert len(lines) == 2, inst.log()
    assert all("warning:" in l and inst.queue_dir in l for l in lines)
    assert set(owners(inst, "queue").values()) == {(0, inst.gid)}
    # Listing is no delivery: no warning.
    assert inst.run(None, ["-bp"]).rc == 0
    assert len([l for l in inst.log().splitlines()
                if ROOT_WARNING in l]) == 2


@pytest.mark.parametrize("name", ["postino-nosuchuser", "root"])
def test_bad_RunAsUser_is_a_config_error(inst, name):
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port(),
                      RunAsUser=name)
    res = inst.run(None, ["-odq", RCPT], msg(token()))
    assert res.rc == 78, res.describe()
    assert "RunAsUser %s" % name in res.err and SYSTEM_CONF in res.err, \
        res.describe()
    assert inst.queued() == []
    assert inst.run(None, ["-q"]).rc == 78


def test_user_runs_are_unchanged_by_RunAsUser(inst, fault):
    """RunAsUser is root's business: a user's submission is the user's."""
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), RunAsUser=RA_USER)
    inst.run(RA_CALLER, ["-odq", RCPT], msg(token())).ok()
    caller = inst.acc.users[RA_CALLER].pw_uid
    assert set(u for u, _ in owners(inst, "queue").values()) == {caller}


# -- item 15: the group given up where it is not needed again --------------

def strace_setresgid(inst, user, args):
    """The setresgid calls postino itself makes, run as user (strace as
    root, so the set-group-ID bit is honoured; setpriv's own calls, before
    postino is executed, are left out)."""
    out = os.path.join(inst.base, "strace-%s" % token())
    cmd = ["/usr/bin/strace", "-f", "-qq", "-e", "trace=setresgid,execve",
           "-o", out] + inst.command(user, args)
    subprocess.run(cmd, input=b"", stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=inst.env(user),
                   timeout=60)
    with open(out) as f:
        trace = f.read()
    start = trace.find('execve("%s"' % inst.bin)
    return None if start == -1 else trace[start:]


@pytest.mark.parametrize("args", [["-bv", RCPT], ["-bi"], ["-bh"],
                                  ["check"]])
def test_modes_without_queue_give_the_group_up(inst, args):
    if not os.access("/usr/bin/strace", os.X_OK):
        pytest.skip("needs strace")
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port())
    g = inst.acc.users[RA_CALLER].pw_gid
    if args == ["check"]:
        # postino check: the personality comes from argv[0].
        os.symlink(inst.bin, os.path.join(inst.base, "postino"))
        inst.bin = os.path.join(inst.base, "postino")
    trace = strace_setresgid(inst, RA_CALLER, args)
    if trace is None:
        pytest.skip("strace saw no execve of postino")
    assert re.search(r"setresgid\(%d, %d, %d\)\s*= 0" % (g, g, g), trace), \
        trace


def test_bs_parses_the_dialogue_without_the_group(inst):
    """A -bs run by a user, waiting for its dialogue: effective group the
    user's, the queue's group kept only as the saved set-group-ID (a
    transaction commits into the queue)."""
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port())
    pw = inst.acc.users[RA_CALLER]
    p = inst.popen(RA_CALLER, ["-bs"])
    try:
        assert wait_exec(p.pid, inst.bin) or True
        got = None
        for pid in [p.pid] + children(p.pid):
            got = wait_ids(pid, "Gid", (pw.pw_gid, pw.pw_gid, inst.gid,
                                        pw.pw_gid))
            if got == (pw.pw_gid, pw.pw_gid, inst.gid, pw.pw_gid):
                break
        assert got == (pw.pw_gid, pw.pw_gid, inst.gid, pw.pw_gid), got
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)


def children(pid):
    """Descendants of pid (unshare, sh and setpriv exec in turn)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out
