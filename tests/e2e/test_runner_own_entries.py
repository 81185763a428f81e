"""A queue run started by an ordinary user takes only that user's
entries (issue 9, item 19). The user can stop the runner they started
(SIGSTOP: it runs with their uid), and a stopped runner holds the lock
of every entry it took: so it never takes another user's. Root's runs
(the timer) take every entry. Own users and group, so that it can run
beside the other set-group-ID tests; skipped where users cannot be
made."""

import os

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
