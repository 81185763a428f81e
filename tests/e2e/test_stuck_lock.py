"""A queue run that is stopped (SIGSTOP, as the user who started it may
do) keeps its entry locked for as long as it is stopped (issue 9 item
19, postino(8) SECURITY). The lock is never broken behind a holder that
may resume, so one entry is never delivered twice; instead the holder is
made visible: mailq lists "locked by pid N since T, stopped", and a run
that finds it locked past the bound (1 h) logs it. The bound is shown by
ageing the lock record the stopped run wrote, not by waiting an hour.
"""

import os
import signal
import subprocess
import time

from helpers import token, wait_until

RCPT = "rcpt@example.org"


def state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rpartition(")")[2].split()[0]


def test_stopped_runner_is_listed_and_logged(postino, fault):
    srv = fault(stall_at="rcpt")
    postino.config(MailHub=srv.mailhub(), Timeout="120")
    tok = token()
    postino.run(["-odq", RCPT],
                ("Subject: %s\n\nbody\n" % tok).encode()).ok()
    qid = os.listdir(os.path.join(postino.queue_dir, "queue"))[0]
    runner = subprocess.Popen([postino.binary, "-C", postino.config_path,
                               "-q"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=postino.dir)
    try:
        assert wait_until(lambda: any(s.saw("RCPT") for s in
                                      srv.sessions), timeout=10)
        os.kill(runner.pid, signal.SIGSTOP)
        # The signal is asynchronous: wait until the kernel says so.
        assert wait_until(lambda: state(runner.pid) == "T", timeout=5)
        res = postino.run(["-bp"])
        assert res.rc == 0
        assert "%s*" % qid in res.out, res.out
        assert "locked by pid %d since " % runner.pid in res.out, res.out
        assert "stopped)" in res.out, res.out
        # Not past the bound yet: a run skips it without a word.
        res = postino.run(["-q"])
        res.ok()
        assert "stuck" not in res.log_text, res.log_text
        # An hour later (the record aged by hand): logged, still skipped.
        rec = os.path.join(postino.queue_dir, "data", ".lock." + qid)
        with open(rec) as f:
            pid, since = (int(x) for x in f.read().split())
        assert pid == runner.pid and abs(since - time.time()) < 60
        with open(rec, "w") as f:
            f.write("%d %d\n" % (pid, since - 3700))
        res = postino.run(["-q"])
        res.ok()
        assert "%s: stuck for " % qid in res.log_text, res.log_text
        assert "locked by pid %d" % pid in res.log_text, res.log_text
        assert "stopped" in res.log_text, res.log_text
        assert srv.messages == []    # never a second delivery behind it
    finally:
        runner.kill()
        os.kill(runner.pid, signal.SIGCONT)
        runner.wait(timeout=10)
    # The holder gone, its lock went with it: the next run delivers.
    srv2 = fault()
    postino.config(MailHub=srv2.mailhub())
    postino.run(["-q"]).ok()
    srv2.wait_idle()
    assert len(srv2.messages) == 1
    assert os.listdir(os.path.join(postino.queue_dir, "data")) == []
