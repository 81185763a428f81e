"""What the fallback-queue tests (test_queue_*.py) share: running postino
under the names sendmail, mailq and postino, reading the queue directory
(control files, data files, leftovers), counting what a hub received, the
`postino queue` subcommand, and two misbehaving hubs of our own: one whose
greeting comes late (DelayProxy) and one that never answers a connect
(Blackhole). Everything listens on 127.0.0.1 only.

The layout of the queue (man/postino.8 "Files of the queue"):
  QueueDir/data/QID     the message
  QueueDir/queue/QID    its control file ("key value" lines)
  QueueDir/failed/QID   control file of an entry never retried
  AREA/.tmp.*           being written
"""

import collections
import errno
import fcntl
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import helpers

QID_RX = re.compile(r"^[0-9A-F]{10}$")
TOKEN_RX = re.compile(rb"tok-[0-9a-f]{16}")
AREAS = ("data", "queue", "failed")
SEED = int(os.environ.get("POSTINO_E2E_SEED", "20261122"))


# -- running postino under its names ----------------------------------------

def bindir(p):
    """p.dir/bin with sendmail, mailq and postino linked to the binary."""
    d = os.path.join(p.dir, "bin")
    if not os.path.isdir(d):
        # Built aside and renamed: threads may get here at once.
        tmp = tempfile.mkdtemp(prefix=".bin-", dir=p.dir)
        for name in ("sendmail", "mailq", "postino"):
            os.symlink(os.path.abspath(p.binary), os.path.join(tmp, name))
        try:
            os.rename(tmp, d)
        except OSError:
            shutil.rmtree(tmp)
    return d


def exe(p, name="sendmail"):
    return os.path.join(bindir(p), name)


def start(p, args, name="sendmail", config=None, extra_env=None):
    """Popen of `name -C config args` with pipes on stdin/stdout/stderr."""
    if config is None:
        config = p.config_path or p.config()
    cmd = [exe(p, name), "-C", config] + list(args)
    return subprocess.Popen(cmd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=p.env(extra_env), cwd=p.dir)


def run(p, args, input=b"", name="sendmail", config=None, timeout=60):
    """Run `name -C config args`; a helpers.Result with the new log lines."""
    before = log_size(p)
    t0 = time.monotonic()
    proc = start(p, args, name=name, config=config)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("%s %s did not exit within %ds\nstderr: %r"
                             % (name, " ".join(args), timeout, err))
    res = helpers.Result(proc.args, proc.returncode, out, err,
                         time.monotonic() - t0)
    res.log_text = log_since(p, before)
    return res


def send(p, rcpts, tok, args=(), headers=None, body=None, **kw):
    """Submit a small message whose Subject carries tok."""
    mkw = {}
    if headers is not None:
        mkw["headers"] = headers
    if body is not None:
        mkw["body"] = body
    return run(p, list(args) + list(rcpts), helpers.message(tok, **mkw), **kw)


def runq(p, *args, **kw):
    """One queue run (`sendmail -q`); it must succeed silently."""
    res = run(p, ["-q"] + list(args), **kw)
    assert res.rc == 0 and res.stdout == b"" and res.stderr == b"", \
        res.describe()
    return res


def log_size(p):
    try:
        return os.path.getsize(p.logfile)
    except OSError:
        return 0


def log_since(p, offset=0):
    try:
        with open(p.logfile, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def hub_down_config(p, **keys):
    """A config whose MailHub refuses connections (nothing listens)."""
    keys.setdefault("MailHub", "127.0.0.1:%d" % helpers.unused_port())
    return p.config(**keys)


# -- the queue directory ---------------------------------------------------

def ids(p, area="queue"):
    d = os.path.join(p.queue_dir, area)
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if QID_RX.match(n))


def files(p):
    """Every name under the queue's areas, as 'area/name' (dot files too)."""
    out = []
    for area in AREAS:
        d = os.path.join(p.queue_dir, area)
        if os.path.isdir(d):
            out += ["%s/%s" % (area, n) for n in sorted(os.listdir(d))]
    return out


def control(p, qid, area="queue"):
    """A control file as a dict; 'rcpt' is a list of (state, addr, reply)."""
    with open(os.path.join(p.queue_dir, area, qid)) as f:
        text = f.read()
    out = {"rcpt": [], "_text": text}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "rcpt":
            m = re.match(r"(\w+) <([^>]*)> ?(.*)$", value)
            assert m, "bad rcpt line %r in\n%s" % (line, text)
            out["rcpt"].append(m.groups())
        else:
            assert key not in out, "key %s twice in\n%s" % (key, text)
            out[key] = value
    return out


def number(ctl, key):
    """The seconds-since-epoch (or plain number) at the start of a value."""
    return int(ctl[key].split()[0])


def data_token(p, qid):
    """The tok-... in the Subject of data/QID (None if none)."""
    with open(os.path.join(p.queue_dir, "data", qid), "rb") as f:
        m = TOKEN_RX.search(f.read(65536))
    return m.group(0).decode() if m else None


