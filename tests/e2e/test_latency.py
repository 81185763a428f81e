"""Issue 11 item 1: no delayed-ACK stall anywhere in the dialogue.

Two 40 ms waits hide in a small SMTP transaction on Linux: Nagle's
algorithm on our side (TCP_NODELAY, set once on the hub's socket), and our
delayed ACK meeting the hub's Nagle (Postfix's EHLO reply waited 42 ms for
our ACK of the TLS 1.3 session tickets). Linux leaves quick-ACK mode as
soon as we answer what we read, so TCP_QUICKACK is set again after every
read from the hub. These tests read the system calls (strace) rather than
time the runs: whenever postino waits for the hub (poll) or answers it
(send), a TCP_QUICKACK has been set since its last read from the hub's
socket, the TLS handshake's own reads (tls.c's socket BIO) included.
Issue 11 item 6 (HubBackoff against a blackholed or refusing hub) is
checked in test_hubs.py and test_queue_stress.py.
"""

import os
import re
import shutil
import subprocess

import pytest

import queuehelpers as qh
from helpers import execute, message, token, unused_port

RCPT = "rcpt@example.org"

CALL = re.compile(r"^(\w+)\((.*)\) += (-?\d+)")


def strace_available():
    if shutil.which("strace") is None:
        return "strace(1) is not installed"
    p = subprocess.run(["strace", "-f", "-o", "/dev/null", "true"],
                       capture_output=True)
    if p.returncode != 0:
        return "strace cannot trace here: %s" % p.stderr.decode(
            errors="replace").strip()[:200]
    return None


def traced(postino, args, input=b""):
    """Run postino under strace; the result and each process's trace
    (one file per process: no lines split by another's)."""
    why = strace_available()
    if why:
        pytest.skip(why)
    d = os.path.join(postino.dir, "strace")
    os.mkdir(d)
    cmd = ["strace", "-ff", "-s", "64", "-o", os.path.join(d, "t"), "-e",
           "trace=connect,setsockopt,recvfrom,sendto,poll,close"] + \
        postino.argv(args)
    env = postino.env()
    # LeakSanitizer cannot run under ptrace; the rest of ASan can.
    env["ASAN_OPTIONS"] = ":".join(
        o for o in (env.get("ASAN_OPTIONS"), "detect_leaks=0") if o)
    res = execute(cmd, input, env, postino.dir, log=postino.log)
    traces = []
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), errors="replace") as f:
            traces.append(f.read().splitlines())
    return res, traces


def hub_calls(traces, port):
    """The calls on the socket connected to port, in order, as (name,
    args, return value), in the process that connected it."""
    for lines in traces:
        if any(l.startswith("connect(") and "htons(%d)" % port in l
               for l in lines):
            break
    else:
        raise AssertionError("no connection to port %d in the trace"
                             % port)
    fd = None
    calls = []
    for line in lines:
        m = CALL.match(line)
        if m is None:
            continue
        name, args, ret = m.group(1), m.group(2), int(m.group(3))
        if name == "connect" and "htons(%d)" % port in args:
            fd = args.split(",")[0]
            calls = [(name, args, ret)]
            continue
        if name == "poll":
            this = re.match(r"\[\{fd=(\d+),", args)
            this = this.group(1) if this else None
        else:
            this = args.split(",")[0]
        if this != fd:
            continue
        if name == "close":
            break
        calls.append((name, args, ret))
    return calls


def is_opt(call, opt):
    return call[0] == "setsockopt" and "SOL_TCP, %s," % opt in call[1]


def check_no_ack_stall(calls):
    """TCP_NODELAY once, before the first read; every wait for the hub
    and every answer to it after a TCP_QUICKACK that follows the last
    read, in the TLS handshake too. The number of re-armings."""
    nodelay = [i for i, c in enumerate(calls) if is_opt(c, "TCP_NODELAY")]
    reads = [i for i, c in enumerate(calls) if c[0] == "recvfrom"]
    assert len(nodelay) == 1 and reads and nodelay[0] < reads[0], calls
    armed, rearmed = True, 0
    for call in calls:
        name, args, ret = call
        if is_opt(call, "TCP_QUICKACK"):
            armed = True
            rearmed += 1
            continue
        if name == "recvfrom":
            # A read that got nothing (EAGAIN) left nothing to ACK.
            armed = armed and int(ret) <= 0
            continue
        waits = name == "poll" and "POLLIN" in args
        if waits or name == "sendto":
            assert armed, "%s without TCP_QUICKACK after the last read:" \
                "\n%s" % (name, "\n".join(map(str, calls)))
    return rearmed


def test_plain_submission(postino, fault):
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    tok = token()
    res, lines = traced(postino, [RCPT], message(tok))
    assert res.rc == 0, res.describe()
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {tok: 1}
    calls = hub_calls(lines, srv.port)
    # Greeting, EHLO, the pipelined group, DATA, the dot: each re-armed.
    assert check_no_ack_stall(calls) >= 5, calls


def test_starttls_submission(postino, fault, certs):
    srv = fault(tls_cert=certs.server.cert, tls_key=certs.server.key)
    postino.config(MailHub=srv.mailhub(), UseSTARTTLS="YES",
                   TLS_CA_File=certs.ca.cert)
    tok = token()
    res, lines = traced(postino, [RCPT], message(tok))
    assert res.rc == 0, res.describe()
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {tok: 1}
    assert srv.sessions[0].tls, "no TLS"
    calls = hub_calls(lines, srv.port)
    assert check_no_ack_stall(calls) >= 5, calls
    # Under TLS too: re-armed after the handshake, on every record read.
    hello = next(i for i, c in enumerate(calls)
                 if "Ready to start TLS" in c[1])
    after = [c for c in calls[hello + 1:] if is_opt(c, "TCP_QUICKACK")]
    assert len(after) >= 4, calls


def test_queue_run(postino, fault):
    port = unused_port()
    postino.config(MailHub="127.0.0.1:%d" % port, HubBackoff=0,
                   RetryInterval=0)
    tok = token()
    assert postino.run([RCPT], message(tok)).rc == 0
    qh.assert_one_entry(postino)
    qh.wait_runners(postino)    # the submission's own flush, if any
    srv = fault(port=port)
    res, lines = traced(postino, ["-q"])
    assert res.rc == 0, res.describe()
    srv.wait_idle()
    assert qh.subject_tokens(srv.messages) == {tok: 1}
    qh.assert_empty(postino)
    assert check_no_ack_stall(hub_calls(lines, port)) >= 5
