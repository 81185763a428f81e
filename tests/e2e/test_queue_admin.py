"""People and monitors looking at the queue: `postino queue --json`,
hold / release / delete, what another user may do, and check_mailq
(monitoring-plugins) reading our mailq as Postfix's."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import helpers
import queuehelpers as qh
from helpers import login, token

RCPT = "rcpt@example.org"
SENDER = "%s@example.test" % login()
JSON_KEYS = {"queue_name", "queue_id", "arrival_time", "message_size",
             "sender", "recipients", "uid", "attempts", "next_retry",
             "possible_duplicate"}
CHECK_MAILQ = "/usr/lib/nagios/plugins/check_mailq"


def json_entries(postino, user=None):
    res = qh.admin(postino, "--json", user=user)
    assert res.rc == 0 and res.stderr == b"", res.describe()
    out = [json.loads(l) for l in res.out.splitlines() if l.strip()]
    return {e["queue_id"]: e for e in out}


def test_json_has_the_fields_of_each_entry(postino, fault):
    qh.hub_down_config(postino, HubBackoff=0, RetryInterval=0)
    a, b = token(), token()
    qh.send(postino, [RCPT, "other@example.org"], a).ok()
    qh.send(postino, [RCPT], b, args=["-f", "<>"]).ok()
    # And one the hub refused for good: the failed area.
    bad = fault(replies={"rcpt": "550 5.1.1 no such user"})
    postino.config(MailHub=bad.mailhub(), HubBackoff=0, RetryInterval=0)
    c = token()
    assert qh.send(postino, [RCPT], c).rc == 67
    toks = qh.queued_tokens(postino)
    failed = qh.queued_tokens(postino, "failed")

    got = json_entries(postino)
    assert set(got) == {toks[a], toks[b], failed[c]}, got
    for qid, e in got.items():
        assert set(e) == JSON_KEYS, sorted(e)
        area = "failed" if qid == failed[c] else "queue"
        ctl = qh.control(postino, qid, area=area)
        size = os.path.getsize(os.path.join(postino.queue_dir, "data", qid))
        assert e["arrival_time"] == qh.number(ctl, "queued")
        assert e["next_retry"] == qh.number(ctl, "next-retry")
        assert e["message_size"] == size
        assert e["uid"] == os.getuid()
        assert e["attempts"] == 1
        assert e["possible_duplicate"] is False
        for r in e["recipients"]:
            assert set(r) == {"address", "delay_reason"}, r
            assert r["delay_reason"], r
    ea, eb, ec = got[toks[a]], got[toks[b]], got[failed[c]]
    assert ea["queue_name"] == eb["queue_name"] == "deferred"
    assert ec["queue_name"] == "failed"
    assert ea["sender"] == SENDER and eb["sender"] == ""
    assert [r["address"] for r in ea["recipients"]] == [
        RCPT, "other@example.org"]
    assert "refused" in ea["recipients"][0]["delay_reason"].lower()
    assert "550" in ec["recipients"][0]["delay_reason"]


def test_hold_release_delete(postino, fault):
    qh.hub_down_config(postino, HubBackoff=0, RetryInterval=0)
    held, other, doomed = token(), token(), token()
    for tok in (held, other, doomed):
        qh.send(postino, [RCPT], tok).ok()
    toks = qh.queued_tokens(postino)

    res = qh.admin(postino, "hold", toks[held])
    assert (res.rc, res.stdout, res.stderr) == (0, b"", b""), res.describe()
    assert qh.control(postino, toks[held])["hold"] == "1"
    assert json_entries(postino)[toks[held]]["queue_name"] == "hold"
    marks = {e["qid"]: e["mark"]
             for e in qh.parse_mailq(qh.mailq(postino))[0]}
    assert marks == {toks[held]: "!", toks[other]: "", toks[doomed]: ""}

    res = qh.admin(postino, "delete", toks[doomed])
    assert (res.rc, res.stdout, res.stderr) == (0, b"", b""), res.describe()
    for area in ("queue", "data"):
        assert not os.path.exists(os.path.join(postino.queue_dir, area,
                                               toks[doomed]))

    srv = fault()
    postino.config(MailHub=srv.mailhub(), HubBackoff=0, RetryInterval=0)
    qh.runq(postino)
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {other: 1}
    assert qh.ids(postino) == [toks[held]]

    # Released: due now, whatever the schedule said.
    postino.config(MailHub=srv.mailhub(), HubBackoff=0, RetryInterval="1h")
    res = qh.admin(postino, "release", toks[held])
    assert (res.rc, res.stdout, res.stderr) == (0, b"", b""), res.describe()
    ctl = qh.control(postino, toks[held])
    assert ctl["hold"] == "0"
    assert qh.number(ctl, "next-retry") <= int(time.time())
    qh.runq(postino)
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {other: 1, held: 1}
    qh.assert_empty(postino)

    res = qh.admin(postino, "delete", toks[held])
    assert res.rc != 0 and len(res.err_lines()) == 1, res.describe()


def test_another_user_may_list_but_not_change(postino_binary):
    if os.geteuid() != 0:
        pytest.skip("needs root to act as nobody")
    # A world-readable home for this test: pytest's is 0700.
    base = tempfile.mkdtemp(prefix="postino-e2e-nobody-")
    try:
        os.chmod(base, 0o755)
        p = helpers.Postino(postino_binary, base)
        qh.hub_down_config(p, HubBackoff=0)
        qh.send(p, [RCPT], token()).ok()
        qid = qh.assert_one_entry(p)
        for root, dirs, names in os.walk(p.queue_dir):
            os.chmod(root, 0o755)
            for n in names:
                os.chmod(os.path.join(root, n), 0o644)
        for path in (p.config_path, p.revaliases):
            os.chmod(path, 0o644)
        if not os.access(os.path.abspath(postino_binary), os.X_OK):
            pytest.skip("binary not executable")

        got = json_entries(p, user="nobody")
        assert list(got) == [qid], got
        res = qh.admin(p, user="nobody")
        assert res.rc == 0, res.describe()
        assert qid in res.out

        for action in ("delete", "hold"):
            res = qh.admin(p, action, qid, user="nobody")
            assert res.rc != 0, res.describe()
            assert len(res.err_lines()) == 1, res.describe()
            assert re.search(r"(?i)permission|not allowed|denied",
                             res.err), res.describe()
        assert qh.assert_one_entry(p) == qid
        assert qh.control(p, qid)["hold"] == "0"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_entry_being_delivered_is_marked(postino, fault):
    qh.hub_down_config(postino, HubBackoff=0, RetryInterval=0)
    qh.send(postino, [RCPT], token()).ok()
    qid = qh.assert_one_entry(postino)
    srv = fault(stall_at="rcpt")
    postino.config(MailHub=srv.mailhub(), HubBackoff=0, RetryInterval=0,
                   Timeout=30)
    run = qh.start(postino, ["-q"])
    try:
        assert helpers.wait_until(lambda: any(
            "stalled at rcpt" in s.events for s in srv.sessions), 10)
        listed, _ = qh.parse_mailq(qh.mailq(postino))
        assert [(e["qid"], e["mark"]) for e in listed] == [(qid, "*")]
        assert json_entries(postino)[qid]["queue_name"] == "active"
    finally:
        qh.kill(run)
        run.stdout.close()
        run.stderr.close()
        run.stdin.close()
    listed, _ = qh.parse_mailq(qh.mailq(postino))
    assert [(e["qid"], e["mark"]) for e in listed] == [(qid, "")]


def test_postino_queue_takes_a_config_file(postino):
    qh.hub_down_config(postino, HubBackoff=0)
    qh.send(postino, [RCPT], token()).ok()
    qid = qh.assert_one_entry(postino)
    tried = []
    for args in (["queue", "-C", postino.config_path, "--json"],
                 ["-C", postino.config_path, "queue", "--json"]):
        r = postino.run(args, argv0=qh.exe(postino, "postino"),
                        prefix_config=False, timeout=30)
        tried.append((args, r.rc, r.stderr))
        if r.rc == 0 and qid in r.out:
            return
    pytest.fail("no form worked: %r" % tried)


# -- check_mailq -M postfix --------------------------------------------------

def check_mailq(postino, warn=1, crit=5):
    """check_mailq with its mailq pointed at ours.

    Its mailq path is compiled into utils.pm ($PATH_TO_MAILQ), which it
    loads from its own directory (FindBin): a link to the plugin in a
    directory of ours, next to a utils.pm whose only change is that
    path, runs the real plugin against our binary. Its -d DIR becomes
    `mailq -C DIR`, which carries our config."""
    if not os.access(CHECK_MAILQ, os.X_OK):
        pytest.skip("check_mailq missing: apt-get install "
                    "monitoring-plugins-standard")
    d = os.path.join(postino.dir, "nagios")
    if not os.path.isdir(d):
        os.mkdir(d)
        with open(os.path.join(os.path.dirname(CHECK_MAILQ),
                               "utils.pm")) as f:
            utils = f.read()
        utils, n = re.subn(r'(?m)^\$PATH_TO_MAILQ\s*=\s*"[^"]*";',
                           '$PATH_TO_MAILQ = "%s";' % qh.exe(postino,
                                                             "mailq"),
                           utils)
        assert n == 1, "no $PATH_TO_MAILQ line in utils.pm"
        with open(os.path.join(d, "utils.pm"), "w") as f:
            f.write(utils)
        os.symlink(CHECK_MAILQ, os.path.join(d, "check_mailq"))
    r = subprocess.run([os.path.join(d, "check_mailq"), "-M", "postfix",
                        "-w", str(warn), "-c", str(crit), "-d",
                        postino.config_path], capture_output=True,
                       timeout=60)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def test_check_mailq_counts_our_queue(postino):
    qh.hub_down_config(postino, HubBackoff=60)
    rc, out = check_mailq(postino)
    assert rc == 0 and "queue is empty" in out, out
    for _ in range(3):
        qh.send(postino, [RCPT], token()).ok()
    rc, out = check_mailq(postino)
    assert rc == 1 and "mailq is 3" in out, out
    for _ in range(3):
        qh.send(postino, [RCPT], token()).ok()
    rc, out = check_mailq(postino)
    assert rc == 2 and "mailq is 6" in out, out
