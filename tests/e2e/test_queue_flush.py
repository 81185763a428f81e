"""Flushing a large queue (issue 11, item 5): every due entry over one
connection, with RSET sent in the same write as the next MAIL, RCPT and
DATA when the hub offers PIPELINING (RFC 2920), and the due index that
lets a send ask "is anything due?" without reading every entry.

The entries are written in the documented control-file format (man
postino.8, "Files of the queue") rather than submitted one by one: it is
what a queue left by an earlier version looks like (no due index yet),
and it keeps the test from spending its time in 500 commits."""

import email.utils
import os
import time

import queuehelpers as qh

N = 500


def write_entries(p, n, uid=None, due=None):
    """n entries of one recipient each, due at `due` (default: a minute
    ago); their qids."""
    uid = os.getuid() if uid is None else uid
    due = int(time.time()) - 60 if due is None else due
    date = email.utils.formatdate(due)
    qids = []
    for area in qh.AREAS:
        os.makedirs(os.path.join(p.queue_dir, area), exist_ok=True)
    for i in range(n):
        qid = "%010X" % (0xF000000000 + len(os.listdir(
            os.path.join(p.queue_dir, "queue"))))
        body = ("Subject: flush %d\r\nTo: rcpt@example.org\r\n\r\n"
                "message %d\r\n" % (i, i)).encode()
        with open(os.path.join(p.queue_dir, "data", qid), "wb") as f:
            f.write(body)
        ctl = ("postino-queue 1\nid %s\nqueued %d %s\nnext-retry %d %s\n"
               "attempts 1\nuid %d\nsize %d\nbody 7bit\nhold 0\n"
               "possible-duplicate 0\nhub default\n"
               "sender <root@example.test>\nrcpt pending <rcpt@example.org>\n"
               % (qid, due, date, due, date, uid, len(body)))
        with open(os.path.join(p.queue_dir, "queue", qid), "w") as f:
            f.write(ctl)
        qids.append(qid)
    return qids


def test_flush_one_connection_pipelined(postino, fault):
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    write_entries(postino, N)
    qh.runq(postino, timeout=300)
    srv.wait_idle(30)
    assert len(srv.sessions) == 1, "connections: %d" % len(srv.sessions)
    assert len(srv.messages) == N
    assert sorted(m.content.split(b"\r\n\r\n", 1)[1] for m in srv.messages) \
        == sorted(b"message %d\r\n" % i for i in range(N))
    s = srv.sessions[0]
    assert s.verbs().count("RSET") == N - 1
    # Each RSET left in one write with the MAIL, RCPT and DATA after it.
    grouped = [c for c in s.chunks
               if c.startswith(b"RSET\r\nMAIL FROM:<root@example.test>")
               and c.endswith(b"DATA\r\n")]
    assert len(grouped) >= (N - 1) * 9 // 10, "%d of %d RSETs pipelined" % (
        len(grouped), N - 1)
    assert qh.ids(postino) == []
    assert qh.ids(postino, "data") == []
    # The pass stored the due index: nothing of anyone's is due.
    with open(os.path.join(postino.queue_dir, "due")) as f:
        text = f.read()
    assert text.startswith("postino-due 1\n") and text.endswith("end\n")
    assert "\nuid " not in text


def test_no_pipelining_no_group(postino, fault):
    """A hub without PIPELINING: RSET alone, answered before MAIL."""
    srv = fault(hide=("PIPELINING",))
    postino.config(MailHub=srv.mailhub())
    write_entries(postino, 5)
    qh.runq(postino)
    srv.wait_idle(10)
    assert len(srv.sessions) == 1
    assert len(srv.messages) == 5
    s = srv.sessions[0]
    assert s.verbs().count("RSET") == 4
    assert not any(c.startswith(b"RSET\r\nMAIL") for c in s.chunks)
