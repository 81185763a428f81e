"""RateLimit, RateLimitUser and RateLimitExempt, end to end.

What man/ssmtp.conf.5 promises and is asserted here: at most N messages
per period from one user; over the limit the submission exits 73 with
one stderr line naming the limit, nothing reaches the hub or the queue,
and one warning per period naming the uid is logged; root is exempt
unless RateLimitExempt says otherwise; RateLimitUser gives one user
their own limit (root included); the period starts with the first
message after the previous period ended; concurrent submissions are
counted exactly.

Each limited-user case runs in two deployments:
  own     the user's own config (-C) and queue directory
  setgid  the packaged install of privhelpers: the system config and the
          2770 root:GROUP queue, the user holding no group
Needs root (skipped otherwise).
"""

import os
import re
import time

import pytest

from helpers import token
from privhelpers import accounts_fixture, install_fixture, wait_exec

accounts = pytest.fixture(scope="module")(accounts_fixture)
inst = pytest.fixture(install_fixture)

T1, T2 = "postino-t1", "postino-t2"
RCPT = "rcpt@example.org"

SETGID_BUG = (
    "postino bug: send_message() calls ratelimit_take() after priv_drop() "
    "and before deliver()'s priv_regain(), so the counter under "
    "QueueDir/rate is made without the group; in the setgid install "
    "(QueueDir 2770 root:group) every limited non-root submission exits "
    "73 'cannot create QUEUEDIR/rate: Permission denied', even the first; "
    "and once that is fixed, QueueDir/rate is made with mkdir 0770 under "
    "the caller's umask: with umask 022 it is 2750 and owned by the first "
    "user limited, so the next one gets 73 'cannot use QUEUEDIR/rate/UID'")

DEPLOYS = ["own", "setgid"]


class Deploy:
    """Where a limited user's config, queue and log are."""

    def __init__(self, inst, how):
        self.inst = inst
        self.how = how

    def config(self, **keys):
        """The same keys in the system config and, for "own", in each
        test user's own config."""
        self.inst.write_config(**keys)
        if self.how == "own":
            for user in (T1, T2):
                self.inst.user_config(user, **keys)

    def args(self, user):
        if self.how == "own" and user is not None:
            return ["-C", os.path.join(self.inst.home(user), "ssmtp.conf")]
        return []

    def send(self, user, tok=None):
        tok = tok or token()
        data = ("To: %s\nSubject: rate %s\n\nbody\n" % (RCPT, tok)).encode()
        return self.inst.run(user, self.args(user) + [RCPT], data)

    def sends(self, user, n):
        return [self.send(user) for _ in range(n)]

    def log(self, user):
        if self.how == "own" and user is not None:
            return self.inst.user_log(user)
        return self.inst.log()

    def queue_dir(self, user):
        if self.how == "own" and user is not None:
            return os.path.join(self.inst.home(user), "queue")
        return self.inst.queue_dir


def uid_of(inst, user):
    return 0 if user is None else inst.acc.users[user].pw_uid


def login_of(user):
    return "root" if user is None else user


def warnings(log, uid):
    return [l for l in log.splitlines()
            if "warning:" in l and "rate limit" in l and
            re.search(r"\buid %d\b" % uid, l)]


def assert_refused(res, n, period, user, uid):
    assert res.rc == 73, res.describe()
    lines = res.err_lines()
    assert len(lines) == 1, res.describe()
    assert re.search(r"rate limit of %d messages per %ds" % (n, period),
                     lines[0]), lines
    assert login_of(user) in lines[0] and "uid %d" % uid in lines[0], lines


def codes(results):
    return [r.rc for r in results]


def describe(results):
    return "\n".join(r.describe() for r in results)


@pytest.fixture(params=DEPLOYS)
def deploy(request, inst):
    return Deploy(inst, request.param)


# -- the limit ----------------------------------------------------------------

def test_over_the_limit_exits_73_and_warns_once(deploy, fault):
    srv = fault()
    deploy.config(MailHub=srv.mailhub(), RateLimit="3/1m")
    uid = uid_of(deploy.inst, T1)
    res = deploy.sends(T1, 5)
    assert codes(res) == [0, 0, 0, 73, 73], describe(res)
    for r in res[:3]:
        r.ok()
    for r in res[3:]:
        assert_refused(r, 3, 60, T1, uid)
    srv.wait_idle()
    assert len(srv.messages) == 3
    assert len(warnings(deploy.log(T1), uid)) == 1, deploy.log(T1)
    # Refused means refused: nothing was kept for later either.
    assert deploy.inst.queued(deploy.queue_dir(T1)) == []
    # The count is kept per uid under the queue directory.
    counter = os.path.join(deploy.queue_dir(T1), "rate", str(uid))
    assert os.path.isfile(counter)
    assert os.stat(counter).st_mode & 0o007 == 0


def test_one_user_over_the_limit_does_not_stop_another(deploy, fault):
    srv = fault()
    deploy.config(MailHub=srv.mailhub(), RateLimit="1/1m")
    res = deploy.sends(T1, 2)
    assert codes(res) == [0, 73], describe(res)
    res = deploy.sends(T2, 2)
    assert codes(res) == [0, 73], describe(res)
    srv.wait_idle()
    assert sorted(m.mail_from.split("@")[0] for m in srv.messages) == \
        sorted([T1, T2])


