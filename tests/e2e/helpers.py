"""Running postino and reading what it did: config files, the run, its
log lines, delivered messages, and the one place that says what a
temporary failure must look like."""

import email.utils
import os
import pwd
import re
import subprocess
import time
import uuid
from dataclasses import dataclass

from postfixhub import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOSTNAME = "postino-host.example.test"
DOMAIN = "example.test"

# Every expectation about a temporary failure (hub down, 4xx, TLS refused,
# AUTH refused, STARTTLS missing) lives in expect_tempfail() below, and the
# one about a partial rejection in expect_partial_report(). Two contracts:
#   exit75  the synchronous version: exit 75 and one stderr line; a
#           partial rejection is named on stderr, exit 0
#   queue   the version with the fallback queue (man page, QUEUE): the
#           message is committed and the exit is 0, with one stderr
#           warning only when an administrator must act; a partial
#           rejection goes back to the sender as an RFC 3464 report
# POSTINO_TEMPFAIL selects; the default is what man/postino.8 documents.
TEMPFAIL_MODE = os.environ.get("POSTINO_TEMPFAIL", "queue")


def postino_bin():
    return os.environ.get("POSTINO_BIN",
                          os.path.join(REPO, "build", "postino"))


def is_asan(path):
    """Built with AddressSanitizer? (RSS figures mean nothing then.)"""
    if os.environ.get("POSTINO_ASAN") == "1":
        return True
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def login():
    """revaliases are keyed on the login of the real uid."""
    return pwd.getpwuid(os.getuid()).pw_name


def gecos_name():
    return pwd.getpwuid(os.getuid()).pw_gecos.split(",")[0]


def token():
    """A unique marker to find one test's message among all others."""
    return "tok-" + uuid.uuid4().hex[:16]


# -- messages -----------------------------------------------------------

def message(tok, headers=None, body="Hello from the postino e2e suite.\n",
            eol="\n"):
    """A small message whose Subject carries tok."""
    hdrs = list(headers if headers is not None else
                [("To", "rcpt@example.org")])
    if not any(h[0].lower() == "subject" for h in hdrs):
        hdrs.append(("Subject", "e2e " + tok))
    text = "".join("%s: %s\n" % h for h in hdrs) + "\n" + body
    return text.replace("\n", eol).encode()


