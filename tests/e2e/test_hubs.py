"""Several hubs (issue 10 part 1): MailHub as a list, failover on anything
that means "this hub cannot take it now", no failover on a 5xx or after a
lost reply to the final dot, HubBackoff per hub, queue runs over the same
list, SourceAddress and AddressFamily, and retry jitter over 200 queues."""

import json
import os
import shutil
import subprocess
import time

import pytest

import helpers
import queuehelpers as qh
from helpers import execute, message, token, unused_port

RCPT = "rcpt@example.org"


def hubs(*entries):
    return ", ".join(entries)


def tokens_at(srv):
    return qh.subject_tokens(srv.messages)


# -- failover in one invocation ------------------------------------------

def test_first_hub_down_second_delivers(postino, hub):
    down = "127.0.0.1:%d" % unused_port()
    postino.config(MailHub=hubs(down, hub.hub("plain")))
    tok = token()
    res = postino.run([RCPT], message(tok)).ok()
    m = hub.find_one(tok)
    assert m.server_port == hub.ports["plain"]
    qh.assert_empty(postino)
    # The log names the hub that took it, and the one that could not.
    sent = res.log_to(RCPT)
    assert len(sent) == 1 and sent[0].fields["status"] == "sent", \
        res.describe()
    assert ":%d" % hub.ports["plain"] in sent[0].fields["relay"]
    assert "hub %s cannot take it now" % down in res.log_text, res.log_text


@pytest.mark.parametrize("knobs", [
    {"replies": {"greeting": "421 4.3.2 hub1 busy"}},
    {"replies": {"rcpt": "450 4.2.0 hub1 greylisted"}},
    {"replies": {"dot": "451 4.3.0 hub1 queue full"}},
    {"replies": {"mail": "452 4.3.1 hub1 out of space"}},
], ids=["421-greeting", "450-rcpt", "451-dot", "452-mail"])
def test_4xx_fails_over(postino, fault, knobs):
    h1 = fault(**knobs)
    h2 = fault()
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()))
    tok = token()
    postino.run([RCPT], message(tok)).ok()
    h1.wait_idle()
    h2.wait_idle()
    assert tokens_at(h1) == {}
    assert tokens_at(h2) == {tok: 1}
    qh.assert_empty(postino)


def test_tls_verification_failure_fails_over(postino, hub, certs):
    from postfixhub import SASL_PASS, SASL_USER
    off = hub.log_size()
    postino.config(MailHub=hubs(hub.hub("wrongname"), hub.hub("submission")),
                   UseSTARTTLS="YES", AuthUser=SASL_USER, AuthPass=SASL_PASS,
                   TLS_CA_File=certs.ca.cert)
    tok = token()
    res = postino.run([RCPT], message(tok))
    assert res.rc == 0, res.describe()
    m = hub.find_one(tok)
    assert m.server_port == hub.ports["submission"]
    qh.assert_empty(postino)
    # The refused certificate is still an administrator's business.
    assert "needs an administrator" in res.log_text, res.log_text
    assert "sasl_method" not in "".join(
        l for l in hub.log_since(off).splitlines() if "wrongname" in l)


def test_auth_refused_fails_over(postino, fault):
    h1 = fault(auth={"web01": "another-pass"}, auth_plaintext=True)
    h2 = fault(auth={"web01": "the-pass"}, auth_plaintext=True)
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()),
                   AuthUser="web01", AuthPass="the-pass",
                   AuthAllowPlaintext="YES")
    tok = token()
    res = postino.run([RCPT], message(tok))
    assert res.rc == 0, res.describe()
    h1.wait_idle()
    h2.wait_idle()
    assert tokens_at(h1) == {} and tokens_at(h2) == {tok: 1}
    qh.assert_empty(postino)


def test_5xx_greeting_is_no_session_next_hub(postino, fault):
    h1 = fault(replies={"greeting": "554 5.3.2 no service here"})
    h2 = fault()
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()))
    tok = token()
    postino.run([RCPT], message(tok)).ok()
    h2.wait_idle()
    assert tokens_at(h2) == {tok: 1}


