"""Fault injection: every open, read, pread, write, fsync, rename, linkat,
unlink, mkdir, flock, connect, send and recv that postino makes on four
paths is made to fail in turn, and each time nothing may be lost,
doubled or left half-written.

The failures come from an LD_PRELOAD shim (tests/faultinject/shim.c,
compiled here with gcc). A first run of each path counts the calls and
records what each one touches; then, for every function and every N up
to its count, one run fails the Nth call (errno per function below) and
a clean `sendmail -q` against a live hub follows. recv() hands postino
one reply line at a time, so that recv call N is the same reply in
every run. Checked each time:

  exit 0      the message reached the hub exactly once, or is a complete
              queue entry that the clean run then delivers exactly once;
  exit != 0   one "sendmail: why" line on stderr, and the message never
              reaches the hub (the caller keeps it and will send it again;
              man/postino.8 EXIT STATUS, 73: "nothing was committed");
  always      no crash, no exit 75 for a message that is not queued, the
              hub never has a message twice unless the log says "possible
              duplicate", and after the clean run and its sweep: no .tmp.*
              file, no data file without a control file, no control file
              whose data file is missing or shorter than its size line.

The paths:
  live     submission, hub up (the fault server)
  hubdown  submission, nothing listens at MailHub: the commit path
  runq     `sendmail -q` with three queued entries: A to a recipient the
           hub takes; B to that one and one it refuses for good (so the
           run also writes a bounce); C from the null sender to the
           refused one (moved to failed/, no bounce)
  odq      submission with -odq: commit only
  ...-full the commit paths again with write and fsync failing from the
           Nth call on (a disk that stays full)
  ...-noproc  the commit paths again without /proc (linkat of
           /proc/self/fd fails, FI_NO_PROC_LINK): the copy fallback

Every injected failure and its outcome go into a table: printed at the
end of the session (pytest -s shows it) and written to
build/faultinject/summary.txt (or $POSTINO_FI_DIR). A case that shows a
known postino bug is listed in KNOWN with the reason: the path's test
passes over it, and a strict xfail test per entry reruns just those
cases, so that it fails as soon as the bug is fixed.
"""

import collections
import os
import re
import shutil
import subprocess

import pytest

import helpers
import queuehelpers as qh
from helpers import message, token, unused_port

SHIM_SRC = os.path.join(helpers.REPO, "tests", "faultinject", "shim.c")
RCPT = "rcpt@example.org"
GOOD = "good@example.org"
BAD = "bad@example.org"

# The errno each function fails with: what the real world gives it.
ERRNO = {
    "open": "EACCES",
    "read": "EIO",
    "pread": "EIO",
    "write": "ENOSPC",
    "fsync": "EIO",
    "rename": "EIO",
    "linkat": "EPERM",      # fs.protected_hardlinks, a setgid postino
    "unlink": "EIO",
    "mkdir": "ENOSPC",
    "flock": "ENOLCK",
    "connect": "ECONNREFUSED",
    "send": "ECONNRESET",
    "recv": "ECONNRESET",
}
FUNCS = tuple(ERRNO)

# Exit codes man/postino.8 documents, plus 70 (EX_SOFTWARE, a bug path).
DOCUMENTED_EXITS = {0, 64, 65, 67, 69, 70, 71, 73, 74, 78}

# Known postino bugs, each (paths, functions, regex on the shortened
# target of the failed call, regex on the violation, reason). A case is
# "known" when every one of its violations matches an entry.
# Known bugs, each (paths, functions, target regex, symptom regex, why):
# a strict xfail per entry. Both found by this suite are fixed (bounces
# that cannot be written keep their entry; a control file that cannot be
# removed records the delivery), so the list is empty.
KNOWN = []

STATE = collections.defaultdict(list)   # path -> [Row], for the summary


# -- the shim ---------------------------------------------------------------