def queued_tokens(p, area="queue"):
    """{token: qid} for the entries of one area."""
    out = {}
    for qid in ids(p, area):
        try:
            tok = data_token(p, qid)
        except FileNotFoundError:
            continue
        if tok:
            out[tok] = qid
    return out


def assert_one_entry(p, area="queue"):
    """Exactly one whole entry: area/QID and data/QID, nothing else."""
    q = ids(p, area)
    assert len(q) == 1, files(p)
    assert sorted(files(p)) == sorted(["%s/%s" % (area, q[0]),
                                       "data/%s" % q[0]]), files(p)
    return q[0]


def assert_empty(p):
    assert files(p) == [], files(p)


def leftovers(p):
    """Files that must not outlive a queue run: orphan data and .tmp.*."""
    bad = []
    for area in AREAS:
        d = os.path.join(p.queue_dir, area)
        if not os.path.isdir(d):
            continue
        for n in os.listdir(d):
            if n.startswith(".tmp."):
                bad.append("%s/%s" % (area, n))
            elif area == "data" and not any(
                    os.path.exists(os.path.join(p.queue_dir, a, n))
                    for a in ("queue", "failed")):
                bad.append("data/%s (orphan)" % n)
    return bad


def age_temporary_files(p, seconds=10, orphan_seconds=7200):
    """Make every .tmp.* look `seconds` old and every orphan data file
    (no control file) `orphan_seconds` old, as if a crash left them then:
    the sweep removes only temporary files older than 5 s and orphans
    older than an hour (queue.c)."""
    past = time.time() - seconds
    orphan_past = time.time() - orphan_seconds
    for area in AREAS:
        d = os.path.join(p.queue_dir, area)
        if not os.path.isdir(d):
            continue
        for n in os.listdir(d):
            if area == "data" and not n.startswith(".tmp.") and not any(
                    os.path.exists(os.path.join(p.queue_dir, a, n))
                    for a in ("queue", "failed")):
                try:
                    os.utime(os.path.join(d, n), (orphan_past, orphan_past))
                except FileNotFoundError:
                    pass
            elif n.startswith(".tmp."):
                try:
                    os.utime(os.path.join(d, n), (past, past))
                except FileNotFoundError:
                    pass


