"""The commit and the sweep under load, without /proc: `-odq` submissions
in a loop beside `sendmail -q` runs in a loop, with linkat of
/proc/self/fd failing in every process (the fault-injection shim's
FI_NO_PROC_LINK, as in a chroot or a minimal container), so that every
commit takes the copy fallback. Thousands of messages; each one that
exited 0 must reach the hub exactly once (twice only with "possible
duplicate" in the log) or still be a complete entry with its data. The
issue this guards (audit item 1): an unlocked copy was renamed into
data/ and a concurrent sweep deleted it before its control file existed.
"""

import os
import shutil
import subprocess
import threading
import time

import pytest

import helpers
import queuehelpers as qh
from helpers import message, token

SHIM_SRC = os.path.join(helpers.REPO, "tests", "faultinject", "shim.c")
RCPT = "rcpt@example.org"
SUBMITTERS = 3
PER_SUBMITTER = int(os.environ.get("POSTINO_COMMIT_STRESS", "700"))
BUDGET = 45.0           # seconds of submitting, at most (2 busy cores)


@pytest.fixture(scope="module")
def noproc_shim(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the fault-injection shim")
    out = str(tmp_path_factory.mktemp("commit-shim") / "shim.so")
    proc = subprocess.run([gcc, "-std=c17", "-O1", "-shared", "-fPIC",
                           "-o", out, SHIM_SRC, "-ldl"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def shim_env(shim, asan):
    env = {"LD_PRELOAD": shim, "FI_NO_PROC_LINK": "1"}
    if asan:
        opts = os.environ.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
            "verify_asan_link_order=0"
    return env


def submit_loop(postino, conf, env, n, deadline, results):
    for _ in range(n):
        if time.monotonic() > deadline:
            return
        tok = token()
        proc = qh.start(postino, ["-odq", RCPT], config=conf, extra_env=env)
        out, err = proc.communicate(message(tok), timeout=60)
        results.append((tok, proc.returncode, out + err))


def run_loop(postino, conf, env, stop, runs):
    while not stop.is_set():
        proc = qh.start(postino, ["-q"], config=conf, extra_env=env)
        out, err = proc.communicate(b"", timeout=120)
        runs.append((proc.returncode, out + err))


def test_no_loss_without_proc_under_concurrent_runs(postino, fault,
                                                    noproc_shim, asan):
    srv = fault()
    conf = postino.config(MailHub=srv.mailhub(), RetryInterval="0",
                          HubBackoff="0")
    env = shim_env(noproc_shim, asan)
    # The copy fallback really runs: one traced submission opens
    # data/.tmp.QID (the copy) since /proc cannot be linked from.
    trace = os.path.join(postino.dir, "fi.trace")
    one = qh.start(postino, ["-odq", RCPT], config=conf,
                   extra_env=dict(env, FI_TRACE_FILE=trace))
    out, err = one.communicate(message(token()), timeout=60)
    assert one.returncode == 0 and out + err == b"", err
    with open(trace) as f:
        assert "/data/.tmp." in f.read(), "the copy fallback did not run"
    before = qh.log_size(postino)
    results, runs = [], []
    stop = threading.Event()
    deadline = time.monotonic() + BUDGET
    subs = [threading.Thread(target=submit_loop, args=(
        postino, conf, env, PER_SUBMITTER, deadline, results))
        for _ in range(SUBMITTERS)]
    runners = [threading.Thread(target=run_loop, args=(
        postino, conf, env, stop, runs)) for _ in range(2)]
    for t in subs + runners:
        t.start()
    for t in subs:
        t.join()
    stop.set()
    for t in runners:
        t.join()

    # The copy fallback really ran: the spool was never linked from /proc.
    log = qh.log_since(postino, before)
    bad = [r for r in results if r[1] != 0 or r[2]]
    assert not bad, bad[:5]
    assert len(results) >= 1000, \
        "only %d submissions in %.0f s" % (len(results), BUDGET)
    assert [r for r in runs if r[0] != 0 or r[1]] == [], runs[:5]
    # Whatever is still queued must be whole: the last run delivers it.
    for qid in qh.ids(postino):
        assert os.path.exists(os.path.join(postino.queue_dir, "data", qid)), \
            "queue/%s without its data\n%s" % (qid, log[-3000:])
    qh.runq(postino, config=conf)
    srv.wait_idle()
    got = qh.subject_tokens(srv.messages)
    toks = [r[0] for r in results]
    lost = [t for t in toks if got[t] == 0]
    twice = [t for t in toks if got[t] > 1]
    assert not lost, "%d of %d messages lost (exit 0): %s\n%s" % (
        len(lost), len(toks), lost[:5], qh.files(postino)[:3000])
    if twice:
        assert "possible duplicate" in qh.log_since(postino, before), twice
    assert "unusable queue entry" not in qh.log_since(postino, before)
    assert qh.ids(postino) == [] and qh.ids(postino, "failed") == []
