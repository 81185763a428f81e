"""A set-group-ID installation of postino for the privilege and rate-limit
tests, and the unprivileged users who run it.

Install puts a setgid copy of $POSTINO_BIN (mode 2755, group GROUP) in a
throwaway directory with what a packaged install has: the system config
and revaliases at 0640 root:GROUP, the queue directory and its data/,
queue/ and failed/ at 2770 root:GROUP, a log file at 0660 root:GROUP.

The binary reads its system config from the compiled-in path
/etc/ssmtp/ssmtp.conf, and only that path exercises the group privilege
(-C from an unprivileged caller gives the group up before the file is
opened). So that the machine's /etc is never touched, every run happens
in a private mount namespace whose /etc is a read-only overlay: the real
/etc with one extra entry, ssmtp, a symbolic link to the install's own
config directory.

Users are made with useradd and the group with groupadd -f (both
removed again at the end when this file made them). Runs as a user go
through setpriv --reuid --regid --clear-groups, so the user holds no
supplementary group: the only way to the config and the queue is the
binary's set-group-ID bit.
"""

import base64
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from helpers import (DOMAIN, HOSTNAME, LogReader, clean_env, finish, is_asan,
                     launch)

GROUP = "postino-test"
USERS = {
    "postino-t1": "Priv Tester One",
    "postino-t2": "Priv Tester Two",
}
SYSTEM_CONF = "/etc/ssmtp/ssmtp.conf"   # as postino sees it, compiled in
UNSHARE = "/usr/bin/unshare"
SETPRIV = "/usr/bin/setpriv"
MOUNT_AND_EXEC = ('/bin/mount -t overlay overlay -o ro,lowerdir="$1":/etc '
                  '/etc && shift && exec "$@"')


def require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a group, users and a set-group-ID "
                    "copy of postino, and runs it as another user")
    for tool in (UNSHARE, SETPRIV, "/usr/sbin/useradd", "/usr/sbin/groupadd"):
        if not os.access(tool, os.X_OK):
            pytest.skip("needs %s" % tool)


def _retry(cmd, busy_ok=False):
    """useradd and friends fail while another process holds the passwd
    lock: try again for a while. With busy_ok, a user still running a
    process (userdel: "currently used by process") is left in place:
    it is a test account, and the next run reuses it."""
    for _ in range(50):
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if p.returncode == 0:
            return True
        if busy_ok and b"currently used" in p.stdout:
            return False
        if b"lock" not in p.stdout:
            break
        time.sleep(0.1)
    raise AssertionError("%s: %s" % (" ".join(cmd), p.stdout.decode()))


# (st_dev, st_ino) of every binary an Install put in place: what
# Accounts.cleanup may kill when it still runs as a test user (a detached
# queue runner, say). Other processes of the user are not ours to kill.
_OUR_BINARIES = set()