@pytest.fixture(scope="session")
def shim(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the fault-injection shim")
    out = str(tmp_path_factory.mktemp("fi-shim") / "shim.so")
    proc = subprocess.run(
        [gcc, "-std=c17", "-O1", "-Wall", "-Wextra", "-Werror",
         "-Wformat=2", "-Wshadow", "-Wstrict-prototypes",
         "-Wmissing-prototypes", "-shared", "-fPIC", "-o", out, SHIM_SRC,
         "-ldl"],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def summary():
    yield STATE
    if not STATE:
        return
    text = render_summary(STATE)
    d = os.environ.get("POSTINO_FI_DIR",
                       os.path.join(helpers.REPO, "build", "faultinject"))
    try:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "summary.txt"), "w") as f:
            f.write(text)
    except OSError:
        pass
    print("\n" + text)


def shim_env(shim, asan, files, func=None, nth=None, sticky=False,
             extra=None):
    # One reply line per recv(): recv call N is the same line every run.
    env = {"LD_PRELOAD": shim, "FI_REPORT_FILE": files["report"],
           "FI_RECV_LINE": "1"}
    env.update(extra or {})
    if func is None:
        env["FI_COUNT_FILE"] = files["count"]
        env["FI_TRACE_FILE"] = files["trace"]
    else:
        env.update(FI_FUNC=func, FI_NTH=str(nth), FI_ERRNO=ERRNO[func],
                   FI_STICKY="1" if sticky else "0")
    if asan:
        # The shim comes before the ASan runtime in the link order.
        opts = os.environ.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
            "verify_asan_link_order=0"
    return env


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_gone(pid, timeout=20.0):
    """Wait for a detached child (reparented: it may stay a zombie)."""
    def gone():
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
    assert helpers.wait_until(gone, timeout), \
        "detached postino %d still runs after %.0fs" % (pid, timeout)


# -- one run of postino -----------------------------------------------------

def run(p, args, input, config, env=None, timeout=60):
    """One run as sendmail; a run that hangs is killed and has rc -999."""
    return p.run(args, input, config=config, env=env, timeout=timeout,
                 argv0=qh.exe(p), on_timeout="result")


def shorten(p, target):
    """A call's target without this case's directory and ids."""
    t = target.replace(p.queue_dir, "Q").replace(p.dir, "D")
    t = re.sub(r"/#\d+ \(deleted\)$", "/(spool)", t)
    t = re.sub(r"^(socket|pipe|anon_inode):\[\d+\]$", r"\1", t)
    t = re.sub(r"[0-9A-F]{10}", "QID", t)
    # hub-down.HOST.PORT, and its temporary name with .PID after it
    return re.sub(r"hub-down\.\d+\.\d+\.\d+\.\d+\.\d+(\.\d+)?$",
                  lambda m: "hub-down.HUB" + (".PID" if m.group(1) else ""),
                  t)


# -- the queue directory ----------------------------------------------------

BOUNCE_SUBJECT = b"Subject: Undelivered Mail Returned to Sender"
BOUNCE_OF_RX = re.compile(rb"X-Postino-Queue-ID: ([0-9A-F]{10})")


class Entry:
    """A complete queue entry: area, id, the token of its message (of the
    message it reports, for a bounce), and whether it is a bounce."""

    def __init__(self, area, qid, token, bounce):
        self.area = area
        self.qid = qid
        self.token = token
        self.bounce = bounce


def queue_state(p, qids):
    """([Entry] for the complete entries, [what is wrong]); qids maps a
    queue id to its message's token, to tell which one a bounce is for."""
    entries, problems = [], []
    for area in ("queue", "failed"):
        for qid in qh.ids(p, area):
            try:
                ctl = qh.control(p, qid, area)
            except (AssertionError, FileNotFoundError) as e:
                problems.append("%s/%s unreadable: %s" % (area, qid, e))
                continue
            data = os.path.join(p.queue_dir, "data", qid)
            try:
                with open(data, "rb") as f:
                    content = f.read()
            except FileNotFoundError:
                problems.append("%s/%s without data/%s" % (area, qid, qid))
                continue
            if str(len(content)) != ctl.get("size"):
                problems.append("%s/%s: data %d bytes, size line %s" % (
                    area, qid, len(content), ctl.get("size")))
                continue
            if BOUNCE_SUBJECT in content:
                entries.append(Entry(area, qid, bounce_for(content, qids),
                                     True))
                continue
            found = qh.TOKEN_RX.search(content)
            entries.append(Entry(area, qid, found and found.group(0).decode(),
                                 False))
    for qid in set(qh.ids(p, "queue")) & set(qh.ids(p, "failed")):
        problems.append("%s both in queue/ and in failed/" % qid)
    problems += ["leftover %s" % f for f in qh.leftovers(p)]
    return entries, problems


