"""Issue 10 part 3: `postino queue --metrics [--write]` and MetricsFile.

The output is parsed with a real Prometheus text parser (Debian's
python3-prometheus-client) and its figures are checked against the
queue on disk and against what happened: messages sent, deferred,
bounced (some recipients refused: a report to the sender) and failed
(every recipient refused: kept in the failed area), the counters kept
across runs in the queue directory."""

import os
import time

import pytest

import queuehelpers as qh
from helpers import login, token, unused_port

parser = pytest.importorskip("prometheus_client.parser",
                             reason="python3-prometheus-client not "
                             "installed (tests/install-deps.sh)")

SENDER = "%s@example.test" % login()
SENT1, SENT2 = "one@example.org", "two@example.org"
LATER, REFUSED = "later@example.org", "refused@example.org"


def samples(text):
    """{(name, frozenset(labels)): value} from the exposition text."""
    out = {}
    for fam in parser.text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m, name, **labels):
    return m[(name, frozenset(labels.items()))]


def metrics(p):
    res = qh.admin(p, "--metrics")
    assert res.rc == 0 and res.stderr == b"", res.describe()
    return res.out


def test_metrics_match_the_queue_and_the_outcomes(postino, fault):
    srv = fault(rcpt_replies={
        LATER: "450 4.2.1 <%s>: try later" % LATER,
        REFUSED: "550 5.1.1 <%s>: no such user" % REFUSED})
    postino.config(MailHub=srv.mailhub(), RetryInterval="1h",
                   HubBackoff=0)
    # Empty: every figure 0, the hub up.
    m = samples(metrics(postino))
    assert value(m, "postino_queue_messages", state="deferred") == 0
    assert value(m, "postino_queue_oldest_age_seconds") == 0
    assert value(m, "postino_queue_bytes") == 0
    assert value(m, "postino_last_delivery_timestamp_seconds") == 0
    hub = "127.0.0.1:%d" % srv.port
    assert value(m, "postino_hub_up", hub=hub) == 1, m

    t0 = time.time()
    qh.send(postino, [SENT1], token(), args=["-f", SENDER]).ok()
    qh.send(postino, [LATER], token(), args=["-f", SENDER]).ok()
    assert qh.send(postino, [REFUSED], token(),
                   args=["-f", SENDER]).rc == 67
    qh.send(postino, [SENT2, REFUSED], token(), args=["-f", SENDER]).ok()
    held = qh.send(postino, [SENT1], token(), args=["-odq"])
    held.ok()
    qh.wait_runners(postino)
    queued = qh.ids(postino)
    assert len(queued) == 2, qh.files(postino)
    hold = [q for q in queued
            if qh.control(postino, q)["rcpt"][0][1] == SENT1]
    assert len(hold) == 1
    assert qh.admin(postino, "hold", hold[0]).rc == 0
    srv.wait_idle()

    m = samples(metrics(postino))
    assert value(m, "postino_queue_messages", state="deferred") == 1, m
    assert value(m, "postino_queue_messages", state="held") == 1, m
    assert value(m, "postino_queue_messages", state="failed") == 1, m
    on_disk = sum(qh.number(qh.control(postino, q), "size")
                  for q in queued) + sum(
        qh.number(qh.control(postino, q, "failed"), "size")
        for q in qh.ids(postino, "failed"))
    assert value(m, "postino_queue_bytes") == on_disk, m
    oldest = value(m, "postino_queue_oldest_age_seconds")
    assert 0 <= oldest <= time.time() - t0 + 1, m
    assert value(m, "postino_messages_total", outcome="sent") == 1, m
    assert value(m, "postino_messages_total", outcome="deferred") == 1, m
    assert value(m, "postino_messages_total", outcome="bounced") == 1, m
    assert value(m, "postino_messages_total", outcome="failed") == 1, m
    last = value(m, "postino_last_delivery_timestamp_seconds")
    assert int(t0) <= last <= time.time(), m
    assert value(m, "postino_hub_up", hub=hub) == 1, m


def test_hub_down_while_backed_off(postino):
    port = unused_port()
    postino.config(MailHub="127.0.0.1:%d" % port, HubBackoff="1h")
    qh.send(postino, [SENT1], token()).ok()
    m = samples(metrics(postino))
    assert value(m, "postino_hub_up", hub="127.0.0.1:%d" % port) == 0, m
    assert value(m, "postino_queue_messages", state="deferred") == 1, m
    assert value(m, "postino_messages_total", outcome="deferred") == 1, m


def test_metrics_file_written_by_queue_runs_and_write(postino, fault):
    srv = fault()
    path = os.path.join(postino.dir, "textfile", "postino.prom")
    os.makedirs(os.path.dirname(path))
    postino.config(MailHub=srv.mailhub(), MetricsFile=path)
    res = qh.admin(postino, "--metrics", "--write")
    assert res.rc == 0 and res.out == "" and res.err == "", res.describe()
    m = samples(open(path).read())
    assert value(m, "postino_messages_total", outcome="sent") == 0
    # A queue run replaces it (atomically: no temporary file is left).
    qh.send(postino, [SENT1], token(), args=["-odq"]).ok()
    qh.runq(postino)
    srv.wait_idle()
    m = samples(open(path).read())
    assert value(m, "postino_messages_total", outcome="sent") == 1, m
    assert value(m, "postino_queue_messages", state="deferred") == 0, m
    assert os.listdir(os.path.dirname(path)) == ["postino.prom"]


def test_write_without_metricsfile_is_a_usage_error(postino):
    postino.config(MailHub="127.0.0.1:%d" % unused_port())
    res = qh.admin(postino, "--metrics", "--write")
    assert res.rc == 64, res.describe()
    assert "MetricsFile" in res.err, res.describe()
