"""The fallback queue against a hub that says no: 4xx at each step, a
dropped connection, a stall, 5xx (the failed area), partial rejection
(an RFC 3464 report), a queue that cannot take the message (73), and
queue entries that are not what they claim to be."""

import email
import os
import re
import subprocess
import tempfile

import pytest

import helpers
import queuehelpers as qh
from helpers import login, message, token

RCPT = "rcpt@example.org"
GOOD = "good@example.org"
BAD = "bad@example.org"
SENDER = "%s@example.test" % login()


def queued_with(postino, res, reason_rx):
    """exit 0, silent, one entry whose recorded reason matches."""
    res.ok()
    qid = qh.assert_one_entry(postino)
    ctl = qh.control(postino, qid)
    assert re.search(reason_rx, ctl["error"]), ctl["_text"]
    assert [s for s, _, _ in ctl["rcpt"]] == ["pending"], ctl["_text"]
    listed, _ = qh.parse_mailq(qh.mailq(postino))
    assert re.search(reason_rx, listed[0]["rcpts"][0][0]), listed
    return qid, ctl


def fixed_hub_delivers_once(postino, fault, tok, **keys):
    srv = fault()
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, **keys)
    qh.runq(postino)
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {tok: 1}
    qh.assert_empty(postino)
    return srv


# -- temporary failures: queued with the reason, then delivered once -------

@pytest.mark.parametrize("step,reply", [
    ("greeting", "421 4.3.2 fault.test closing for maintenance"),
    ("mail", "451 4.3.0 sender check deferred"),
    ("rcpt", "450 4.2.1 mailbox busy"),
    ("dot", "452 4.3.1 insufficient system storage"),
])
def test_4xx_is_queued_then_delivered(postino, fault, step, reply):
    bad = fault(replies={step: reply})
    postino.config(MailHub=bad.mailhub(), RetryInterval=0)
    tok = token()
    res = qh.send(postino, [RCPT], tok)
    qid, ctl = queued_with(postino, res, re.escape(reply[:3]))
    bad.wait_idle()
    assert bad.messages == []
    deferred = [e for e in res.log_to(RCPT) if e.qid == qid]
    assert deferred and deferred[0].fields["status"] == "deferred", \
        res.describe()
    if step == "dot":
        # The hub answered the dot: no doubt, no duplicate.
        assert ctl["possible-duplicate"] == "0", ctl["_text"]
    fixed_hub_delivers_once(postino, fault, tok)
    assert len(bad.sessions) == 1


def test_connection_dropped_in_data_is_queued(postino, fault):
    bad = fault(drop_in_data=4096)
    postino.config(MailHub=bad.mailhub(), RetryInterval=0)
    tok = token()
    body = ("y" * 70 + "\n") * 1000
    res = qh.send(postino, [RCPT], tok, body=body)
    queued_with(postino, res, r".")
    bad.wait_idle()
    assert any(e.startswith("dropped in DATA")
               for e in bad.sessions[0].events)
    fixed_hub_delivers_once(postino, fault, tok)


@pytest.mark.parametrize("step", ["greeting", "rcpt", "dot"])
def test_stalled_hub_is_queued(postino, fault, step):
    bad = fault(stall_at=step)
    postino.config(MailHub=bad.mailhub(), RetryInterval=0, Timeout=2)
    tok = token()
    # 20 s: far beyond Timeout=2, far below the default of 30 s.
    res = qh.send(postino, [RCPT], tok, timeout=20)
    qid, ctl = queued_with(postino, res, r"(?i)time")
    bad.wait_idle()
    if step == "dot":
        # The message went out and the answer never came: the hub may
        # have it, and the log and the entry say so.
        assert "possible duplicate" in res.log_text, res.describe()
        assert ctl["possible-duplicate"] == "1", ctl["_text"]
        assert len(bad.sessions[0].data_received) == 1
    else:
        assert ctl["possible-duplicate"] == "0", ctl["_text"]
    fixed_hub_delivers_once(postino, fault, tok)


# -- permanent refusals: the failed area -----------------------------------

@pytest.mark.parametrize("where,exit_code", [
    ("rcpt", 67), ("mail", 69), ("dot", 65)])
