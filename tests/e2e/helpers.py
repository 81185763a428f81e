"""Running postino and reading what it did: config files, the run, its
log lines, delivered messages, and the one place that says what a
temporary failure must look like.

The suite's one way to run the binary is here: launch() starts it
(under any argv[0], behind any wrapper such as setpriv or unshare) and
execute() runs it to the end into a Result, with the log lines the run
added (LogReader, the one log reader). Postino.start() and Postino.run()
are those two for one test's postino; the queue, privilege and caller
helpers go through them too."""

import email.utils
import errno
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOSTNAME = "postino-host.example.test"
DOMAIN = "example.test"

# Every expectation about a temporary failure (hub down, 4xx, TLS refused,
# AUTH refused, STARTTLS missing) lives in expect_tempfail() below, and the
# one about a partial rejection in expect_partial_report(). The contract
# is the queue's (man page, QUEUE): the message is committed and the exit
# is 0, with one stderr warning only when an administrator must act; a
# partial rejection goes back to the sender as an RFC 3464 report.


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

class LogReader:
    """A LogFile (or any log that only grows): mark() where it ends now,
    since(mark) what was added after, text() all of it. A missing file
    reads as empty."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def since(self, offset=0):
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def text(self):
        return self.since(0)


LOG_RX = re.compile(r"\b([0-9A-F]{10}): (.*)$")
# Postfix's syslog shape: "Mon dd hh:mm:ss host postino/service[pid]: ".
IDENT_RX = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ "
                      r"postino/([\w.-]+)\[(\d+)\]: ")
TLS_RX = re.compile(r"TLS connection established to \S+: (.*)$")


@dataclass
class LogEntry:
    qid: str
    fields: dict
    line: str
    status_text: str = ""


def parse_log(text):
    """Postfix-style lines: 'QID: k=v, k=v, status=sent (reply)'. The
    TLS facts are on a line of their own (as Postfix logs them), once per
    session: a delivery line gets them as fields["tls"] from the last TLS
    line of its process, and fields["service"] is the ident's part after
    postino/."""
    out = []
    tls = {}
    for line in text.splitlines():
        im = IDENT_RX.match(line)
        pid = im.group(2) if im else None
        tm = TLS_RX.search(line)
        if tm:
            tls[pid] = tm.group(1)
            continue
        m = LOG_RX.search(line)
        if not m:
            continue
        rest = m.group(2)
        status_text = ""
        sm = re.search(r"status=(\w+) \((.*)\)\s*$", rest)
        if sm:
            status_text = sm.group(2)
            rest = rest[:sm.start()] + "status=" + sm.group(1)
        else:   # qmgr's "from=<s>, size=N, nrcpt=N (queue active)"
            rest = re.sub(r" \(queue active\)$", "", rest)
        fields = {}
        for part in re.split(r",?\s+(?=[a-z_]+=)", rest):
            k, eq, v = part.partition("=")
            if eq:
                fields[k.strip()] = v.strip().rstrip(",")
        if im:
            fields.setdefault("service", im.group(1))
        if "to" in fields and "relay" in fields and pid in tls:
            fields.setdefault("tls", tls[pid])
        out.append(LogEntry(m.group(1), fields, line, status_text))
    return out


# -- running postino ------------------------------------------------------

def clean_env(extra=None):
    """A clean environment, as under cron or PHP-FPM: no NAME, no HOME
    (the sanitizer options pass through)."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(extra or {})
    return env


def launch(argv, env, cwd=None, executable=None, preexec_fn=None,
           bufsize=-1):
    """Start a run of the binary (argv[0] may be any name when executable
    is given, or a wrapper such as setpriv that execs it) with pipes on
    stdin, stdout and stderr."""
    return subprocess.Popen(argv, executable=executable,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=cwd,
                            preexec_fn=preexec_fn, bufsize=bufsize)


