"""What the fallback-queue tests (test_queue_*.py) share: running postino
under the names sendmail, mailq and postino, reading the queue directory
(control files, data files, leftovers), counting what a hub received, the
`postino queue` subcommand. (Hubs whose greeting comes late or that
never answer a connect are the fault server's greeting_delay and
blackhole knobs.)

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
import signal
import time

import helpers

QID_RX = re.compile(r"^[0-9A-F]{10}$")
TOKEN_RX = re.compile(rb"tok-[0-9a-f]{16}")
AREAS = ("data", "queue", "failed")
SEED = int(os.environ.get("POSTINO_E2E_SEED", "20261122"))


# -- running postino under its names ----------------------------------------

def exe(p, name="sendmail"):
    """The binary as p.dir/bin/NAME (helpers.Postino.exe)."""
    return p.exe(name)


def start(p, args, name="sendmail", config=None, extra_env=None):
    """Popen of `name -C config args` with pipes on stdin/stdout/stderr."""
    return p.start(args, config=config, env=extra_env, argv0=exe(p, name))


def run(p, args, input=b"", name="sendmail", config=None, timeout=60):
    """Run `name -C config args`; a helpers.Result with the new log lines."""
    return p.run(args, input, config=config, timeout=timeout,
                 argv0=exe(p, name))


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
    return p.log.mark()


def log_since(p, offset=0):
    return p.log.since(offset)


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
    """`postino queue -C CONFIG ARGS` as `user` (None: this process's
    user), through the binary's own name (postino)."""
    cmd = [exe(p, "postino"), "queue", "-C", p.config_path or p.config()]
    cmd += list(args)
    if user is not None:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", "--reuid=%d" % pw.pw_uid,
               "--regid=%d" % pw.pw_gid, "--clear-groups", "--"] + cmd
    return helpers.execute(cmd, b"", p.env(), p.dir, timeout=30, log=p.log)


# -- processes ---------------------------------------------------------------

def kill(proc):
    """SIGKILL proc if it still runs; its exit status."""
    try:
        proc.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    return proc.returncode