def bounce_for(content, qids):
    """The token of the message a bounce reports (the original headers
    may be missing from it: look for the queue id)."""
    found = BOUNCE_OF_RX.search(content)
    return qids.get(found.group(1).decode()) if found else None


def hub_tokens(msgs, qids):
    """(Counter of tokens in Subjects, Counter of tokens of bounces)."""
    sent, bounce = collections.Counter(), collections.Counter()
    for m in msgs:
        subj = " ".join(helpers.parse(m.content).get("Subject"))
        found = qh.TOKEN_RX.search(subj.encode())
        if found:
            sent[found.group(0).decode()] += 1
        elif m.mail_from == "" and BOUNCE_SUBJECT in m.content:
            bounce[bounce_for(m.content, qids)] += 1
    return sent, bounce


# -- the paths --------------------------------------------------------------

class Path:
    """One path under test; subclasses say how a case is set up."""

    name = None
    sticky = False
    funcs = FUNCS
    env = {}

    def __init__(self, binary, root, srv):
        self.binary = binary
        self.root = root
        self.srv = srv
        self.n = 0

    def new_case(self, label):
        self.n += 1
        p = helpers.Postino(self.binary, os.path.join(
            self.root, "%03d-%s" % (self.n, label)))
        p.keys["Timeout"] = "5"
        p.keys["RetryInterval"] = "0"
        self.live_conf = p.config(_name="live.conf",
                                  MailHub=self.srv.mailhub())
        return p

    def prepare(self, p):
        """-> (args, input, config, {token: fate}), fate one of
        "deliver", "deliver+bounce" (a bounce for BAD), "failed"."""
        raise NotImplementedError

    def submission(self):
        return True

    def qids(self):
        """{queue id: token} of entries queued before the case runs."""
        return {}


class Live(Path):
    name = "live"

    def prepare(self, p):
        tok = token()
        return [RCPT], message(tok), self.live_conf, {tok: "deliver"}


class HubDown(Path):
    name = "hubdown"

    def prepare(self, p):
        tok = token()
        conf = p.config(_name="down.conf",
                        MailHub="127.0.0.1:%d" % unused_port())
        return [RCPT], message(tok), conf, {tok: "deliver"}


class Odq(Path):
    name = "odq"

    def prepare(self, p):
        tok = token()
        return ["-odq", RCPT], message(tok), self.live_conf, \
            {tok: "deliver"}


class HubDownFull(HubDown):
    name = "hubdown-full"
    sticky = True
    funcs = ("write", "fsync")


class OdqFull(Odq):
    name = "odq-full"
    sticky = True
    funcs = ("write", "fsync")