@dataclass
class Parsed:
    headers: list          # (name, value) unfolded, in order
    body: bytes
    raw_header: bytes

    def get(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def one(self, name):
        vals = self.get(name)
        assert len(vals) == 1, "want one %s: header, got %r" % (name, vals)
        return vals[0]

    def names(self):
        return [n for n, _ in self.headers]


def parse(content):
    """Split wire-form (CRLF) message bytes into headers and body."""
    head, sep, body = content.partition(b"\r\n\r\n")
    if not sep and head.endswith(b"\r\n"):
        head = head[:-2]
    headers = []
    for line in head.split(b"\r\n"):
        text = line.decode("utf-8", "surrogateescape")
        if text[:1] in (" ", "\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + text.strip())
        elif ":" in text:
            n, _, v = text.partition(":")
            headers.append((n, v.strip()))
        else:
            headers.append(("", text))
    return Parsed(headers, body, head)


def addr_of(value):
    """The addr-spec in a header value such as 'Name <a@b>' or 'a@b (c)'."""
    return email.utils.parseaddr(value)[1]


# -- the log -------------------------------------------------------------

LOG_RX = re.compile(r"\b([0-9A-F]{10}): (.*)$")


@dataclass
class LogEntry:
    qid: str
    fields: dict
    line: str
    status_text: str = ""


def parse_log(text):
    """Postfix-style lines: 'QID: k=v, k=v, status=sent (reply)'."""
    out = []
    for line in text.splitlines():
        m = LOG_RX.search(line)
        if not m:
            continue
        rest = m.group(2)
        status_text = ""
        sm = re.search(r"status=(\w+) \((.*)\)\s*$", rest)
        if sm:
            status_text = sm.group(2)
            rest = rest[:sm.start()] + "status=" + sm.group(1)
        fields = {}
        for part in re.split(r",?\s+(?=[a-z_]+=)", rest):
            k, eq, v = part.partition("=")
            if eq:
                fields[k.strip()] = v.strip().rstrip(",")
        out.append(LogEntry(m.group(1), fields, line, status_text))
    return out


# -- running postino ------------------------------------------------------

@dataclass
class Result:
    args: list
    rc: int
    stdout: bytes
    stderr: bytes
    elapsed: float
    maxrss_kib: int = None
    log_text: str = ""

    @property
    def out(self):
        return self.stdout.decode(errors="replace")

    @property
    def err(self):
        return self.stderr.decode(errors="replace")

    def err_lines(self):
        return [l for l in self.err.splitlines() if l.strip()]

    def log(self):
        return parse_log(self.log_text)

    def log_to(self, rcpt):
        """The delivery log line(s) for one recipient."""
        return [e for e in self.log() if e.fields.get("to") == "<%s>" % rcpt]

    def log_from(self):
        return [e for e in self.log() if "from" in e.fields]

    def describe(self):
        return ("postino %s\nexit %d after %.2fs\n--- stdout\n%s\n--- stderr"
                "\n%s\n--- log\n%s" % (" ".join(self.args), self.rc,
                                       self.elapsed, self.out, self.err,
                                       self.log_text))

    def ok(self):
        """Delivered: exit 0 and not a byte on stdout or stderr."""
        assert self.rc == 0, self.describe()
        assert self.stdout == b"" and self.stderr == b"", self.describe()
        return self


class Postino:
    """One test's postino: its config, revaliases, queue dir and log."""

    def __init__(self, binary, tmpdir):
        self.binary = binary
        self.dir = str(tmpdir)
        self.queue_dir = os.path.join(self.dir, "queue")
        self.logfile = os.path.join(self.dir, "postino.log")
        self.revaliases = os.path.join(self.dir, "revaliases")
        os.makedirs(self.queue_dir, exist_ok=True)
        # Never let the machine's /etc/ssmtp/revaliases change a result.
        self.write_revaliases("")
        self.keys = {
            "HostName": HOSTNAME,
            "RewriteDomain": DOMAIN,
            "QueueDir": self.queue_dir,
            "LogFile": self.logfile,
            "RevaliasesFile": self.revaliases,
            "Timeout": "10",
        }
        self.config_path = None

    def write_revaliases(self, text):
        with open(self.revaliases, "w") as f:
            f.write(text)

    def config(self, _name="ssmtp.conf", **keys):
        """Write the config (base keys updated by keys; None drops one)."""
        merged = dict(self.keys)
        merged.update(keys)
        path = os.path.join(self.dir, _name)
        # A config holding AuthPass must not be world-readable (78).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            for k, v in merged.items():
                if v is not None:
                    f.write("%s=%s\n" % (k, v))
        self.config_path = path
        return path

    def raw_config(self, text, name="raw.conf"):
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
        self.config_path = path
        return path

    def env(self, extra=None):
        # A clean environment, as under cron or PHP-FPM: no NAME, no HOME.
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        env.update(extra or {})
        return env

    def run(self, args, input=b"", config=None, timeout=60, env=None,
            measure_rss=False, argv0=None):
        """Run postino -C <config> args with input on stdin."""
        if config is None:
            config = self.config_path or self.config()
        cmd = [self.binary, "-C", config] + list(args)
        if measure_rss:
            # GNU time reports the child's own ru_maxrss. Reading
            # RUSAGE_CHILDREN from this process would not do: at exec
            # Linux carries the forking process's high-water mark into
            # the child's figure, and that is pytest's, not postino's.
            rss_file = os.path.join(self.dir, "maxrss")
            cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd
        before = self._log_size()
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env(env),
                                cwd=self.dir)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError("postino %s did not exit within %ds\n"
                                 "stdout: %r\nstderr: %r" % (
                                     " ".join(args), timeout, out, err))
        elapsed = time.monotonic() - start
        res = Result(cmd, proc.returncode, out, err, elapsed)
        res.log_text = self._log_since(before)
        if measure_rss:
            with open(rss_file) as f:
                lines = f.read().split()
            res.maxrss_kib = int(lines[-1])
        return res

    def _log_size(self):
        try:
            return os.path.getsize(self.logfile)
        except OSError:
            return 0

    def _log_since(self, offset):
        try:
            with open(self.logfile, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def queue_entries(self):
        """Control files of committed entries (fallback-queue versions)."""
        out = []
        for area in ("queue", "failed"):
            d = os.path.join(self.queue_dir, area)
            if os.path.isdir(d):
                out += [os.path.join(d, n) for n in sorted(os.listdir(d))
                        if not n.startswith(".")]
        return out


# -- the one place that knows what a temporary failure looks like ---------

def expect_tempfail(res, postino, mentions=None, admin=False):
    """A temporary failure: nothing lost, the caller told once.

    mentions: regex that the stderr line must match, e.g. the config key
    an administrator has to set.
    admin: True when the cause needs an administrator (TLS verification,
    AUTH, STARTTLS policy): even the queueing version must then say so on
    stderr; False when it must stay silent; None when either is right.
    Returns the stderr line ("" if none).
    """
    assert res.stdout == b"", res.describe()
    lines = res.err_lines()
    if TEMPFAIL_MODE == "queue":
        assert res.rc == 0, res.describe()
        entries = [e for e in postino.queue_entries()
                   if os.path.basename(os.path.dirname(e)) == "queue"]
        assert len(entries) == 1, "want one queued entry, got %r\n%s" % (
            entries, res.describe())
        with open(entries[0]) as f:
            ctl = f.read()
        assert re.search(r"^rcpt pending ", ctl, re.M), ctl
        want = {True: [1], False: [0], None: [0, 1]}[admin]
        assert len(lines) in want, "want %s stderr line(s)\n%s" % (
            " or ".join(map(str, want)), res.describe())
    else:
        assert res.rc == 75, res.describe()
        assert len(lines) == 1, "want one clear stderr line\n" + \
            res.describe()
    if mentions:
        assert lines and re.search(mentions, lines[0]), res.describe()
    return lines[0] if lines else ""


def expect_partial_report(res, srv, sender, rejected, accepted):
    """Some recipients accepted, `rejected` refused for good: exit 0, the
    message reached the accepted ones, and the refusal is reported once:
    on stderr (exit75 contract) or to the sender in an RFC 3464 report
    sent through the hub (queue contract)."""
    assert res.rc == 0 and res.stdout == b"", res.describe()
    srv.wait_idle()
    mail = [m for m in srv.messages if m.rcpts != [sender] or
            sender in accepted]
    assert len(mail) == 1, res.describe()
    assert sorted(mail[0].rcpts) == sorted(accepted)
    if TEMPFAIL_MODE == "queue":
        assert res.stderr == b"", res.describe()
        dsn = [m for m in srv.messages if m is not mail[0]]
        assert len(dsn) == 1, "want one report to %s" % sender
        assert dsn[0].rcpts == [sender] and dsn[0].mail_from == ""
        head = parse(dsn[0].content)
        assert "multipart/report" in head.one("Content-Type")
        assert "report-type=delivery-status" in head.one("Content-Type")
        assert re.search(r"(?im)^Final-Recipient: rfc822; ?%s\r?$"
                         % re.escape(rejected), dsn[0].content.decode(
                             errors="replace")), dsn[0].content[:2000]
        assert re.search(r"(?im)^Action: failed\r?$", dsn[0].content.decode(
            errors="replace"))
    else:
        lines = res.err_lines()
        assert len(lines) == 1, res.describe()
        assert re.search(r"^\S+: %s\.\.\. 5\d\d " % re.escape(rejected),
                         lines[0]), lines


def wait_until(pred, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def unused_port():
    """A loopback port with nothing listening (connect gets refused)."""
    return free_port()