def finish(proc, input=b"", timeout=60, shown=None, log=None, mark=0,
           on_timeout="raise"):
    """Feed input, wait for the exit, return a Result (with the lines log
    gained since mark). After timeout seconds the run is killed: an
    AssertionError, or with on_timeout="result" a Result with rc -999."""
    shown = list(shown if shown is not None else proc.args)
    start = time.monotonic()
    try:
        out, err = proc.communicate(input, timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        if on_timeout != "result":
            raise AssertionError("%s did not exit within %ds\nstdout: %r\n"
                                 "stderr: %r" % (" ".join(map(str, shown)),
                                                 timeout, out, err))
        rc = -999
    res = Result(shown, rc, out, err, time.monotonic() - start)
    if log is not None:
        res.log_text = log.since(mark)
    return res


def execute(argv, input=b"", env=None, cwd=None, executable=None,
            timeout=60, log=None, shown=None, preexec_fn=None,
            on_timeout="raise"):
    """launch() and finish(): one whole run of the binary."""
    mark = log.mark() if log is not None else 0
    proc = launch(argv, env if env is not None else clean_env(), cwd,
                  executable, preexec_fn)
    return finish(proc, input, timeout, shown, log, mark, on_timeout)


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
        self.log = LogReader(self.logfile)

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
        return clean_env(extra)

    def exe(self, name="postino"):
        """The binary under a name of its own (sendmail, mailq, postino):
        a link in self.dir/bin, for callers that exec it by path."""
        d = os.path.join(self.dir, "bin")
        if not os.path.isdir(d):
            # Built aside and renamed: threads may get here at once.
            tmp = tempfile.mkdtemp(prefix=".bin-", dir=self.dir)
            for n in ("sendmail", "mailq", "postino"):
                os.symlink(os.path.abspath(self.binary),
                           os.path.join(tmp, n))
            try:
                os.rename(tmp, d)
            except OSError:
                shutil.rmtree(tmp)
        return os.path.join(d, name)

    def argv(self, args, config=None, argv0=None, prefix_config=True):
        """[argv0, -C config] + args; argv0 defaults to the binary."""
        if prefix_config and config is None:
            config = self.config_path or self.config()
        cmd = [argv0 or self.binary]
        if prefix_config:
            cmd += ["-C", config]
        return cmd + list(args)

    def start(self, args, config=None, env=None, argv0=None,
              prefix_config=True, cwd=None, bufsize=-1):
        """Start postino -C <config> args (argv[0] = argv0 if given) with
        pipes on stdin/stdout/stderr; a Popen."""
        return launch(self.argv(args, config, argv0, prefix_config),
                      self.env(env), cwd or self.dir,
                      executable=self._executable(argv0), bufsize=bufsize)

    def _executable(self, argv0):
        # A link of our own (exe()) is exec'd as itself; any other argv0
        # (/usr/sbin/sendmail...) is only a name and never exec'd.
        if argv0 and argv0.startswith(self.dir + os.sep):
            return argv0
        return self.binary

    def run(self, args, input=b"", config=None, timeout=60, env=None,
            measure_rss=False, argv0=None, prefix_config=True,
            on_timeout="raise"):
        """Run postino -C <config> args with input on stdin; a Result
        with the log lines the run added. argv0 sets argv[0] (the
        personality: sendmail, mailq, newaliases...); without
        prefix_config args alone (they name the config themselves)."""
        cmd = self.argv(args, config, argv0, prefix_config)
        executable = self._executable(argv0)
        if measure_rss:
            # GNU time reports the child's own ru_maxrss. Reading
            # RUSAGE_CHILDREN from this process would not do: at exec
            # Linux carries the forking process's high-water mark into
            # the child's figure, and that is pytest's, not postino's.
            rss_file = os.path.join(self.dir, "maxrss")
            if argv0 is not None:
                cmd[0] = self.exe(os.path.basename(argv0)) \
                    if os.path.basename(argv0) in ("sendmail", "mailq",
                                                   "postino") else cmd[0]
            cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd
            executable = None
        res = execute(cmd, input, self.env(env), self.dir, executable,
                      timeout, self.log, on_timeout=on_timeout)
        if measure_rss:
            with open(rss_file) as f:
                lines = f.read().split()
            res.maxrss_kib = int(lines[-1])
        return res

    def log_text(self):
        return self.log.text()

    def _log_size(self):
        return self.log.mark()

    def _log_since(self, offset):
        return self.log.since(offset)

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
    if mentions:
        assert lines and re.search(mentions, lines[0]), res.describe()
    return lines[0] if lines else ""


def expect_partial_report(res, srv, sender, rejected, accepted):
    """Some recipients accepted, `rejected` refused for good: exit 0, the
    message reached the accepted ones, and the refusal is reported once,
    to the sender in an RFC 3464 report sent through the hub."""
    assert res.rc == 0 and res.stdout == b"", res.describe()
    srv.wait_idle()
    mail = [m for m in srv.messages if m.rcpts != [sender] or
            sender in accepted]
    assert len(mail) == 1, res.describe()
    assert sorted(mail[0].rcpts) == sorted(accepted)
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


# What a loaded machine (two cores shared with other test runs, an ASan
# build) may add to a run that a deadline bounds. An upper bound on a
# deadline only has to tell "the deadline held" from "no deadline" (a run
# that never ends), so it can afford this much.
LOAD_SLACK = 5.0


def wait_until(pred, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def free_port():
    """A TCP port free on both 127.0.0.1 and ::1 (the Postfix hub binds
    both); on a machine without IPv6 on loopback, free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.bind(("::1", port))
            except OSError as e:
                if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    return port
                continue
        return port
    raise RuntimeError("no free port")


def unused_port():
    """A loopback port with nothing listening (connect gets refused)."""
    return free_port()