class RunQ(Path):
    """Three entries queued while the hub was down: A to GOOD; B to GOOD
    and BAD (refused for good: a bounce to the sender); C from the null
    sender to BAD (kept in the failed area, no bounce)."""

    name = "runq"
    ENTRIES = (("A", [], [GOOD], "deliver"),
               ("B", [], [GOOD, BAD], "deliver+bounce"),
               ("C", ["-f", "<>"], [BAD], "failed"))

    def __init__(self, binary, root, srv):
        super().__init__(binary, root, srv)
        t = helpers.Postino(binary, os.path.join(root, "template"))
        conf = t.config(MailHub="127.0.0.1:%d" % unused_port(),
                        RetryInterval="0", HubBackoff="0")
        self.fates = {}
        for _, opts, rcpts, fate in self.ENTRIES:
            tok = token()
            self.fates[tok] = fate
            res = run(t, opts + rcpts, message(tok), conf)
            assert res.rc == 0 and res.stderr == b"", res.describe()
        assert len(qh.ids(t)) == len(self.ENTRIES), qh.files(t)
        self.by_qid = {q: tok for tok, q in qh.queued_tokens(t).items()}
        assert sorted(self.by_qid.values()) == sorted(self.fates)
        for n in os.listdir(t.queue_dir):
            if n.startswith("hub-down."):
                os.unlink(os.path.join(t.queue_dir, n))
        self.template = t.queue_dir

    def prepare(self, p):
        shutil.copytree(self.template, p.queue_dir, dirs_exist_ok=True)
        return ["-q"], b"", self.live_conf, dict(self.fates)

    def submission(self):
        return False

    def qids(self):
        return dict(self.by_qid)


# -- one case ---------------------------------------------------------------

class Row:
    def __init__(self, path, func, nth, errno):
        self.path, self.func, self.nth, self.errno = path, func, nth, errno
        self.target = "-"
        self.rc = None
        self.err = ""
        self.after = ""
        self.final = ""
        self.violations = []
        self.known = None
        self.detail = ""

    def key(self):
        return "%s %s#%d %s" % (self.path, self.func, self.nth, self.errno)


def describe_state(entries, sent, bounce, fates):
    """Where each message is, tersely: "sent", "sent2" (twice), "q" and
    "f" (an entry in queue/ or failed/), "b:" for its bounce; "-" for
    nowhere. Several messages: "A=... B=..." in the order queued."""
    parts = []
    for i, (tok, fate) in enumerate(fates.items()):
        n = sent.get(tok, 0)
        bits = ["sent" if n == 1 else "sent%d" % n] if n else []
        bits += [e.area[0] for e in entries
                 if e.token == tok and not e.bounce]
        if "bounce" in fate:
            nb = bounce.get(tok, 0)
            bits += ["b:sent" if nb == 1 else "b:sent%d" % nb] if nb else []
            bits += ["b:" + e.area[0] for e in entries
                     if e.token == tok and e.bounce]
        text = "+".join(bits) if bits else "-"
        parts.append(text if len(fates) == 1 else
                     "%s=%s" % ("ABCDEFGH"[i], text))
    return " ".join(parts)


def check_token(tok, fate, entries, sent, bounce, dup_logged):
    """What is wrong with one message after the clean run."""
    v = []
    n = sent.get(tok, 0)
    mine = [e for e in entries if e.token == tok and not e.bounce]
    if fate == "failed":
        if n:
            v.append("%s reached the hub, its recipient refuses" % tok)
        if [e.area for e in mine] != ["failed"]:
            v.append("%s: want one entry in failed/, have %s" % (
                tok, [e.area for e in mine] or "none"))
        return v
    if n == 0:
        v.append("message lost: %s never reached the hub" % tok)
    elif n > 1 and not dup_logged:
        v.append("hub got %s %d times, no 'possible duplicate' in the "
                 "log" % (tok, n))
    if mine:
        v.append("%s still in %s after the clean run" % (
            tok, [e.area for e in mine]))
    if "bounce" in fate:
        nb = bounce.get(tok, 0)
        if nb == 0:
            v.append("the bounce for BAD in %s was lost" % tok)
        elif nb > 1 and not dup_logged:
            v.append("the bounce for %s was sent %d times, no 'possible "
                     "duplicate' in the log" % (tok, nb))
        if any(e.bounce and e.token == tok for e in entries):
            v.append("the bounce for %s is still queued after two clean "
                     "runs" % tok)
    return v