def test_5xx_goes_to_the_failed_area(postino, fault, where, exit_code):
    reply = {"rcpt": "550 5.1.1 <%s>: Recipient address rejected" % RCPT,
             "mail": "553 5.7.1 sender rejected",
             "dot": "554 5.6.0 message content rejected"}[where]
    srv = fault(replies={where: reply})
    postino.config(MailHub=srv.mailhub(), RetryInterval=0)
    tok = token()
    res = qh.send(postino, [RCPT], tok)
    assert res.rc == exit_code, res.describe()
    assert res.stdout == b""
    lines = res.err_lines()
    assert len(lines) == 1, res.describe()
    if where == "rcpt":
        assert lines == ["sendmail: %s... %s" % (RCPT, reply)], \
            res.describe()
    else:
        assert lines[0].startswith("sendmail: "), res.describe()
        assert reply in lines[0], res.describe()

    qid = qh.assert_one_entry(postino, area="failed")
    ctl = qh.control(postino, qid, area="failed")
    assert [(s, a) for s, a, _ in ctl["rcpt"]] == [("failed", RCPT)], \
        ctl["_text"]
    assert reply[:3] in ctl["rcpt"][0][2], ctl["_text"]
    listed, total = qh.parse_mailq(qh.mailq(postino))
    assert [(e["qid"], e["mark"]) for e in listed] == [(qid, "!")]
    assert total[1] == 1
    # The caller was told: no report to the sender.
    srv.wait_idle()
    assert qh.bounces(srv) == []

    # Never retried.
    sessions = len(srv.sessions)
    qh.runq(postino)
    qh.runq(postino, "-qI" + qid)
    assert len(srv.sessions) == sessions
    assert qh.ids(postino, "failed") == [qid]
    assert srv.messages == []


# -- partial rejection: delivered to some, a report for the others ---------

def report_parts(m):
    msg = email.message_from_bytes(m.content)
    return msg, {p.get_content_type(): p for p in msg.get_payload()}


def test_partial_rejection_delivers_and_reports(postino, fault):
    srv = fault(rcpt_replies={BAD: "550 5.1.1 <%s>: User unknown" % BAD})
    postino.config(MailHub=srv.mailhub(), RetryInterval=0)
    tok = token()
    res = qh.send(postino, [GOOD, BAD], tok)
    res.ok()
    srv.wait_idle()
    plain = [m for m in srv.messages if m.mail_from != ""]
    assert len(plain) == 1 and plain[0].rcpts == [GOOD], res.describe()
    assert qh.subject_tokens(plain) == {tok: 1}

    reports = qh.bounces(srv)
    assert len(reports) == 1, res.describe()
    r = reports[0]
    assert r.rcpts == [SENDER]
    mail_cmds = [c for c in srv.commands() if c.upper().startswith("MAIL")]
    assert any(re.match(r"(?i)MAIL FROM:<>", c) for c in mail_cmds), \
        mail_cmds
    msg, parts = report_parts(r)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert "message/delivery-status" in parts, list(parts)
    assert "text/rfc822-headers" in parts, list(parts)
    raw = r.content.decode(errors="replace")
    ds = raw.split("Content-Type: message/delivery-status", 1)[1]
    ds = ds.split("\r\n--", 1)[0]
    assert re.search(r"^Final-Recipient: rfc822; ?%s\r?$" % re.escape(BAD),
                     ds, re.M), ds
    assert re.search(r"^Action: failed\r?$", ds, re.M), ds
    assert GOOD not in ds, "the accepted recipient is in the report"
    hdrs = raw.split("Content-Type: text/rfc822-headers", 1)[1]
    assert tok in hdrs

    # Done: nothing queued, and later runs send nothing again.
    assert qh.ids(postino, "queue") == [], qh.files(postino)
    assert qh.leftovers(postino) == []
    n = len(srv.messages)
    qh.runq(postino)
    qh.runq(postino)
    srv.wait_idle()
    assert len(srv.messages) == n
    assert not any(GOOD in m.rcpts for m in srv.messages[n:])


def test_partial_rejection_null_sender_gets_no_report(postino, fault):
    srv = fault(rcpt_replies={BAD: "550 5.1.1 <%s>: User unknown" % BAD})
    postino.config(MailHub=srv.mailhub(), RetryInterval=0)
    tok = token()
    res = qh.send(postino, [GOOD, BAD], tok, args=["-f", "<>"])
    res.ok()
    qh.runq(postino)
    srv.wait_idle()
    assert len(srv.messages) == 1, res.describe()
    assert srv.messages[0].rcpts == [GOOD]
    assert qh.subject_tokens(srv.messages) == {tok: 1}
    assert qh.ids(postino, "queue") == []


def test_partial_rejection_null_sender_is_kept_as_logged(postino, fault):
    srv = fault(rcpt_replies={BAD: "550 5.1.1 <%s>: User unknown" % BAD})
    postino.config(MailHub=srv.mailhub(), RetryInterval=0)
    res = qh.send(postino, [GOOD, BAD], token(), args=["-f", "<>"])
    res.ok()
    assert "kept in the failed area" in res.log_text, res.describe()
    qid = qh.assert_one_entry(postino, area="failed")
    ctl = qh.control(postino, qid, area="failed")
    assert ("failed", BAD) in [(s, a) for s, a, _ in ctl["rcpt"]]


# -- the queue cannot take it: 73, nothing half-written ---------------------

@pytest.fixture
def small_tmpfs(postino):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = os.path.join(postino.dir, "tmpfs")
    os.mkdir(d)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755",
                        "postino-e2e", d], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode())
    try:
        yield d
    finally:
        if subprocess.run(["umount", d]).returncode != 0:
            subprocess.run(["umount", "-l", d])


def everything_under(d):
    out = []
    for root, dirs, names in os.walk(d):
        out += [os.path.relpath(os.path.join(root, n), d) for n in names]
    return sorted(out)


