"""A fleet whose hub comes back: the hub's peak connections per second
with and without retry jitter (issue 10). Not a test: it prints figures.

On loopback only. N hosts (default 200), each its own QueueDir and
config, queue one message while their hub is down (nothing listens on
its port; RetryInterval=R, HubBackoff=0). Then the hub comes back (the
e2e fault server on that port, recording when each connection arrives)
and every host runs `sendmail -q` when its own entry falls due, as a
per-host timer with a fine tick would. Twice: with the schedules postino
wrote (jitter), then with every next-retry rewritten to queued + R, the
schedule without jitter. Printed: the peak of connections the hub saw in
one second, and over how many seconds they came.

    python3 bench/jitter.py [--hosts 200] [--interval 30]
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

from faultserver import FaultServer  # noqa: E402
from helpers import free_port  # noqa: E402

MSG = (b"From: bench@example.org\nTo: rcpt@example.org\nSubject: jitter\n\n"
       b"hello\n")


def control_path(qdir):
    d = os.path.join(qdir, "queue")
    names = [n for n in os.listdir(d) if re.match(r"^[0-9A-F]{10}$", n)]
    assert len(names) == 1, names
    return os.path.join(d, names[0])


def field(text, key):
    m = re.search(r"^%s (\d+)" % key, text, re.M)
    return int(m.group(1))


def make_hosts(binary, base, n, port, interval):
    hosts = []
    for i in range(n):
        d = os.path.join(base, "host%04d" % i)
        qdir = os.path.join(d, "queue")
        os.makedirs(qdir)
        conf = os.path.join(d, "ssmtp.conf")
        with open(conf, "w") as f:
            f.write("MailHub=127.0.0.1:%d\nQueueDir=%s\nHostName=h%d.test\n"
                    "RewriteDomain=example.org\nRevaliasesFile=%s/revaliases\n"
                    "LogFile=%s/log\nRetryInterval=%d\nHubBackoff=0\n"
                    "Timeout=10\n" % (port, qdir, i, d, d, interval))
        os.chmod(conf, 0o600)
        r = subprocess.run([binary, "-C", conf, "rcpt@example.org"],
                           input=MSG, capture_output=True)
        assert r.returncode == 0, r.stderr
        hosts.append((conf, qdir))
    return hosts


def schedules(hosts, jitter, interval):
    """The hub went down for every host at the same moment (their timers
    fired together): each entry is rescheduled to one common failure time
    plus the wait postino chose (jitter) or plus RetryInterval (none)."""
    texts = []
    for conf, qdir in hosts:
        with open(control_path(qdir)) as f:
            texts.append(f.read())
    base = max(field(t, "queued") for t in texts) + 1
    out = []
    for (conf, qdir), text in zip(hosts, texts):
        wait = field(text, "next-retry") - field(text, "queued")
        due = base + (wait if jitter else interval)
        text = re.sub(r"^next-retry \d+", "next-retry %d" % due, text,
                      flags=re.M)
        with open(control_path(qdir), "w") as f:
            f.write(text)
        out.append((due, conf))
    return sorted(out)


def left(hosts):
    return sum(1 for _, qdir in hosts
               if os.listdir(os.path.join(qdir, "queue")))


def run_fleet(binary, hosts, jitter, interval, port):
    sched = schedules(hosts, jitter, interval)
    srv = FaultServer(port=port)
    arrivals = []
    orig = srv._serve

    async def serve(reader, writer):
        arrivals.append(time.time())
        await orig(reader, writer)
    srv._serve = serve
    srv.start()
    procs = []
    try:
        for due, conf in sched:
            # Half a second late: time(2) of a child may lag this
            # process's clock a little (seen under gVisor).
            delay = due + 0.5 - time.time()
            if delay > 0:
                time.sleep(delay)
            procs.append(subprocess.Popen([binary, "-C", conf, "-q"]))
        for p in procs:
            p.wait()
        srv.wait_idle(60)
    finally:
        srv.stop()
    per_second = collections.Counter(int(t) for t in arrivals)
    span = max(per_second) - min(per_second) + 1 if per_second else 0
    return len(arrivals), max(per_second.values()), span


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--interval", type=int, default=30)
    ap.add_argument("--binary", default=os.path.join(REPO, "build",
                                                    "postino"))
    a = ap.parse_args()
    for jitter in (True, False):
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="postino-jitter-") as base:
            hosts = make_hosts(a.binary, base, a.hosts, port, a.interval)
            n, peak, span = run_fleet(a.binary, hosts, jitter, a.interval,
                                      port)
            if left(hosts):
                print("%d hosts still hold their message" % left(hosts))
        print("%-14s %d hosts, RetryInterval=%ds: %d connections, peak %d "
              "per second, over %d s" % (
                  "with jitter" if jitter else "without jitter", a.hosts,
                  a.interval, n, peak, span))


if __name__ == "__main__":
    main()