def run_case(path, shim, asan, func, nth, count_target=None):
    """Fail call `nth` of `func` on `path`; a Row with what happened."""
    errno = ERRNO[func]
    row = Row(path.name, func, nth, errno + ("+" if path.sticky else ""))
    p = path.new_case("%s%d" % (func, nth))
    args, input, conf, fates = path.prepare(p)
    files = {"report": os.path.join(p.dir, "fi.report")}
    env = shim_env(shim, asan, files, func, nth, path.sticky, path.env)
    srv = path.srv
    mark = len(srv.messages)

    res = run(p, args, input, conf, env)
    report = read_lines(files["report"])
    for line in report:
        if line.startswith("fork "):
            wait_gone(int(line.split()[1]))
    srv.wait_idle()
    inject = [l.split(" ", 4) for l in report if l.startswith("inject ")]
    if inject:
        row.target = shorten(p, inject[0][4])
    elif count_target is not None:
        row.target = "(not reached: %s)" % count_target
    row.rc = res.rc
    lines = res.err_lines()
    row.err = shorten(p, lines[0]) if lines else ""
    qids = path.qids()
    entries, _ = queue_state(p, qids)
    sent, bounce = hub_tokens(srv.messages[mark:], qids)
    row.after = describe_state(entries, sent, bounce, fates)
    committed = {e.token for e in entries if not e.bounce}
    delivered_now = set(sent)

    # The clean run, with the live hub: the sweep, then delivery.
    qh.age_temporary_files(p)
    clean = run(p, ["-q"], b"", path.live_conf)
    srv.wait_idle()
    entries, problems = queue_state(p, qids)
    if any(e.bounce and e.area == "queue" for e in entries):
        # A bounce written by the clean run waits for the next one.
        again = run(p, ["-q"], b"", path.live_conf)
        srv.wait_idle()
        if again.rc != 0 or again.stderr:
            clean = again
        entries, problems = queue_state(p, qids)
    sent, bounce = hub_tokens(srv.messages[mark:], qids)
    row.final = describe_state(entries, sent, bounce, fates)
    log = qh.log_since(p)
    v = row.violations

    if res.rc == -999:
        v.append("no exit within 60 s")
    elif res.rc < 0:
        v.append("killed by signal %d" % -res.rc)
    elif res.rc not in DOCUMENTED_EXITS and res.rc != 75:
        v.append("undocumented exit %d" % res.rc)
    if clean.rc != 0 or clean.stderr:
        v.append("the clean -q run failed: exit %d %r" % (
            clean.rc, clean.err[:200]))
    if res.rc == 0 and (res.stdout or res.stderr):
        v.append("exit 0, yet output: %r" % (res.stdout + res.stderr)[:200])
    if res.rc not in (0, -999) and (
            len(lines) != 1 or not re.match(r"^sendmail: \S", lines[0])):
        v.append("exit %d without one 'sendmail: why' stderr line: %r"
                 % (res.rc, lines))
    if path.submission() and res.rc not in (0, -999):
        # The caller keeps the message and will hand it over again.
        for tok in fates:
            if tok in committed or tok in delivered_now:
                v.append("exit %d, yet the message %s" % (res.rc, "was "
                         "committed" if tok in committed else
                         "reached the hub"))
            elif sent.get(tok) or any(e.token == tok for e in entries):
                v.append("exit %d, yet the clean run found the message"
                         % res.rc)
        if res.rc == 75:
            v.append("exit 75 (PHP reads it as queued), nothing queued")
    else:
        for tok, fate in fates.items():
            if path.submission() and tok not in committed | delivered_now:
                v.append("exit 0 but %s neither delivered nor committed"
                         % tok)
            v += check_token(tok, fate, entries, sent, bounce,
                             "possible duplicate" in log)
    v += problems
    if v:
        row.detail = "%s\n--- clean -q\n%s\n--- queue\n%s\n--- log\n%s" % (
            res.describe(), clean.describe(), qh.files(p), log)
        row.known = known_reason(path.name, func, row.target, v)
    return row


def known_matches(k, path_name, func, target, violation):
    paths, funcs, target_rx, violation_rx, _ = k
    return (path_name in paths and func in funcs and
            re.search(target_rx, target) and
            re.search(violation_rx, violation))