def runner_busy(p):
    """Is a queue run holding QueueDir/runner.lock?"""
    path = os.path.join(p.queue_dir, "runner.lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)


def wait_runners(p, timeout=20.0):
    """Wait until no (detached) queue run holds the runner lock."""
    # A detached runner takes the lock a moment after it is forked: look
    # twice, a little apart.
    for _ in range(2):
        assert helpers.wait_until(lambda: not runner_busy(p), timeout), \
            "a queue run is still active after %.0fs" % timeout
        time.sleep(0.2)


# -- what the hub received -------------------------------------------------

def subject_tokens(messages):
    """Counter of the tok-... in the Subject of each message."""
    c = collections.Counter()
    for m in messages:
        subj = " ".join(helpers.parse(m.content).get("Subject"))
        found = TOKEN_RX.search(subj.encode())
        if found:
            c[found.group(0).decode()] += 1
    return c


def bounces(srv):
    """Messages from the null sender (MAIL FROM:<>)."""
    return [m for m in srv.messages if m.mail_from == ""]


def wait_messages(srv, n, timeout=10.0):
    ok = helpers.wait_until(lambda: len(srv.messages) >= n, timeout)
    assert ok, "hub has %d messages, want %d" % (len(srv.messages), n)
    return srv.messages


# -- mailq / -bp -----------------------------------------------------------

MAILQ_HEADER = ("-Queue ID-  --Size-- ----Arrival Time---- "
                "-Sender/Recipient-------")
ENTRY_RX = re.compile(r"^(?P<qid>[0-9A-F]{10})(?P<mark>[*!]?)\s+"
                      r"(?P<size>\d+) (?P<date>\w{3} \w{3} [ \d]\d "
                      r"\d\d:\d\d:\d\d)\s+(?P<sender>\S+)$")
REASON_RX = re.compile(r"^\s*\((?P<reason>.*)\)$")
RCPT_RX = re.compile(r"^ {41}(?P<addr>\S+)$")
TOTAL_RX = re.compile(r"^-- (\d+) Kbytes in (\d+) Requests?\.$")


def parse_mailq(text):
    """Postfix's layout -> (entries, total line).  Each entry is a dict
    with qid, mark, size, sender, and rcpts: [(reason, addr)]."""
    lines = text.split("\n")
    assert lines[-1] == "", "no newline at the end: %r" % text
    lines = lines[:-1]
    if lines == ["Mail queue is empty"]:
        return [], None
    assert lines[0] == MAILQ_HEADER, text
    m = TOTAL_RX.match(lines[-1])
    assert m, "last line %r\n%s" % (lines[-1], text)
    entries, cur, reason = [], None, None
    for line in lines[1:-1]:
        if line == "":
            assert cur is not None, text
            entries.append(cur)
            cur = None
            continue
        em, rm, cm = (ENTRY_RX.match(line), REASON_RX.match(line),
                      RCPT_RX.match(line))
        if cur is None:
            assert em, "want an entry line, got %r\n%s" % (line, text)
            cur = dict(em.groupdict(), rcpts=[])
            cur["size"] = int(cur["size"])
            reason = None
        elif rm:
            reason = rm.group("reason")
        else:
            assert cm, "want a recipient line, got %r\n%s" % (line, text)
            cur["rcpts"].append((reason, cm.group("addr")))
    assert cur is None, "entry without a blank line after it\n" + text
    return entries, (int(m.group(1)), int(m.group(2)))


def mailq(p, via="mailq"):
    """The listing, through a link named mailq or as sendmail -bp."""
    if via == "mailq":
        res = run(p, [], name="mailq")
    else:
        res = run(p, ["-bp"])
    assert res.rc == 0 and res.stderr == b"", res.describe()
    return res.out


# -- postino queue ... -------------------------------------------------------

def admin(p, *args, user=None):
    """`postino queue ARGS` as `user` (None: this process's user).

    The subcommand has no -C (man/postino.8 SYNOPSIS): it reads
    /etc/ssmtp/ssmtp.conf. So it runs in a mount namespace of its own
    where an overlay on /etc holds this test's config there; the real
    /etc is never touched. Needs root (skipped otherwise).
    """
    if os.geteuid() != 0:
        pytest.skip("postino queue reads only /etc/ssmtp/ssmtp.conf; "
                    "giving it the test's config needs a mount namespace "
                    "(root)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) missing")
    base = tempfile.mkdtemp(prefix="ovl-", dir=p.dir)
    upper, work = os.path.join(base, "u"), os.path.join(base, "w")
    os.makedirs(os.path.join(upper, "ssmtp"), 0o755)
    os.mkdir(work)
    os.chmod(os.path.join(upper, "ssmtp"), 0o755)
    shutil.copy(p.config_path or p.config(),
                os.path.join(upper, "ssmtp", "ssmtp.conf"))
    os.chmod(os.path.join(upper, "ssmtp", "ssmtp.conf"), 0o644)
    cmd = [exe(p, "postino"), "queue"] + list(args)
    if user is not None:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", "--reuid=%d" % pw.pw_uid,
               "--regid=%d" % pw.pw_gid, "--clear-groups", "--"] + cmd
    script = ('mount -t overlay overlay -o lowerdir=/etc,upperdir="$1",'
              'workdir="$2" /etc || exit 99; shift 2; exec "$@"')
    before = log_size(p)
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         script, "sh", upper, work] + cmd,
        stdin=subprocess.DEVNULL, capture_output=True, env=p.env(),
        timeout=30)
    if proc.returncode == 99:
        pytest.skip("cannot mount an overlay on /etc in a private mount "
                    "namespace: %s" % proc.stderr.decode(errors="replace"))
    res = helpers.Result(cmd, proc.returncode, proc.stdout, proc.stderr, 0)
    res.log_text = log_since(p, before)
    return res


# -- hubs that misbehave in ways the fault server cannot -------------------

class DelayProxy:
    """Accepts at once, waits `delay` seconds, then relays the connection
    to target (host, port): a hub whose greeting comes late."""

    def __init__(self, target_port, delay):
        self.target = ("127.0.0.1", target_port)
        self.delay = delay
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.stopping = threading.Event()
        self.socks = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def mailhub(self):
        return "127.0.0.1:%d" % self.port

    def _track(self, s):
        with self.lock:
            self.socks.append(s)

    def _accept(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self._track(c)
            threading.Thread(target=self._relay, args=(c,),
                             daemon=True).start()

    def _relay(self, c):
        if self.stopping.wait(self.delay):
            return
        try:
            u = socket.create_connection(self.target, timeout=10)
        except OSError:
            c.close()
            return
        u.settimeout(None)
        self._track(u)
        t = threading.Thread(target=self._pump, args=(u, c), daemon=True)
        t.start()
        self._pump(c, u)
        t.join(30)

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self):
        self.stopping.set()
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass


class Blackhole:
    """A listening socket whose accept queue is full: the kernel drops
    further SYNs, so a connect() hangs until the client's own deadline."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.port = self.lsock.getsockname()[1]
        self.fillers = []
        hanging = False
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
            if not select.select([], [c], [], 0.5)[1]:
                hanging = True
                break
        if not hanging:
            self.stop()
            pytest.skip("could not fill the accept queue of a backlog-0 "
                        "socket (SYNs are not dropped here)")

    def mailhub(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        for c in self.fillers:
            c.close()
        self.lsock.close()


# -- processes ---------------------------------------------------------------

def kill(proc):
    """SIGKILL proc if it still runs; its exit status."""
    try:
        proc.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    return proc.returncode