def test_5xx_is_an_answer_no_failover(postino, fault):
    h1 = fault(replies={"rcpt": "550 5.1.1 no such user here"})
    h2 = fault()
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()))
    res = postino.run([RCPT], message(token()))
    assert res.rc == 67, res.describe()
    h1.wait_idle()
    assert h2.sessions == [], "failed over on a 5xx"


def test_lost_reply_after_dot_is_not_resent_elsewhere(postino, fault):
    h1 = fault(stall_at="dot")
    h2 = fault()
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()), Timeout="2",
                   HubBackoff=0)
    res = postino.run([RCPT], message(token()))
    assert res.rc == 0, res.describe()
    assert h2.sessions == [], "resent to another hub: possible duplicate"
    qid = qh.assert_one_entry(postino)
    assert qh.control(postino, qid)["possible-duplicate"] == "1", \
        res.describe()


def test_lost_reply_later_runs_try_only_that_hub(postino, fault):
    # The entry records the hub that may have it (dup-hub); later runs
    # go to that hub only: while it is down the entry waits, and hub2,
    # up all along, never sees the message.
    h1 = fault(stall_at="dot")
    h2 = fault()
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()), Timeout="2",
                   RetryInterval=0, HubBackoff=0)
    tok = token()
    res = postino.run([RCPT], message(tok))
    assert res.rc == 0, res.describe()
    qid = qh.assert_one_entry(postino)
    ctl = qh.control(postino, qid)
    assert ctl["possible-duplicate"] == "1", ctl["_text"]
    assert ctl["dup-hub"] == "127.0.0.1 %d" % h1.port, ctl["_text"]
    h1.stop()
    run = qh.runq(postino)
    assert h2.sessions == [], "resent to another hub: possible duplicate"
    assert "waits for hub %s" % h1.mailhub() in run.log_text, run.log_text
    assert qh.ids(postino) == [qid]
    back = fault(port=h1.port)
    qh.runq(postino)
    back.wait_idle()
    assert tokens_at(back) == {tok: 1}
    assert h2.sessions == []
    qh.assert_empty(postino)


def test_all_down_queued_then_run_delivers_via_whichever_returns(
        postino, fault):
    p1, p2 = unused_port(), unused_port()
    while p2 == p1:
        p2 = unused_port()
    postino.config(MailHub=hubs("127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2),
                   RetryInterval=0)
    tok = token()
    res = postino.run([RCPT], message(tok))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    qid = qh.assert_one_entry(postino)
    # mailq and --json name the hub that last refused it.
    named = "127.0.0.1[127.0.0.1]:%d" % p2
    assert named in qh.control(postino, qid)["_text"]
    assert named in qh.mailq(postino)
    js = qh.admin(postino, "--json")
    assert js.rc == 0, js.describe()
    assert named in js.out, js.out
    # The second hub comes back; both are backed off, and a run still
    # tries the list in order.
    h2 = fault(port=p2)
    qh.runq(postino)
    h2.wait_idle()
    assert tokens_at(h2) == {tok: 1}
    qh.assert_empty(postino)


def test_backoff_is_per_hub_second_submission_does_not_wait(
        postino, fault):
    h1 = fault(blackhole=True)       # a connect hangs until Timeout
    h2 = fault()
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()), Timeout="2")
    t1, t2 = token(), token()
    first = postino.run([RCPT], message(t1)).ok()
    assert first.elapsed >= 1.5, first.describe()
    assert "hub %s cannot take it now" % h1.mailhub() in first.log_text
    mark = os.path.join(postino.queue_dir, "hub-down.127.0.0.1.%d" % h1.port)
    marked = os.stat(mark).st_ino
    second = postino.run([RCPT], message(t2)).ok()
    # The behaviour, not the clock: hub1 is not tried at all (a failed
    # try would log it and write its mark anew), so no Timeout is spent.
    assert "hub %s cannot" % h1.mailhub() not in second.log_text, \
        second.describe()
    assert os.stat(mark).st_ino == marked, "hub1 tried within HubBackoff"
    assert second.elapsed < 2, second.describe()
    h2.wait_idle()
    assert tokens_at(h2) == {t1: 1, t2: 1}
    qh.assert_empty(postino)