def known_reason(path_name, func, target, violations):
    """The KNOWN entries that explain every violation, or None."""
    names = []
    for violation in violations:
        found = [i for i, k in enumerate(KNOWN)
                 if known_matches(k, path_name, func, target, violation)]
        if not found:
            return None
        names += ["KNOWN[%d]" % i for i in found if
                  "KNOWN[%d]" % i not in names]
    return ", ".join(names)


def count_calls(path, shim, asan):
    """The counting run: {func: [shortened target of call 1, 2...]}."""
    p = path.new_case("count")
    args, input, conf, _ = path.prepare(p)
    files = {k: os.path.join(p.dir, "fi." + k)
             for k in ("report", "count", "trace")}
    res = run(p, args, input, conf, shim_env(shim, asan, files,
                                             extra=path.env))
    for line in read_lines(files["report"]):
        if line.startswith("fork "):
            wait_gone(int(line.split()[1]))
    path.srv.wait_idle()
    counts = dict((l.split()[0], int(l.split()[1]))
                  for l in read_lines(files["count"]))
    assert counts, "the shim counted nothing (not preloaded?)\n" + \
        res.describe()
    assert res.rc == 0, res.describe()
    calls = collections.defaultdict(list)
    for line in read_lines(files["trace"]):
        _, func, n, target = line.split(" ", 3)
        calls[func].append(shorten(p, target))
    for func, n in counts.items():
        assert len(calls[func]) == n, (func, n, calls[func])
    # The clean run empties the queue: the next cases start from a hub
    # that has seen only what they send.
    run(p, ["-q"], b"", path.live_conf)
    path.srv.wait_idle()
    return calls


class HubDownNoProc(HubDown):
    """The commit without /proc: linkat of /proc/self/fd fails, so the
    queue copies the spool file (locked before it has its name)."""
    name = "hubdown-noproc"
    env = {"FI_NO_PROC_LINK": "1"}


class OdqNoProc(Odq):
    name = "odq-noproc"
    env = {"FI_NO_PROC_LINK": "1"}


class RunQNoProc(RunQ):
    """The run's bounce is committed through the copy fallback too."""
    name = "runq-noproc"
    env = {"FI_NO_PROC_LINK": "1"}


PATHS = {c.name: c for c in (Live, HubDown, RunQ, Odq, HubDownFull,
                             OdqFull, HubDownNoProc, OdqNoProc, RunQNoProc)}


def make_path(name, postino_binary, tmp_path, fault):
    srv = fault(rcpt_replies={BAD: "550 5.1.1 <%s>: user unknown" % BAD})
    os.makedirs(str(tmp_path), exist_ok=True)
    return PATHS[name](postino_binary, str(tmp_path), srv)


# -- the tests --------------------------------------------------------------

@pytest.mark.parametrize("name", list(PATHS))
def test_every_call_fails_in_turn(name, postino_binary, asan, shim, summary,
                                  tmp_path, fault):
    path = make_path(name, postino_binary, tmp_path, fault)
    calls = count_calls(path, shim, asan)
    rows = []
    for func in path.funcs:
        for n, target in enumerate(calls.get(func, []), 1):
            rows.append(run_case(path, shim, asan, func, n, target))
    summary[name] = rows
    assert rows, "no call to fail on path %s" % name
    # How often recv() is called depends on how the replies arrive
    # (a read until EAGAIN after each): the count run's last few recv
    # calls may not happen again. Every other call must.
    missed = [r for r in rows if r.target.startswith("(not reached")]
    assert all(r.func == "recv" for r in missed) and \
        len(missed) <= len([r for r in rows if r.func == "recv"]) / 2, \
        "injections that did not happen:\n" + render_table(name, missed)
    bad = [r for r in rows if r.violations and not r.known]
    assert not bad, "%d of %d injected failures broke a rule:\n%s" % (
        len(bad), len(rows), "\n\n".join(
            "%s at %s: %s\n%s" % (r.key(), r.target, "; ".join(
                r.violations), r.detail) for r in bad[:5]))


