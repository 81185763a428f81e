"""The settlement of one message (deliver.c), for the submission and the
queue run alike: one failure makes one report (audit 3), a sender's
NOTIFY without FAILURE gets none (audit 4), and every queue run records
a possible duplicate before the final dot (audit 5)."""

import queuehelpers as qh
from helpers import login, token, wait_until

SENDER = "%s@example.test" % login()
SENT, REFUSED, LATER = ("sent@example.org", "refused@example.org",
                        "later@example.org")


def mixed_hub(fault):
    """A hub that takes SENT, refuses REFUSED for good, defers LATER."""
    return fault(rcpt_replies={REFUSED: "550 5.1.1 <%s>: no such user"
                               % REFUSED,
                               LATER: "450 4.2.1 <%s>: try later" % LATER})


def test_sent_refused_and_pending_make_one_report(postino, fault):
    srv = mixed_hub(fault)
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0)
    tok = token()
    qh.send(postino, [SENT, REFUSED, LATER], tok).ok()
    qid = qh.assert_one_entry(postino)
    states = {a: s for s, a, _ in qh.control(postino, qid)["rcpt"]}
    # The report was made before the entry was written: nothing owed.
    assert states == {SENT: "sent", REFUSED: "failed", LATER: "pending"}, \
        qh.control(postino, qid)["_text"]

    # The hub takes LATER now; the run must not report REFUSED again.
    srv2 = fault()
    postino.config(MailHub=srv2.mailhub(), RetryInterval=0, HubBackoff=0)
    qh.runq(postino)
    qh.runq(postino)
    srv.wait_idle()
    srv2.wait_idle()
    reports = qh.bounces(srv) + qh.bounces(srv2)
    assert len(reports) == 1, [m.rcpts for m in reports]
    assert reports[0].rcpts == [SENDER]
    assert REFUSED.encode() in reports[0].content
    to_later = [m for m in srv2.messages if LATER in m.rcpts]
    assert len(to_later) == 1
    qh.wait_runners(postino)
    qh.assert_empty(postino)


def test_notify_never_suppresses_the_report(postino, fault):
    srv = mixed_hub(fault)
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0)
    res = qh.send(postino, [SENT, REFUSED], token(), args=["-N", "never"])
    res.ok()
    srv.wait_idle()
    assert qh.bounces(srv) == []
    assert "NOTIFY=NEVER" in res.log_text, res.log_text
    qh.wait_runners(postino)
    qh.assert_empty(postino)


def test_notify_success_only_suppresses_the_report(postino, fault):
    srv = mixed_hub(fault)
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0)
    qh.send(postino, [SENT, REFUSED], token(),
            args=["-N", "success,delay"]).ok()
    srv.wait_idle()
    assert qh.bounces(srv) == []


def test_notify_failure_keeps_the_report(postino, fault):
    srv = mixed_hub(fault)
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0)
    qh.send(postino, [SENT, REFUSED], token(),
            args=["-N", "failure"]).ok()
    srv.wait_idle()
    assert len(qh.bounces(srv)) == 1


def marked_possible_dup(postino, qid):
    try:
        return qh.control(postino, qid)["possible-duplicate"] == "1"
    except (OSError, KeyError):
        return False


def test_odb_records_possible_duplicate_before_the_dot(postino, fault):
    """-odb: the detached delivery waits for a reply to the final dot
    that never comes; meanwhile the entry on disk says possible dup."""
    srv = fault(stall_at="dot")
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0,
                   Timeout=10)
    tok = token()
    qh.send(postino, ["rcpt@example.org"], tok, args=["-odb"]).ok()
    qid = qh.queued_tokens(postino)[tok]
    assert wait_until(lambda: marked_possible_dup(postino, qid), 8), \
        qh.control(postino, qid)["_text"]
    srv.stop()
    qh.wait_runners(postino)


def test_spawned_runner_records_possible_duplicate(postino, fault):
    """The runner started after a send delivers an older entry; the hub
    takes the new message and never answers the old one's final dot."""
    qh.hub_down_config(postino, RetryInterval=0, HubBackoff=0)
    old = token()
    qh.send(postino, ["rcpt@example.org"], old).ok()
    old_qid = qh.queued_tokens(postino)[old]
    srv = fault()
    seen = []

    def stall_the_second_dot(session, msg):
        seen.append(msg)
        if len(seen) == 2:
            srv.stall_at = "dot"    # checked again before the reply
    srv.on_message = stall_the_second_dot
    postino.config(MailHub=srv.mailhub(), RetryInterval=0, HubBackoff=0,
                   Timeout=10)
    qh.send(postino, ["rcpt@example.org"], token()).ok()
    assert wait_until(lambda: marked_possible_dup(postino, old_qid), 8), \
        qh.control(postino, old_qid)["_text"]
    srv.stop()
    qh.wait_runners(postino)