def test_revaliases_hub_stays_one_host(postino, fault):
    h1 = fault(replies={"greeting": "421 4.3.2 busy"})
    h2 = fault()
    postino.config(MailHub=h2.mailhub(), HubBackoff=0)
    postino.write_revaliases("%s:me@example.org:%s\n" % (helpers.login(),
                                                          h1.mailhub()))
    res = postino.run([RCPT], message(token()))
    assert res.rc == 0, res.describe()
    h1.wait_idle()
    assert h2.sessions == []
    qh.assert_one_entry(postino)


# -- addresses: IPv6 and IPv4, AddressFamily, SourceAddress -----------------

def test_v6_and_v4_hubs_in_one_list(postino, fault):
    h1 = fault(host="::1", replies={"greeting": "421 4.3.2 busy"})
    h2 = fault(host="127.0.0.1")
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()))
    tok = token()
    postino.run([RCPT], message(tok)).ok()
    h1.wait_idle()
    assert len(h1.sessions) == 1
    assert tokens_at(h2) == {tok: 1}


def run_with_hosts(postino, hosts_text, args, input):
    """postino with its own /etc/hosts (a private mount namespace): the
    name localhost on both ::1 and 127.0.0.1."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private /etc/hosts")
    path = os.path.join(postino.dir, "hosts")
    with open(path, "w") as f:
        f.write(hosts_text)
    cmd = ["unshare", "-m", "sh", "-c",
           'mount --bind "$0" /etc/hosts && exec "$@"', path] + \
        postino.argv(args)
    return execute(cmd, input, postino.env(), postino.dir, log=postino.log)


@pytest.mark.parametrize("listening", ["::1", "127.0.0.1"])
def test_every_address_of_a_name_is_tried(postino, fault, listening):
    srv = fault(host=listening)
    postino.config(MailHub="localhost:%d" % srv.port)
    tok = token()
    res = run_with_hosts(postino, "::1 localhost\n127.0.0.1 localhost\n",
                         [RCPT], message(tok))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    srv.wait_idle()
    assert tokens_at(srv) == {tok: 1}
    qh.assert_empty(postino)


def test_address_family_restricts(postino, fault):
    srv = fault(host="::1")
    postino.config(MailHub="localhost:%d" % srv.port, AddressFamily="ipv4",
                   HubBackoff=0)
    hosts = "::1 localhost\n127.0.0.1 localhost\n"
    res = run_with_hosts(postino, hosts, [RCPT], message(token()))
    assert res.rc == 0, res.describe()
    assert srv.sessions == []
    qh.assert_one_entry(postino)
    postino.config(MailHub="localhost:%d" % srv.port, AddressFamily="ipv6",
                   HubBackoff=0)
    tok = token()
    res = run_with_hosts(postino, hosts, [RCPT], message(tok))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    srv.wait_idle()
    assert tokens_at(srv) == {tok: 1}


def test_address_family_without_such_address_is_named(postino, fault):
    srv = fault(host="127.0.0.1")
    postino.config(MailHub="localhost:%d" % srv.port, AddressFamily="ipv6",
                   HubBackoff=0)
    res = postino.run([RCPT], message(token()))
    assert res.rc == 0, res.describe()
    assert srv.sessions == []
    assert "AddressFamily=ipv6" in res.log_text, res.log_text


def test_source_address_binds(postino, hub):
    postino.config(MailHub=hub.hub("plain"), SourceAddress="127.0.0.2")
    tok = token()
    postino.run([RCPT], message(tok)).ok()
    assert hub.find_one(tok).attrs["client_address"] == "127.0.0.2"


def test_source_address_of_the_other_family_skips_the_hub(postino, fault):
    h1 = fault(host="127.0.0.1")
    h2 = fault(host="::1")
    postino.config(MailHub=hubs(h1.mailhub(), h2.mailhub()),
                   SourceAddress="::1")
    tok = token()
    res = postino.run([RCPT], message(tok)).ok()
    h2.wait_idle()
    assert h1.sessions == []
    assert tokens_at(h2) == {tok: 1}
    assert "SourceAddress ::1 is not an IPv4 address" in res.log_text


@pytest.mark.parametrize("line,why", [
    ("SourceAddress=mail.example.org", "not an IPv4 or IPv6 address"),
    ("AddressFamily=inet", "expected any, ipv4 or ipv6"),
    ("MailHub=a, b:0", "bad port '0'"),
])
def test_bad_keys_are_config_errors(postino, line, why):
    path = postino.raw_config("QueueDir=%s\n%s\n" % (postino.queue_dir, line))
    res = postino.run([RCPT], message(token()), config=path)
    assert res.rc == 78, res.describe()
    assert why in res.err, res.describe()


# -- jitter: 200 hosts whose hub is down ------------------------------------

def test_retry_jitter_spreads_200_queues(postino_binary, tmp_path):
    """200 independent queues (own QueueDir each) queue a message while
    their hub is down; their next retries spread over a window instead of
    landing in one second. Not timed: the schedules are read back."""
    down = "127.0.0.1:%d" % unused_port()
    delays = []
    per_second = {}
    for i in range(200):
        p = helpers.Postino(postino_binary, tmp_path / ("host%03d" % i))
        p.config(MailHub=down, RetryInterval=60, HubBackoff=0)
        res = p.run([RCPT], message(token()))
        assert res.rc == 0, res.describe()
        ctl = qh.control(p, qh.assert_one_entry(p))
        nxt = qh.number(ctl, "next-retry")
        delays.append(nxt - qh.number(ctl, "queued"))
        per_second[nxt] = per_second.get(nxt, 0) + 1
    assert min(delays) >= 60 and max(delays) <= 73, sorted(delays)
    # Without jitter every delay is 60 (61 across a second boundary).
    assert len(set(delays)) >= 8, sorted(delays)
    # The hub's peak of returning queue runs per second, 200 hosts.
    peak = max(per_second.values())
    print("jitter: 200 hosts, peak %d retries/s over %d s" % (
        peak, max(per_second) - min(per_second) + 1))
    assert peak <= 60, per_second


# -- the list in `postino check --hub` and `queue --metrics` ------------------

def test_hub_check_probes_every_hub_one_down_is_warning(postino, fault):
    srv = fault()
    down = "127.0.0.1:%d" % unused_port()
    postino.config(MailHub=hubs(down, srv.mailhub()))
    res = postino.run(["check", "--hub"], b"", argv0="postino")
    assert res.rc == 1, res.describe()
    first = res.out.splitlines()[0]
    assert first.startswith("POSTINO HUB WARNING - 1/2 hubs take"), first
    assert down + ": cannot connect" in first, first
    srv.wait_idle()
    assert [s.verbs() for s in srv.sessions] == [["EHLO", "QUIT"]]


def test_metrics_hub_up_for_each_hub(postino, fault):
    from prometheus_client.parser import text_string_to_metric_families
    p1, p2 = unused_port(), unused_port()
    postino.config(MailHub=hubs("127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2),
                   HubBackoff="1h")
    srv = fault(port=p2)
    postino.run([RCPT], message(token())).ok()      # hub1 down, hub2 takes
    res = qh.admin(postino, "--metrics")
    assert res.rc == 0, res.describe()
    up = {s.labels["hub"]: s.value
          for f in text_string_to_metric_families(res.out)
          for s in f.samples if s.name == "postino_hub_up"}
    assert up == {"127.0.0.1:%d" % p1: 0, "127.0.0.1:%d" % p2: 1}, res.out
    srv.wait_idle()
