"""The fallback queue, the plain cases: a hub that is down, what the queue
holds and lists, `sendmail -q`, the retry schedule, HubBackoff, delivery
modes, the detached flush after a delivery, and QueueLifetime."""

import email
import os
import re
import time

import pytest

import queuehelpers as qh
from helpers import login, message, token, unused_port, wait_until

RCPT = "rcpt@example.org"
SENDER = "%s@example.test" % login()


def test_hub_down_commits_one_entry_then_q_delivers_it(postino, fault):
    port = unused_port()
    qh.hub_down_config(postino, MailHub="127.0.0.1:%d" % port,
                       RetryInterval=0)
    tok = token()
    t0 = int(time.time())
    res = qh.send(postino, [RCPT], tok)
    t1 = int(time.time())
    res.ok()
    qid = qh.assert_one_entry(postino)

    ctl = qh.control(postino, qid)
    assert ctl["postino-queue"] == "1", ctl["_text"]
    assert ctl["id"] == qid
    assert t0 <= qh.number(ctl, "queued") <= t1, ctl["_text"]
    assert ctl["attempts"] == "1", ctl["_text"]
    assert ctl["uid"] == str(os.getuid())
    assert ctl["hold"] == "0" and ctl["possible-duplicate"] == "0"
    assert ctl["hub"] == "default", ctl["_text"]
    assert ctl["sender"] == "<%s>" % SENDER, ctl["_text"]
    assert str(port) in ctl["error"] and "refused" in ctl["error"].lower(), \
        ctl["_text"]
    assert [(s, a) for s, a, _ in ctl["rcpt"]] == [("pending", RCPT)]
    data_path = os.path.join(postino.queue_dir, "data", qid)
    with open(data_path, "rb") as f:
        data = f.read()
    assert int(ctl["size"]) == len(data), ctl["_text"]
    assert tok.encode() in data
    assert b"\n" not in data.replace(b"\r\n", b""), "not CRLF: %r" % data

    # The log: the from line, a deferred line for the recipient, queued.
    entries = [e for e in res.log() if e.qid == qid]
    assert any(e.fields.get("from") == "<%s>" % SENDER for e in entries), \
        res.log_text
    to = [e for e in entries if e.fields.get("to") == "<%s>" % RCPT]
    assert to and to[0].fields["status"] == "deferred", res.log_text
    assert re.search(r"%s: queued for a later attempt" % qid, res.log_text)

    # The listing, through a link named mailq and as sendmail -bp.
    text = qh.mailq(postino)
    assert qh.mailq(postino, via="-bp") == text
    listed, total = qh.parse_mailq(text)
    assert text.splitlines()[-1] == "-- %d Kbytes in 1 Request." % (
        len(data) // 1024), text
    assert total == (len(data) // 1024, 1)
    assert len(listed) == 1, text
    e = listed[0]
    assert (e["qid"], e["mark"], e["size"], e["sender"]) == (
        qid, "", len(data), SENDER), text
    assert len(e["rcpts"]) == 1 and e["rcpts"][0][1] == RCPT, text
    assert "refused" in e["rcpts"][0][0].lower(), text

    # The hub comes up: one run delivers it once, and the queue is empty.
    srv = fault()
    postino.config(MailHub=srv.mailhub(), RetryInterval=0)
    run = qh.runq(postino)
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {tok: 1}
    assert srv.messages[0].content == data, "sent bytes differ from data/"
    assert srv.messages[0].rcpts == [RCPT]
    assert srv.messages[0].mail_from == SENDER
    sent = [x for x in run.log() if x.qid == qid and
            x.fields.get("status") == "sent"]
    assert sent, run.describe()
    assert qh.mailq(postino, via="-bp") == "Mail queue is empty\n"
    assert qh.mailq(postino) == "Mail queue is empty\n"
    qh.assert_empty(postino)

    # Nothing left to do: a second run does not connect at all.
    qh.runq(postino)
    assert len(srv.sessions) == 1


def test_mailq_lists_every_entry_and_the_total(postino):
    qh.hub_down_config(postino, HubBackoff=0)
    big = ("x" * 70 + "\n") * 100
    a, b = token(), token()
    qh.send(postino, [RCPT, "second@example.org"], a).ok()
    qh.send(postino, ["third@example.org"], b, body=big).ok()
    q = qh.ids(postino)
    assert len(q) == 2, qh.files(postino)
    sizes = {qid: os.path.getsize(os.path.join(postino.queue_dir, "data",
                                               qid)) for qid in q}
    listed, total = qh.parse_mailq(qh.mailq(postino))
    assert total == (sum(sizes.values()) // 1024, 2)
    assert sorted(e["qid"] for e in listed) == q
    by_qid = {e["qid"]: e for e in listed}
    for qid in q:
        assert by_qid[qid]["size"] == sizes[qid]
    want = {qh.queued_tokens(postino)[a]: [RCPT, "second@example.org"],
            qh.queued_tokens(postino)[b]: ["third@example.org"]}
    for qid, rcpts in want.items():
        assert [r for _, r in by_qid[qid]["rcpts"]] == rcpts
        # The reason is printed once, before the first recipient.
        assert by_qid[qid]["rcpts"][0][0], by_qid[qid]


def test_retry_interval_doubles_up_to_max_retry_interval(postino):
    qh.hub_down_config(postino, HubBackoff=0, RetryInterval=100,
                       MaxRetryInterval=300)
    t0 = int(time.time())
    qh.send(postino, [RCPT], token()).ok()
    t1 = int(time.time())
    qid = qh.assert_one_entry(postino)
    ctl = qh.control(postino, qid)
    assert ctl["attempts"] == "1"
    # RetryInterval, then up to a fifth more (jitter, issue 10).
    assert t0 + 100 <= qh.number(ctl, "next-retry") <= t1 + 120, ctl["_text"]

    # Not due: a queue run leaves it alone.
    before = ctl["_text"]
    res = qh.runq(postino)
    assert qh.control(postino, qid)["_text"] == before, res.describe()

    # Forced attempts (-qI): 200, then 300 (400 capped), then 300.
    for attempts, delay in ((2, 200), (3, 300), (4, 300)):
        t0 = int(time.time())
        qh.runq(postino, "-qI" + qid)
        t1 = int(time.time())
        ctl = qh.control(postino, qid)
        assert ctl["attempts"] == str(attempts), ctl["_text"]
        assert t0 + delay <= qh.number(ctl, "next-retry") <= \
            t1 + delay + delay // 5, (attempts, ctl["_text"])


def test_retry_interval_defaults_to_one_minute(postino):
    qh.hub_down_config(postino, HubBackoff=0)
    t0 = int(time.time())
    qh.send(postino, [RCPT], token()).ok()
    t1 = int(time.time())
    ctl = qh.control(postino, qh.assert_one_entry(postino))
    assert t0 + 60 <= qh.number(ctl, "next-retry") <= t1 + 72, ctl["_text"]


def test_hub_backoff_skips_the_hub_after_a_failure(postino, fault):
    srv = fault(replies={"greeting": "421 4.3.2 fault.test busy"})
    port = srv.port
    postino.config(MailHub=srv.mailhub())      # HubBackoff: default 60 s
    qh.send(postino, [RCPT], token()).ok()
    srv.wait_idle()
    assert len(srv.sessions) == 1
    marker = os.path.join(postino.queue_dir, "hub-down.127.0.0.1.%d" % port)
    assert os.path.exists(marker), os.listdir(postino.queue_dir)

    res = qh.send(postino, [RCPT], token())
    res.ok()
    assert len(srv.sessions) == 1, "tried the hub within HubBackoff"
    assert "HubBackoff" in res.log_text, res.log_text
    assert len(qh.ids(postino)) == 2

    # HubBackoff=0: always try.
    postino.config(MailHub=srv.mailhub(), HubBackoff=0)
    qh.send(postino, [RCPT], token()).ok()
    srv.wait_idle()
    assert len(srv.sessions) == 2
    assert len(qh.ids(postino)) == 3


def test_hub_backoff_ends_and_success_clears_the_mark(postino, fault):
    port = unused_port()
    postino.config(MailHub="127.0.0.1:%d" % port, HubBackoff="1s",
                   RetryInterval=0)
    qh.send(postino, [RCPT], token()).ok()
    marker = os.path.join(postino.queue_dir, "hub-down.127.0.0.1.%d" % port)
    assert os.path.exists(marker), os.listdir(postino.queue_dir)
    time.sleep(1.2)     # HubBackoff is a duration: wait it out once

    # The same address now answers; the backoff is over, so it is tried.
    srv = fault(port=port)
    tok = token()
    res = qh.send(postino, [RCPT], tok)
    res.ok()
    srv.wait_idle()
    assert tok in qh.subject_tokens(srv.messages), res.describe()
    assert not os.path.exists(marker), "hub-down mark kept after a success"
    qh.wait_runners(postino)    # the first entry's detached flush


def test_entries_skipped_by_hub_backoff_are_due_after_retry_interval(
        postino, fault):
    qh.hub_down_config(postino, RetryInterval=0, HubBackoff=60)
    toks = [token() for _ in range(3)]
    for tok in toks:
        qh.send(postino, [RCPT], tok).ok()
    assert len(qh.ids(postino)) == 3
    srv = fault()
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=60)
    qh.runq(postino)
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {t: 1 for t in toks}
    qh.assert_empty(postino)


# -- delivery modes --------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["-odq"], ["-odd"], ["-O", "DeliveryMode=q"], ["-O", "DeliveryMode=d"]])
def test_queue_only_modes_commit_and_send_nothing(postino, fault, args):
    srv = fault()
    postino.config(MailHub=srv.mailhub(), RetryInterval=60)
    tok = token()
    res = qh.send(postino, [RCPT], tok, args=args)
    res.ok()
    qid = qh.assert_one_entry(postino)
    ctl = qh.control(postino, qid)
    assert ctl["attempts"] == "0", ctl["_text"]
    # Committed for the next run, and due for it.
    assert qh.number(ctl, "next-retry") <= int(time.time()), ctl["_text"]
    time.sleep(0.3)
    assert srv.sessions == [], "something connected to the hub"
    qh.runq(postino)
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {tok: 1}
    qh.assert_empty(postino)


@pytest.mark.parametrize("args", [["-odb"], ["-O", "DeliveryMode=b"]])
def test_background_mode_returns_at_once_and_delivers(postino, fault, args):
    # A hub whose greeting comes late, far later than the caller may
    # wait, so that a busy machine cannot blur the difference.
    delay = 10.0
    srv = fault(greeting_delay=delay)
    postino.config(MailHub=srv.mailhub(), Timeout=60)
    tok = token()
    proc = qh.start(postino, args + [RCPT])
    t0 = time.monotonic()
    out, err = proc.communicate(message(tok), timeout=30)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0 and out == b"" and err == b"", (
        proc.returncode, out, err)
    # The detached runner must not hold the caller's pipes open.
    assert elapsed < delay / 2, "caller waited %.2fs" % elapsed
    qh.wait_messages(srv, 1, timeout=delay + 30)
    assert qh.subject_tokens(srv.messages) == {tok: 1}
    assert wait_until(lambda: qh.files(postino) == [], 10), \
        qh.files(postino)
    qh.wait_runners(postino)
    assert qh.subject_tokens(srv.messages) == {tok: 1}


def test_delivery_flushes_due_entries_in_the_background(postino, fault):
    qh.hub_down_config(postino, RetryInterval=0, HubBackoff=0)
    old = token()
    qh.send(postino, [RCPT], old).ok()
    qh.assert_one_entry(postino)

    srv = fault()
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0)
    new = token()
    qh.send(postino, [RCPT], new).ok()
    # No -q: the old entry arrives through a detached run.
    qh.wait_messages(srv, 2, timeout=15)
    qh.wait_runners(postino)
    assert qh.subject_tokens(srv.messages) == {old: 1, new: 1}
    qh.assert_empty(postino)


# -- QueueLifetime -------------------------------------------------------

def parts_of(content):
    return email.message_from_bytes(content)


def check_bounce(m, sender, rcpt, tok):
    """An RFC 3464 report from <> to sender about rcpt for message tok."""
    assert m.mail_from == "" and m.rcpts == [sender], (m.mail_from, m.rcpts)
    msg = parts_of(m.content)
    assert msg.get_content_type() == "multipart/report", msg["Content-Type"]
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    types = [p.get_content_type() for p in parts]
    assert "message/delivery-status" in types, types
    assert "text/rfc822-headers" in types, types
    raw = m.content.decode(errors="replace")
    ds = raw.split("Content-Type: message/delivery-status", 1)[1]
    ds = ds.split("\r\n--", 1)[0]
    assert re.search(r"^Final-Recipient: rfc822; ?%s\r?$" % re.escape(rcpt),
                     ds, re.M), ds
    assert re.search(r"^Action: failed\r?$", ds, re.M), ds
    assert re.search(r"^Status: 5\.\d+\.\d+\r?$", ds, re.M), ds
    hdrs = raw.split("Content-Type: text/rfc822-headers", 1)[1]
    assert tok in hdrs, "the original headers are not in the report"


def expire_two(postino):
    """One message from SENDER and one from <>, both past QueueLifetime
    (2 s) when the hub comes back; returns their tokens, the null one's
    qid and the hub."""
    qh.hub_down_config(postino, QueueLifetime="2s", RetryInterval=0,
                       HubBackoff=0)
    tok, null_tok = token(), token()
    qh.send(postino, [RCPT], tok).ok()
    qh.send(postino, [RCPT], null_tok, args=["-f", "<>"]).ok()
    null_qid = qh.queued_tokens(postino)[null_tok]
    assert qh.control(postino, null_qid)["sender"] == "<>"
    time.sleep(3)
    return tok, null_qid


def test_expired_message_bounces_and_null_sender_fails(postino, fault):
    tok, null_qid = expire_two(postino)
    srv = fault()
    postino.config(MailHub=srv.mailhub(), QueueLifetime="2s",
                   RetryInterval=0, HubBackoff=0)
    res = qh.runq(postino)
    # The report itself is a queue entry; a second run sends it if the
    # first did not (see the test below).
    qh.runq(postino)
    srv.wait_idle()
    # Never delivered to the recipient; one report to the sender.
    assert not [m for m in srv.messages if RCPT in m.rcpts], res.describe()
    assert len(srv.messages) == 1, res.describe()
    check_bounce(srv.messages[0], SENDER, RCPT, tok)

    # The null sender's message: failed area, logged as an error.
    assert qh.ids(postino, "queue") == [], qh.files(postino)
    assert qh.ids(postino, "failed") == [null_qid], qh.files(postino)
    err_lines = [l for l in res.log_text.splitlines()
                 if null_qid in l and "error: " in l]
    assert err_lines, res.log_text
    listed, _ = qh.parse_mailq(qh.mailq(postino))
    assert [(e["qid"], e["mark"]) for e in listed] == [(null_qid, "!")]
    assert qh.leftovers(postino) == []

    # Nothing is sent again.
    qh.runq(postino)
    srv.wait_idle()
    assert len(srv.messages) == 1


def test_expired_message_report_goes_out_in_the_same_run(postino, fault):
    tok, null_qid = expire_two(postino)
    srv = fault()
    postino.config(MailHub=srv.mailhub(), QueueLifetime="2s",
                   RetryInterval=0, HubBackoff=0)
    res = qh.runq(postino)
    srv.wait_idle()
    assert len(qh.bounces(srv)) == 1, res.describe()
    check_bounce(qh.bounces(srv)[0], SENDER, RCPT, tok)
    assert qh.ids(postino, "queue") == [], qh.files(postino)


def test_queue_lifetime_defaults_to_five_days(postino, fault):
    qh.hub_down_config(postino, RetryInterval=0, HubBackoff=0)
    old, young = token(), token()
    qh.send(postino, [RCPT], old).ok()
    qh.send(postino, [RCPT], young).ok()
    toks = qh.queued_tokens(postino)
    now = int(time.time())
    # Age the entries as the clock would have: rewrite their "queued" time.
    for tok, age in ((old, 5 * 86400 + 120), (young, 5 * 86400 - 3600)):
        path = os.path.join(postino.queue_dir, "queue", toks[tok])
        with open(path) as f:
            text = f.read()
        text = re.sub(r"^queued \d+", "queued %d" % (now - age), text,
                      flags=re.M)
        with open(path, "w") as f:
            f.write(text)

    srv = fault()
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0)
    qh.runq(postino)
    qh.runq(postino)    # the report may be queued by the first run
    srv.wait_idle()
    to_rcpt = qh.subject_tokens([m for m in srv.messages
                                 if m.mail_from != ""])
    assert to_rcpt == {young: 1}, to_rcpt
    reports = qh.bounces(srv)
    assert len(reports) == 1
    check_bounce(reports[0], SENDER, RCPT, old)
    qh.assert_empty(postino)