def test_period_ends_and_warns_again(deploy, fault):
    srv = fault()
    # A period that three submissions fit in with room to spare on a
    # loaded machine (the test is about the period ending, not speed).
    period = 10
    deploy.config(MailHub=srv.mailhub(), RateLimit="2/%ds" % period)
    uid = uid_of(deploy.inst, T1)
    # Start at the top of a second: the window counts whole seconds.
    time.sleep(1 - time.time() % 1 + 0.01)
    first = time.time()
    res = deploy.sends(T1, 3)
    assert time.time() - first < period - 1, "too slow for the window"
    assert codes(res) == [0, 0, 73], describe(res)
    assert_refused(res[2], 2, period, T1, uid)
    time.sleep(max(0, first + period + 0.1 - time.time()))
    res = deploy.sends(T1, 3)
    assert codes(res) == [0, 0, 73], describe(res)
    srv.wait_idle()
    assert len(srv.messages) == 4
    # One warning for each period in which the limit was hit.
    assert len(warnings(deploy.log(T1), uid)) == 2, deploy.log(T1)


def test_concurrent_submissions_are_counted_exactly(deploy, fault):
    srv = fault()
    # A period far longer than the burst can take on a loaded machine:
    # the count, not the clock, is under test here.
    deploy.config(MailHub=srv.mailhub(), RateLimit="10/1h")
    uid = uid_of(deploy.inst, T1)
    data = ("To: %s\nSubject: burst\n\nbody\n" % RCPT).encode()
    procs = [deploy.inst.popen(T1, deploy.args(T1) + [RCPT])
             for _ in range(20)]
    # All 20 wait on stdin, then all see EOF at once: they reach the
    # counter together (without its lock some updates would be lost).
    for p in procs:
        assert wait_exec(p.pid, deploy.inst.bin)
        p.stdin.write(data)
        p.stdin.flush()
    for p in procs:
        p.stdin.close()
    outs = [(p.stdout.read(), p.stderr.read(), p.wait(60)) for p in procs]
    rcs = sorted(p.returncode for p in procs)
    assert rcs == [0] * 10 + [73] * 10, (rcs, outs)
    srv.wait_idle()
    assert len(srv.messages) == 10
    assert len(warnings(deploy.log(T1), uid)) == 1, deploy.log(T1)


# -- who is limited -----------------------------------------------------------

def test_root_is_exempt_by_default(inst, fault):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), RateLimit="1/1m")
    res = [Deploy(inst, "setgid").send(None) for _ in range(3)]
    assert codes(res) == [0, 0, 0], describe(res)
    srv.wait_idle()
    assert len(srv.messages) == 3
    assert warnings(inst.log(), 0) == []


def test_exempt_list_replaces_root(inst, fault):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), RateLimit="1/1m",
                      RateLimitExempt=T2)
    d = Deploy(inst, "setgid")
    res = d.sends(None, 2)
    assert codes(res) == [0, 73], describe(res)
    assert_refused(res[1], 1, 60, None, 0)
    assert len(warnings(inst.log(), 0)) == 1
    # The user named there is never limited.
    res = d.sends(T2, 3)
    assert codes(res) == [0, 0, 0], describe(res)
    srv.wait_idle()
    assert len(srv.messages) == 4


def test_rate_limit_user_overrides_the_default(deploy, fault):
    srv = fault()
    deploy.config(MailHub=srv.mailhub(), RateLimit="1/1m",
                  RateLimitUser="%s:3/1m" % T1)
    res = deploy.sends(T1, 4)
    assert codes(res) == [0, 0, 0, 73], describe(res)
    assert_refused(res[3], 3, 60, T1, uid_of(deploy.inst, T1))
    res = deploy.sends(T2, 2)
    assert codes(res) == [0, 73], describe(res)
    assert_refused(res[1], 1, 60, T2, uid_of(deploy.inst, T2))


def test_rate_limit_user_applies_even_to_exempt(deploy, fault):
    srv = fault()
    deploy.config(MailHub=srv.mailhub(), RateLimitExempt="root, %s" % T1,
                  RateLimitUser="%s:1/1m" % T1)
    res = deploy.sends(T1, 2)
    assert codes(res) == [0, 73], describe(res)
    # No RateLimit: everyone else is free.
    res = deploy.sends(T2, 3)
    assert codes(res) == [0, 0, 0], describe(res)


def test_rate_limit_user_for_root(inst, fault):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), RateLimitUser="root:2/1m")
    res = Deploy(inst, "setgid").sends(None, 3)
    assert codes(res) == [0, 0, 73], describe(res)
    assert_refused(res[2], 2, 60, None, 0)


def test_no_limit_means_no_counter(inst, fault):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), RateLimit="none")
    res = Deploy(inst, "setgid").sends(T1, 3)
    assert codes(res) == [0, 0, 0], describe(res)
    assert not os.path.exists(os.path.join(inst.queue_dir, "rate"))


@pytest.mark.parametrize("key,value", [
    ("RateLimit", "3"), ("RateLimit", "0/1m"), ("RateLimit", "3/0s"),
    ("RateLimit", "x/1m"), ("RateLimit", "-1/1m"),
    ("RateLimitUser", "3/1m"), ("RateLimitUser", ":3/1m"),
    ("RateLimitUser", "%s:3" % T1)])
def test_bad_values_are_config_errors(inst, fault, key, value):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), **{key: value})
    res = Deploy(inst, "setgid").send(T1)
    assert res.rc == 78, res.describe()
    assert key in res.err and len(res.err_lines()) == 1, res.describe()
    assert srv.sessions == []