def known_params():
    out = []
    for i, (paths, funcs, rx, _, reason) in enumerate(KNOWN):
        out.append(pytest.param(i, id="%d-%s-%s" % (
            i, "+".join(funcs), re.sub(r"\W+", "_", rx).strip("_")),
            marks=pytest.mark.xfail(strict=True, reason=reason)))
    return out or [pytest.param(None, marks=pytest.mark.skip(
        reason="no known fault-injection bug"))]


@pytest.mark.parametrize("known", known_params())
def test_known_bug(known, postino_binary, asan, shim, tmp_path, fault):
    """Only the cases of one KNOWN entry: xfail until it is fixed."""
    k = KNOWN[known]
    paths, funcs, target_rx = k[:3]
    failures = []
    for name in paths:
        path = make_path(name, postino_binary,
                         tmp_path / re.sub(r"\W", "_", name), fault)
        calls = count_calls(path, shim, asan)
        ns = [(func, n) for func in funcs
              for n, t in enumerate(calls.get(func, []), 1)
              if re.search(target_rx, t)]
        assert ns, "no %s call on %s matches %r any more" % (
            "/".join(funcs), name, target_rx)
        for func, n in ns:
            row = run_case(path, shim, asan, func, n)
            failures += ["%s at %s: %s" % (row.key(), row.target, v)
                         for v in row.violations if
                         known_matches(k, name, func, row.target, v)]
    assert not failures, "\n".join(failures)


# -- the table --------------------------------------------------------------

LEGEND = """\
Columns: the call that failed (N: its rank among the process's calls of
that function; errno, "+" when every later call fails too), what it
touched (D: the case's directory, Q: its QueueDir, QID: a queue id),
the exit status, where the message was after the run and after a clean
`sendmail -q` with a live hub ("sent", "sent2": reached the hub twice,
"q"/"f": a complete entry in queue/ or failed/, "b:": the bounce, "-":
nowhere; runq: A, B and C are its three queued messages)."""


def render_table(name, rows):
    fmt = "%-7s %3s %-13s %-30s %4s  %-22s %-22s %s"
    out = ["== %s: %d injected failures" % (name, len(rows)),
           fmt % ("call", "N", "errno", "target", "exit", "after the run",
                  "after a clean -q", "verdict")]
    for r in rows:
        verdict = "ok"
        if r.violations:
            verdict = ("known bug (%s): " % r.known if r.known else
                       "FAIL: ") + "; ".join(r.violations)
        out.append(fmt % (r.func, r.nth, r.errno, r.target[:30], r.rc,
                          r.after[:22], r.final[:22], verdict))
        if r.rc not in (0, None) and r.err:
            out.append("%12s stderr: %s" % ("", r.err[:110]))
    return "\n".join(out)


def outcome(r):
    if r.target.startswith("(not reached"):
        return "not reached"
    if r.violations:
        return "known bug" if r.known else "FAIL"
    if r.rc != 0:
        return "exit %s" % r.rc
    if r.path == "runq":
        return "exit 0"
    kinds = {"sent": "delivered", "q": "queued", "sent+q": "delivered and "
             "queued (possible duplicate)"}
    return "exit 0, " + kinds.get(r.after, r.after)


def render_summary(state):
    out = ["Fault injection summary (tests/e2e/test_faultinject.py)", ""]
    total = collections.Counter()
    n = 0
    for name, rows in state.items():
        outcomes = collections.Counter(outcome(r) for r in rows)
        total.update(outcomes)
        n += len(rows)
        out.append("%-13s %4d injected: %s" % (name, len(rows), "; ".join(
            "%s %d" % kv for kv in sorted(outcomes.items()))))
    out.append("%-13s %4d injected: %s" % ("total", n, "; ".join(
        "%s %d" % kv for kv in sorted(total.items()))))
    out += ["", LEGEND, ""]
    for name, rows in state.items():
        out.append(render_table(name, rows))
        out.append("")
    return "\n".join(out)