@pytest.mark.parametrize("lines", [
    2000,   # ~140 KiB: the spool file itself does not fit
    870,    # ~62 KiB: the spool fits, its control file does not
])
def test_full_file_system_exits_73(postino, small_tmpfs, lines):
    qh.hub_down_config(postino, QueueDir=small_tmpfs, HubBackoff=0)
    big = ("z" * 70 + "\n") * lines
    res = qh.send(postino, [RCPT], token(), body=big)
    assert res.rc == 73, res.describe()
    err = res.err_lines()
    assert len(err) == 1 and err[0].startswith("sendmail: "), \
        res.describe()
    assert re.search(r"(?i)space|full", err[0]), res.describe()
    if lines == 870:
        # Read and tried, then the commit failed: logged as an error.
        assert "error: " in res.log_text and "cannot queue" in \
            res.log_text, res.describe()
    left = [f for f in everything_under(small_tmpfs)
            if not f.startswith("hub-down.") and f != "runner.lock"]
    assert left == [], left
    # A small message still fits: the queue works again.
    qh.send(postino, [RCPT], token()).ok()
    assert len([f for f in everything_under(small_tmpfs)
                if f.startswith("queue/")]) == 1


def test_read_only_queue_dir_exits_73(postino, small_tmpfs):
    qh.hub_down_config(postino, QueueDir=small_tmpfs, HubBackoff=0)
    for area in qh.AREAS:
        os.mkdir(os.path.join(small_tmpfs, area), 0o770)
    subprocess.run(["mount", "-o", "remount,ro", small_tmpfs], check=True)
    res = qh.send(postino, [RCPT], token())
    assert res.rc == 73, res.describe()
    assert len(res.err_lines()) == 1, res.describe()
    assert re.search(r"(?i)read-only", res.err), res.describe()
    assert everything_under(small_tmpfs) == []


def test_unwritable_queue_dir_exits_73_for_a_user(postino):
    if os.geteuid() != 0:
        pytest.skip("needs root to run the binary as nobody")
    # Outside the 0700 pytest directory, so that nobody can reach it.
    base = tempfile.mkdtemp(prefix="postino-e2e-ro-")
    try:
        os.chmod(base, 0o755)
        qdir = os.path.join(base, "queue")
        os.mkdir(qdir, 0o755)
        for area in qh.AREAS:
            os.mkdir(os.path.join(qdir, area), 0o755)
        conf = os.path.join(base, "ssmtp.conf")
        rev = os.path.join(base, "revaliases")
        with open(rev, "w") as f:
            f.write("")
        with open(conf, "w") as f:
            f.write("MailHub=127.0.0.1:1\nHostName=h.example.test\n"
                    "RewriteDomain=example.test\nQueueDir=%s\n"
                    "RevaliasesFile=%s\nHubBackoff=0\n" % (qdir, rev))
        for path in (conf, rev):
            os.chmod(path, 0o644)
        r = helpers.execute(
            ["setpriv", "--reuid=nobody", "--regid=nogroup",
             "--clear-groups", "--", os.path.abspath(postino.binary),
             "-C", conf, RCPT], message(token()), postino.env(),
            timeout=30)
        assert r.rc == 73, (r.rc, r.stderr)
        assert len(r.stderr.decode().strip().splitlines()) == 1, r.stderr
        assert everything_under(qdir) == []
    finally:
        subprocess.run(["rm", "-rf", base])


# -- entries are untrusted ---------------------------------------------------

def one_queued(postino, fault):
    qh.hub_down_config(postino, RetryInterval=0, HubBackoff=0)
    tok = token()
    qh.send(postino, [RCPT], tok).ok()
    qid = qh.assert_one_entry(postino)
    srv = fault()
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0)
    return srv, tok, qid


def test_control_file_symlink_is_not_delivered(postino, fault):
    srv, tok, qid = one_queued(postino, fault)
    ctl = os.path.join(postino.queue_dir, "queue", qid)
    elsewhere = os.path.join(postino.dir, "elsewhere")
    os.rename(ctl, elsewhere)
    os.symlink(elsewhere, ctl)
    res = qh.runq(postino)
    srv.wait_idle()
    assert srv.messages == [], res.describe()
    bad = [l for l in res.log_text.splitlines() if qid in l]
    assert bad and any("error: " in l for l in bad), res.describe()
    assert os.path.islink(ctl)
    assert os.path.exists(elsewhere), "followed the link and removed"


def test_data_file_with_two_links_is_not_delivered(postino, fault):
    srv, tok, qid = one_queued(postino, fault)
    data = os.path.join(postino.queue_dir, "data", qid)
    os.link(data, os.path.join(postino.dir, "second-link"))
    res = qh.runq(postino)
    srv.wait_idle()
    assert srv.messages == [], res.describe()
    bad = [l for l in res.log_text.splitlines() if qid in l]
    assert bad and any("error: " in l for l in bad), res.describe()
    assert qh.ids(postino) == [qid]
