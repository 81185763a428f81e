"""Figures for postino beside ssmtp and msmtp (run by bench/bench.sh).

Not a test: it prints a table. Measured on loopback only:
  * latency of a small plain message to Postfix's smtp-sink: median (and
    min, p90) wall time of N runs, time.perf_counter around each run;
  * peak RSS relaying a large message (default 100 MiB), from GNU time's
    %M: the child's own ru_maxrss (getrusage(RUSAGE_CHILDREN) in this
    process would carry Python's high-water mark into the figure);
  * with root and Postfix: latency with STARTTLS + AUTH PLAIN against a
    private Postfix hub (tests/e2e/postfixhub.py), certificate verified by
    postino and msmtp (ssmtp cannot verify).
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import certs as certs_mod  # noqa: E402
import postfixhub  # noqa: E402
from postfixhub import free_port  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"
RSS_LIMIT_KIB = 8 * 1024
RCPT = "bench@example.org"
SENDER = "sender@example.org"


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("nothing listens on port %d" % port)
            time.sleep(0.05)


def small_message(path):
    with open(path, "wb") as f:
        f.write(b"From: sender@example.org\nTo: bench@example.org\n"
                b"Subject: bench\n\nA small message.\n")


def big_message(path, mib):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
    block = line * (1 << 14)
    with open(path, "wb") as f:
        f.write(b"From: sender@example.org\nTo: bench@example.org\n"
                b"Subject: big\n\n")
        left = mib << 20
        while left > 0:
            f.write(block[:left])
            left -= len(block)


class Client:
    def __init__(self, name, argv, env=None):
        self.name = name
        self.argv = argv
        self.env = env

    def run(self, msg_path, timed=True):
        with open(msg_path, "rb") as msg:
            start = time.perf_counter()
            p = subprocess.run(self.argv, stdin=msg, capture_output=True,
                               env=self.env, timeout=300)
            elapsed = time.perf_counter() - start
        if p.returncode != 0:
            raise RuntimeError("%s exited %d: %s" % (
                self.name, p.returncode,
                p.stderr.decode(errors="replace").strip()[:300]))
        return elapsed

    def latency(self, msg_path, runs):
        for _ in range(3):
            self.run(msg_path)            # warm the page cache
        times = sorted(self.run(msg_path) for _ in range(runs))
        return (statistics.median(times), times[0],
                times[min(len(times) - 1, int(len(times) * 0.9))])

    def peak_rss(self, msg_path, work):
        out = os.path.join(work, "rss-%s" % self.name)
        with open(msg_path, "rb") as msg:
            p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out]
                               + self.argv, stdin=msg, capture_output=True,
                               env=self.env, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("%s exited %d: %s" % (
                self.name, p.returncode,
                p.stderr.decode(errors="replace").strip()[:300]))
        with open(out) as f:
            return int(f.read().split()[-1])


def lib_env(root):
    paths = [os.path.join(root, d) for d in (
        "usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib",
        "lib")]
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
           "LD_LIBRARY_PATH": ":".join(p for p in paths if os.path.isdir(p))}
    return env


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def plain_clients(a, work, port):
    clean = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    queue = os.path.join(work, "queue")
    os.makedirs(queue, exist_ok=True)
    rev = write(os.path.join(work, "revaliases"), "")
    conf = write(os.path.join(work, "postino.conf"),
                 "MailHub=127.0.0.1:%d\nHostName=bench.example\n"
                 "RewriteDomain=example.org\nQueueDir=%s\nLogFile=%s\n"
                 "RevaliasesFile=%s\nTimeout=60\n" % (
                     port, queue, os.path.join(work, "postino.log"), rev))
    out = [Client("postino", [a.postino, "-C", conf, "-f", SENDER, RCPT],
                  clean)]
    ssmtp = os.path.join(a.root, "usr/sbin/ssmtp")
    msmtp = os.path.join(a.root, "usr/bin/msmtp")
    env = lib_env(a.root)
    if os.access(ssmtp, os.X_OK):
        sconf = write(os.path.join(work, "ssmtp.conf"),
                      "mailhub=127.0.0.1:%d\nhostname=bench.example\n"
                      "FromLineOverride=YES\n" % port)
        out.append(Client("ssmtp", [ssmtp, "-C", sconf, RCPT], env))
    if os.access(msmtp, os.X_OK):
        out.append(Client("msmtp", [
            msmtp, "-C", "/dev/null", "--host=127.0.0.1",
            "--port=%d" % port, "--from=" + SENDER, "--auth=off",
            "--tls=off", RCPT], env))
    return out


def tls_clients(a, work, hub, certs):
    port = hub.ports["submission"]
    user, pw = postfixhub.SASL_USER, postfixhub.SASL_PASS
    queue = os.path.join(work, "queue")
    conf = write(os.path.join(work, "postino-tls.conf"),
                 "MailHub=127.0.0.1:%d\nHostName=bench.example\n"
                 "RewriteDomain=example.org\nQueueDir=%s\nLogFile=%s\n"
                 "RevaliasesFile=%s\nUseSTARTTLS=YES\nTLS_CA_File=%s\n"
                 "AuthUser=%s\nAuthPass=%s\nAuthMethod=plain\n" % (
                     port, queue, os.path.join(work, "postino.log"),
                     os.path.join(work, "revaliases"), certs.ca.cert,
                     user, pw))
    clean = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    out = [Client("postino", [a.postino, "-C", conf, "-f", SENDER, RCPT],
                  clean)]
    env = lib_env(a.root)
    ssmtp = os.path.join(a.root, "usr/sbin/ssmtp")
    msmtp = os.path.join(a.root, "usr/bin/msmtp")
    if os.access(ssmtp, os.X_OK):
        sconf = write(os.path.join(work, "ssmtp-tls.conf"),
                      "mailhub=127.0.0.1:%d\nhostname=bench.example\n"
                      "UseSTARTTLS=YES\nAuthUser=%s\nAuthPass=%s\n"
                      "FromLineOverride=YES\n" % (port, user, pw))
        out.append(Client("ssmtp", [ssmtp, "-C", sconf, RCPT], env))
    if os.access(msmtp, os.X_OK):
        rc = write(os.path.join(work, "msmtprc"),
                   "account default\nhost 127.0.0.1\nport %d\n"
                   "from %s\ntls on\ntls_starttls on\ntls_trust_file %s\n"
                   "auth plain\nuser %s\npassword %s\n" % (
                       port, SENDER, certs.ca.cert, user, pw))
        out.append(Client("msmtp", [msmtp, "-C", rc, RCPT], env))
    return out


def ms(x):
    return "%8.2f" % (x * 1000)


def table(title, rows, cols):
    print()
    print(title)
    print("  %-10s" % "" + "".join("%12s" % c for c in cols))
    for name, vals in rows:
        print("  %-10s" % name + "".join("%12s" % v for v in vals))


def measure_latency(clients, msg, runs):
    rows = []
    for c in clients:
        try:
            med, lo, p90 = c.latency(msg, runs)
            rows.append((c.name, [ms(med), ms(lo), ms(p90)]))
        except Exception as e:
            rows.append((c.name, ["failed"] * 3))
            print("  %s: %s" % (c.name, e), file=sys.stderr)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--postino", required=True)
    ap.add_argument("--root", required=True, help="unpacked .debs")
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--big-mib", type=int, default=100)
    ap.add_argument("--no-tls", action="store_true")
    a = ap.parse_args()
    a.postino = os.path.abspath(a.postino)
    if not os.access(SMTP_SINK, os.X_OK):
        sys.exit("bench: %s missing (Debian package postfix)" % SMTP_SINK)
    os.makedirs(a.work, exist_ok=True)
    # Absolute: the certificate helper runs openssl in its own directory.
    work = os.path.abspath(tempfile.mkdtemp(prefix="run-", dir=a.work))
    os.chmod(work, 0o755)
    sink = None
    status = 0
    try:
        port = free_port()
        cmd = [SMTP_SINK]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        sink = subprocess.Popen(cmd + ["127.0.0.1:%d" % port, "256"],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_port(port)
        small = os.path.join(work, "small.eml")
        big = os.path.join(work, "big.eml")
        small_message(small)
        big_message(big, a.big_mib)
        clients = plain_clients(a, work, port)
        print("postino bench: loopback, Postfix smtp-sink on 127.0.0.1:%d, "
              "%d runs each" % (port, a.runs))
        table("small plain message, wall time (ms)",
              measure_latency(clients, small, a.runs),
              ["median", "min", "p90"])
        rows = []
        for c in clients:
            try:
                kib = c.peak_rss(big, work)
                note = ""
                if c.name == "postino":
                    note = "ok" if kib < RSS_LIMIT_KIB else "OVER 8 MiB"
                    status |= kib >= RSS_LIMIT_KIB
                rows.append((c.name, ["%d" % kib, "%.1f" % (kib / 1024),
                                      note]))
            except Exception as e:
                rows.append((c.name, ["failed", "", ""]))
                print("  %s: %s" % (c.name, e), file=sys.stderr)
                status |= c.name == "postino"
        table("peak RSS relaying a %d MiB message" % a.big_mib, rows,
              ["KiB", "MiB", "limit"])
        os.unlink(big)
        if not a.no_tls:
            tls_table(a, work)
    finally:
        if sink:
            sink.terminate()
            sink.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return status


def tls_table(a, work):
    why = postfixhub.available()
    if why:
        print("\n(STARTTLS + AUTH figures skipped: %s)" % why)
        return
    cdir = os.path.join(work, "certs")
    os.mkdir(cdir)
    certs = certs_mod.make_certs(cdir)
    hdir = os.path.join(work, "postfix")
    os.mkdir(hdir)
    hub = postfixhub.PostfixHub(hdir, certs)
    try:
        hub.start()
        small = os.path.join(work, "small.eml")
        runs = max(5, a.runs // 2)
        table("STARTTLS + AUTH PLAIN to a Postfix hub (%d runs), wall time "
              "(ms)" % runs,
              measure_latency(tls_clients(a, work, hub, certs), small, runs),
              ["median", "min", "p90"])
    finally:
        hub.stop()


if __name__ == "__main__":
    sys.exit(main())
