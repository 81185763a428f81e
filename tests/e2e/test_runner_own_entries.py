"""A queue run started by an ordinary user takes only that user's
entries (issue 9, item 19). The user can stop the runner they started
(SIGSTOP: it runs with their uid), and a stopped runner holds the lock
of every entry it took: so it never takes another user's. Root's runs
(the timer) take every entry. Own users and group, so that it can run
beside the other set-group-ID tests; skipped where users cannot be
made."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

import queuehelpers as qh
from helpers import token, unused_port, wait_until
from privhelpers import accounts_fixture, install_fixture

GROUP = "postino-own"
USERS = {"postino-own1": "Own Runner One", "postino-own2": "Own Runner Two"}
RCPT = "rcpt@example.org"


@pytest.fixture(scope="module")
def accounts():
    yield from accounts_fixture(USERS, GROUP)


inst = pytest.fixture(install_fixture)


def msg(tok):
    return ("To: %s\nSubject: own %s\n\nbody\n" % (RCPT, tok)).encode()


def queued(inst):
    return sorted(os.listdir(os.path.join(inst.queue_dir, "queue")))


def sent_text(srv):
    return " ".join(m.content.decode() for m in srv.messages)


def queue_two(inst):
    """One entry of each user, the hub down: their tokens."""
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port(),
                      HubBackoff=0, RetryInterval=0)
    one, two = list(USERS)
    t1, t2 = token(), token()
    inst.run(one, [RCPT], msg(t1)).ok()
    inst.run(two, [RCPT], msg(t2)).ok()
    assert len(queued(inst)) == 2, queued(inst)
    return t1, t2


def test_users_queue_run_takes_only_their_entries(inst, fault):
    t1, t2 = queue_two(inst)
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), HubBackoff=0, RetryInterval=0)
    one, _ = list(USERS)
    inst.run(one, ["-q"]).ok()
    srv.wait_idle()
    sent = " ".join(m.content.decode() for m in srv.messages)
    assert t1 in sent and t2 not in sent, sent
    assert len(queued(inst)) == 1

    # Root's run (the timer's) takes everything that is left.
    inst.run(None, ["-q"]).ok()
    srv.wait_idle()
    sent = " ".join(m.content.decode() for m in srv.messages)
    assert t2 in sent, sent
    assert queued(inst) == []


def test_runner_after_a_users_send_leaves_others_entries(inst, fault):
    t1, t2 = queue_two(inst)
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), HubBackoff=0, RetryInterval=0)
    _, two = list(USERS)
    t3 = token()
    # two's send succeeds and starts a runner: it may take two's entry,
    # never one's.
    inst.run(two, [RCPT], msg(t3)).ok()
    assert wait_until(lambda: t2 in sent_text(srv), 20), sent_text(srv)
    qh.wait_runners(inst)
    srv.wait_idle()
    assert t3 in sent_text(srv) and t1 not in sent_text(srv)
    assert len(queued(inst)) == 1


def forks_of_postino(inst, user, args, input):
    """Run postino as user through the set-group-ID install under strace
    (root traces, so the set-group-ID exec keeps its group): how many
    processes postino itself forked (runner_spawn), and the result."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("needs strace (tests/install-deps.sh installs it)")
    fd, trace = tempfile.mkstemp(prefix="postino-own-strace.")
    os.close(fd)
    try:
        proc = subprocess.run(
            [strace, "-f", "-qq", "-e", "trace=execve,clone,clone3,fork,vfork",
             "-o", trace] + inst.command(user, args),
            input=input, env=inst.env(user), cwd="/", capture_output=True,
            timeout=60)
        with open(trace, errors="replace") as f:
            lines = f.read().splitlines()
    finally:
        os.unlink(trace)
    ours, forks = set(), []     # pids from their exec of postino on
    for ln in lines:
        pid = ln.split()[0]
        if 'execve("%s"' % inst.bin in ln:
            ours.add(pid)       # the wrappers' own forks came before
        elif pid in ours and re.search(r"\b(clone3?|v?fork)\(", ln):
            forks.append(ln)
    assert ours, "postino never ran:\n" + "\n".join(lines)
    return proc, forks


def test_users_send_starts_no_runner_for_others_entries(inst, fault):
    """After a user's send, a runner is started only when one of that
    user's own entries is due (the due index answers per user): not for
    another user's, which that runner could not take anyway."""
    t1, t2 = queue_two(inst)
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), HubBackoff=0, RetryInterval=0)
    one, two = list(USERS)
    inst.run(two, ["-q"]).ok()          # two's entry goes; one's stays due
    srv.wait_idle()
    assert t2 in sent_text(srv) and len(queued(inst)) == 1
    proc, forks = forks_of_postino(inst, two, [RCPT], msg(token()))
    assert proc.returncode == 0, proc.stderr
    assert forks == [], "a runner was started for another user's entry: %s" % forks
    qh.wait_runners(inst)
    assert t1 not in sent_text(srv) and len(queued(inst)) == 1
    # The control: one's own send does start the runner that takes it.
    proc, forks = forks_of_postino(inst, one, [RCPT], msg(token()))
    assert proc.returncode == 0, proc.stderr
    assert len(forks) == 1, forks
    assert wait_until(lambda: t1 in sent_text(srv), 20), sent_text(srv)
    qh.wait_runners(inst)
    assert queued(inst) == []