def _file_id(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _processes_of(uid):
    """[(pid, ours)] of the processes with uid as any of their uids;
    ours: it runs one of our installed binaries. Empty without /proc."""
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                uids = next((l.split()[1:5] for l in f
                             if l.startswith("Uid:")), [])
            if str(uid) not in uids:
                continue
            try:
                ours = _file_id("/proc/%s/exe" % name) in _OUR_BINARIES
            except OSError:
                ours = False
            out.append((int(name), ours))
        except OSError:
            continue
    return out


def _end_processes_of(uid, timeout=10.0):
    """Kill what of ours still runs as uid, wait a while for the rest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = _processes_of(uid)
        if not procs:
            return
        for pid, ours in procs:
            if ours:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.05)


class Accounts:
    """The test group and users; made here, removed here if made here.
    A test file may name its own (users: {name: gecos}), so that files
    running at the same time do not remove each other's."""

    def __init__(self, users=None, group=GROUP):
        users = USERS if users is None else users
        self.group = group
        self.made_group = False
        self.made_users = []
        try:
            grp.getgrnam(group)
        except KeyError:
            _retry(["/usr/sbin/groupadd", "-f", group])
            self.made_group = True
        self.gid = grp.getgrnam(group).gr_gid
        for name, gecos in users.items():
            try:
                pwd.getpwnam(name)
            except KeyError:
                _retry(["/usr/sbin/useradd", "-r", "-U", "-M", "-d",
                        "/nonexistent", "-s", "/usr/sbin/nologin", "-c",
                        gecos + ",,,", name])
                self.made_users.append(name)
        self.users = {n: pwd.getpwnam(n) for n in users}

    def cleanup(self):
        kept = []
        for name in self.made_users:
            _end_processes_of(self.users[name].pw_uid)
            if not _retry(["/usr/sbin/userdel", name], busy_ok=True):
                kept.append(name)
        if self.made_group and not kept:
            _retry(["/usr/sbin/groupdel", self.group])


def accounts_fixture(users=None, group=GROUP):
    require_root()
    acc = Accounts(users, group)
    try:
        yield acc
    finally:
        acc.cleanup()


def _chown(path, uid, gid, mode):
    os.chown(path, uid, gid)
    os.chmod(path, mode)


class Install:
    """One setgid installation (see the module docstring)."""

    def __init__(self, binary, accounts):
        self.acc = accounts
        self.asan = is_asan(binary)
        self.gid = accounts.gid
        self.base = tempfile.mkdtemp(prefix="postino-priv-")
        os.chmod(self.base, 0o755)
        b = self.base
        self.bin = os.path.join(b, "sendmail")
        shutil.copyfile(binary, self.bin)
        _chown(self.bin, 0, self.gid, 0o2755)
        # The same binary without the set-group-ID bit.
        self.plain = os.path.join(b, "postino-plain")
        shutil.copyfile(binary, self.plain)
        os.chmod(self.plain, 0o755)
        _OUR_BINARIES.update((_file_id(self.bin), _file_id(self.plain)))
        # The overlay layer: one entry, ssmtp -> etc-ssmtp.
        self.layer = os.path.join(b, "layer")
        self.etc = os.path.join(b, "etc-ssmtp")
        os.mkdir(self.layer, 0o755)
        os.mkdir(self.etc, 0o755)
        os.symlink(self.etc, os.path.join(self.layer, "ssmtp"))
        self.conf = os.path.join(self.etc, "ssmtp.conf")
        self.revaliases = os.path.join(self.etc, "revaliases")
        with open(self.revaliases, "w"):
            pass
        _chown(self.revaliases, 0, self.gid, 0o640)
        self.queue_dir = os.path.join(b, "queue")
        os.mkdir(self.queue_dir)
        _chown(self.queue_dir, 0, self.gid, 0o2770)
        # As make install makes them: postino creates them only as root
        # or as the owner of the queue directory.
        for area in ("data", "queue", "failed"):
            os.mkdir(os.path.join(self.queue_dir, area))
            _chown(os.path.join(self.queue_dir, area), 0, self.gid, 0o2770)
        self.logfile = os.path.join(b, "postino.log")
        with open(self.logfile, "w"):
            pass
        _chown(self.logfile, 0, self.gid, 0o660)
        self.keys = {
            "HostName": HOSTNAME,
            "RewriteDomain": DOMAIN,
            "QueueDir": self.queue_dir,
            "LogFile": self.logfile,
            "RevaliasesFile": self.revaliases,
            "Timeout": "10",
        }

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)

    # -- files ----------------------------------------------------------

    def write_config(self, path=None, mode=0o640, owner=None, **keys):
        """The system config (or path) from the base keys updated by keys
        (None drops a key); 0640 root:GROUP unless told otherwise."""
        merged = dict(self.keys)
        merged.update(keys)
        path = path or self.conf
        with open(path, "w") as f:
            for k, v in merged.items():
                if v is not None:
                    f.write("%s=%s\n" % (k, v))
        uid, gid = owner if owner is not None else (0, self.gid)
        _chown(path, uid, gid, mode)
        return path

    def home(self, user):
        """A directory of the user's own (0700), with a queue dir in it."""
        pw = self.acc.users[user]
        d = os.path.join(self.base, "home-" + user)
        if not os.path.isdir(d):
            os.mkdir(d)
            _chown(d, pw.pw_uid, pw.pw_gid, 0o700)
            q = os.path.join(d, "queue")
            os.mkdir(q)
            _chown(q, pw.pw_uid, pw.pw_gid, 0o700)
            rev = os.path.join(d, "revaliases")
            with open(rev, "w"):
                pass
            _chown(rev, pw.pw_uid, pw.pw_gid, 0o600)
            # postino appends to a LogFile; only root's runs create one.
            log = os.path.join(d, "postino.log")
            with open(log, "w"):
                pass
            _chown(log, pw.pw_uid, pw.pw_gid, 0o600)
        return d

    def user_config(self, user, own_queue=True, **keys):
        """A config the user owns (0600) in their own directory; its queue
        is the user's own unless own_queue is False (then the system's)."""
        pw = self.acc.users[user]
        d = self.home(user)
        base = {"LogFile": os.path.join(d, "postino.log"),
                "RevaliasesFile": os.path.join(d, "revaliases")}
        if own_queue:
            base["QueueDir"] = os.path.join(d, "queue")
        base.update(keys)
        return self.write_config(os.path.join(d, "ssmtp.conf"), 0o600,
                                 (pw.pw_uid, pw.pw_gid), **base)

    def user_log(self, user):
        return LogReader(os.path.join(self.home(user), "postino.log")).text()

    def log(self):
        return LogReader(self.logfile).text()

    def queue_files(self, queue_dir=None):
        """Every file under the queue directory (rate counters included)."""
        out = []
        for root, _, names in os.walk(queue_dir or self.queue_dir):
            out += [os.path.join(root, n) for n in names]
        return sorted(out)

    def queued(self, queue_dir=None):
        """Committed entries in the queue area."""
        d = os.path.join(queue_dir or self.queue_dir, "queue")
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d) if not n.startswith("."))

    # -- running --------------------------------------------------------

    def command(self, user, args, binary=None):
        """argv that runs binary (the setgid copy) as user (None: root) in
        a namespace whose /etc/ssmtp is this install's."""
        if self.asan and user is not None and binary in (None, self.bin) \
                and "-C" not in args:
            # Such a run keeps real and saved group apart until it exits.
            pytest.skip("an ASan build cannot run set-group-ID as a user: "
                        "LeakSanitizer may not ptrace a process whose real "
                        "and saved group differ, and ASAN_OPTIONS is "
                        "ignored in a set-group-ID process")
        cmd = [UNSHARE, "-m", "--propagation", "private", "/bin/sh", "-c",
               MOUNT_AND_EXEC, "sh", self.layer]
        if user is not None:
            pw = self.acc.users[user] if user in self.acc.users else \
                pwd.getpwnam(user)
            cmd += [SETPRIV, "--reuid=%d" % pw.pw_uid,
                    "--regid=%d" % pw.pw_gid, "--clear-groups", "--"]
        return cmd + [binary or self.bin] + list(args)

    def env(self, user, extra=None):
        env = clean_env()
        if user is not None:
            # LeakSanitizer needs to ptrace the process, which postino's
            # PR_SET_DUMPABLE 0 forbids to anyone but root.
            env["ASAN_OPTIONS"] = ":".join(
                filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        env.update(extra or {})
        return env

    def popen(self, user, args, binary=None, env=None, umask=None):
        def child():
            if umask is not None:
                os.umask(umask)
        return launch(self.command(user, args, binary),
                      self.env(user, env), "/", preexec_fn=child)

    def run(self, user, args, input=b"", binary=None, env=None, timeout=60,
            umask=None):
        p = self.popen(user, args, binary, env, umask)
        # For messages: who ran which binary with what, not the wrapper.
        shown = ["(as %s)" % (user or "root"), binary or self.bin] + \
            list(args)
        return finish(p, input, timeout, shown)

    def as_user(self, user, argv):
        """Run an ordinary tool as user (no group): the returncode."""
        pw = self.acc.users[user]
        return subprocess.run([SETPRIV, "--reuid=%d" % pw.pw_uid,
                               "--regid=%d" % pw.pw_gid, "--clear-groups",
                               "--"] + argv, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode


def overlay_works(inst):
    """The namespace trick needs CAP_SYS_ADMIN and overlayfs."""
    p = subprocess.run(inst.command(None, [], binary="/bin/true"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode == 0, p.stdout.decode(errors="replace")


def install_fixture(postino_binary, accounts):
    with open(postino_binary, "rb") as f:
        if SYSTEM_CONF.encode() + b"\0" not in f.read():
            pytest.skip("%s was not built with CONFDIR=/etc/ssmtp"
                        % postino_binary)
    inst = Install(postino_binary, accounts)
    ok, why = overlay_works(inst)
    if not ok:
        inst.remove()
        pytest.skip("cannot give postino a private /etc/ssmtp (unshare "
                    "-m and an overlay mount of /etc): %s" % why.strip())
    try:
        yield inst
    finally:
        inst.remove()


# -- /proc ------------------------------------------------------------------

def require_proc():
    """Tests that look at another process need /proc (a chroot or a
    minimal container may have none): skip with the reason."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc (to see another process's ids and "
                    "executable); it is not mounted here")


def wait_exec(pid, path, timeout=30.0):
    """Wait until pid runs path (unshare, sh and setpriv exec in turn).

    The executable is compared by identity (device and inode, as
    stat(2) through /proc/PID/exe sees it), never by the path the link
    shows: that path depends on the reader's root and mount namespace
    (a root bind-mounted on itself, a chroot). The timeout is only a
    bound for a failure; a loaded machine merely takes longer."""
    require_proc()
    want = _file_id(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _file_id("/proc/%d/exe" % pid) == want:
                return True
        except FileNotFoundError:
            return False        # gone
        except OSError:
            pass                # between two execs, or not yet readable
        time.sleep(0.005)
    return False


def ids(pid, which):
    """(real, effective, saved, fs) from the Uid: or Gid: line."""
    require_proc()
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(which + ":"):
                return tuple(int(x) for x in line.split()[1:5])
    raise AssertionError("no %s line for pid %d" % (which, pid))


def wait_ids(pid, which, want, timeout=5.0):
    """Poll until the ids are want; the last ids seen either way."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        try:
            got = ids(pid, which)
        except OSError:
            return got
        if got == want:
            break
        time.sleep(0.005)
    return got


# -- secrets ------------------------------------------------------------------

B64_RX = re.compile(rb"[A-Za-z0-9+/]{6,}={0,2}")


def leaks(secret, blob):
    """Where secret shows in blob: plainly, or inside any base64 token
    (AUTH PLAIN's "\\0user\\0pass", AUTH LOGIN's password line)."""
    if isinstance(blob, str):
        blob = blob.encode(errors="surrogateescape")
    s = secret.encode()
    found = []
    if s in blob:
        found.append("plain text")
    for m in B64_RX.finditer(blob):
        tok = m.group(0)
        for cut in range(4):
            piece = tok[cut:]
            piece = piece[:len(piece) - len(piece) % 4]
            try:
                dec = base64.b64decode(piece, validate=True)
            except ValueError:
                continue
            if s in dec:
                found.append("base64 %r" % tok[:40])
    return found
