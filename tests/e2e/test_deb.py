"""make deb: the package replaces ssmtp on a running Debian 12 host.

In a throwaway Debian 12 root (debootstrap minbase, cached as
build/debroot.tar by tests/deb/mkroot.sh; no systemd running), entered
with unshare + chroot so that it shares this host's loopback: ssmtp is
installed and given the seed fleet's configuration (mailhub,
rewriteDomain, hostname, the revaliases of admins), sends as root and as
www-data to a hub on loopback; then `apt-get install ./postino_*.deb`
replaces it: the configuration is kept byte for byte, the same messages
reach the hub with the same senders ssmtp gave them, mailq works, and
remove and purge leave nothing behind but the administrator's files.
A second install without a configuration gets the commented example,
and a purge with mail still queued keeps the queue and says so.

Skipped (with the reason) when not root, without debootstrap, unshare
or dpkg-buildpackage, or when the mirror cannot be reached for a cold
cache.
"""

import email
import email.utils
import glob
import os
import shutil
import subprocess

import pytest

from faultserver import FaultServer
from helpers import is_asan, postino_bin

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CACHE = os.path.join(REPO, "build", "debroot.tar")

# The seed fleet (shared/seeds/001): ssmtp everywhere, mail.arn-fai.net
# as the hub (here the loopback hub), the domain rewritten, the host's
# FQDN, and revaliases in the fleet's own "name: admins" style.
SEED_CONF = """\
# root=postmaster
mailhub={hub}
rewriteDomain=arn-fai.net
hostname=web.arn-fai.net
# FromLineOverride=YES
"""
SEED_REVALIASES = """\
mailer-daemon: admins
postmaster: admins
nobody: admins
hostmaster: admins
dnsmaster: admins
usenet: admins
news: admins
webmaster: admins
www: admins
ftp: admins
abuse: admins
noc: admins
security: admins
root: admins
listmaster: admins
#
#
admins: admins@arn-fai.net
"""

DEBCONF = """\
ssmtp ssmtp/root string postmaster
ssmtp ssmtp/mailhub string mail.arn-fai.net
ssmtp ssmtp/rewritedomain string arn-fai.net
ssmtp ssmtp/hostname string web.arn-fai.net
"""

AUTH_CONF = "AuthUser=web\\nAuthPass=s3cret\\nUseSTARTTLS=YES\\n"

# Paths that change with any package operation and are not files a
# package leaves behind: dpkg's and apt's own state, logs, accounts.
VOLATILE = ("var/lib/dpkg/", "var/lib/apt/", "var/cache/", "var/log/",
            "var/lib/systemd/deb-systemd-helper-", "tmp/", "proc/",
            "dev/", "etc/passwd", "etc/group", "etc/shadow",
            "etc/gshadow", "etc/subuid", "etc/subgid", "etc/.pwd.lock",
            "etc/ld.so.cache", "run/", "var/lib/ucf/", "root/")


def need(cond, why):
    if not cond:
        pytest.skip(why)


class Root:
    """A Debian root entered with unshare --mount + chroot."""

    def __init__(self, path):
        self.path = path

    def run(self, script, check=True, user=None, input=None, timeout=120):
        if user is not None:
            script = ("exec setpriv --reuid=%s --regid=%s --init-groups "
                      "sh -c %s" % (user, user, shquote(script)))
        inner = ("mount -t proc proc /proc; export DEBIAN_FRONTEND="
                 "noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin "
                 "LC_ALL=C.UTF-8; " + script)
        outer = ("mount --rbind /dev %s/dev && exec chroot %s /bin/sh -c %s"
                 % (shquote(self.path), shquote(self.path), shquote(inner)))
        proc = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c",
                               outer], input=input, capture_output=True,
                              text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, (script, proc.stdout, proc.stderr)
        return proc

    def file(self, rel):
        return os.path.join(self.path, rel.lstrip("/"))

    def read(self, rel):
        with open(self.file(rel), "rb") as f:
            return f.read()

    def write(self, rel, text):
        # Through the root's own shell: keeps the mode an existing file
        # has (ssmtp made ssmtp.conf root:mail 0640).
        self.run("cat > %s" % rel, input=text)

    def mode(self, rel):
        st = os.stat(self.file(rel))
        return (st.st_mode & 0o7777, self.owner(st))

    def owner(self, st):
        def name(db, num):
            with open(self.file(db)) as f:
                for line in f:
                    parts = line.split(":")
                    if int(parts[2]) == num:
                        return parts[0]
            return str(num)
        return "%s:%s" % (name("etc/passwd", st.st_uid),
                          name("etc/group", st.st_gid))

    def tree(self):
        """Every path under the root, but the volatile ones."""
        out = set()
        for top, dirs, files in os.walk(self.path):
            for n in dirs + files:
                rel = os.path.relpath(os.path.join(top, n), self.path)
                if not rel.startswith(VOLATILE):
                    out.add(rel)
        return out

    def status(self, pkg):
        return self.run("dpkg-query -W -f='${db:Status-Abbrev}' %s" % pkg,
                        check=False).stdout.strip()


def shquote(s):
    return "'" + s.replace("'", "'\"'\"'") + "'"


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    need(os.geteuid() == 0, "needs root (debootstrap, chroot, unshare)")
    need(not is_asan(postino_bin()), "the package is built by make deb, "
         "not from the ASan binary: the plain e2e pass ran this test")
    for tool in ("debootstrap", "dpkg-buildpackage", "unshare", "lintian"):
        need(shutil.which(tool), "%s is not installed "
             "(tests/install-deps.sh)" % tool)
    proc = subprocess.run(["unshare", "--mount", "--fork", "true"],
                          capture_output=True)
    need(proc.returncode == 0, "unshare --mount is not allowed here")
    build = str(tmp_path_factory.mktemp("debbuild"))
    proc = subprocess.run(["make", "-s", "-C", REPO, "deb", "BUILD=" + build],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # lintian ran inside make deb with --fail-on error,warning.
    debs = glob.glob(os.path.join(build, "deb", "postino_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


@pytest.fixture
def root(tmp_path):
    need(os.geteuid() == 0, "needs root (debootstrap, chroot, unshare)")
    need(shutil.which("debootstrap"), "debootstrap is not installed")
    if not os.path.exists(CACHE):
        os.makedirs(os.path.dirname(CACHE), exist_ok=True)
        proc = subprocess.run(["sh", os.path.join(REPO, "tests/deb/mkroot.sh"),
                               CACHE], capture_output=True, text=True,
                              timeout=600)
        need(proc.returncode == 0, "cannot build the Debian 12 root "
             "(mirror unavailable?): " + proc.stderr[-500:])
    path = str(tmp_path / "root")
    os.mkdir(path)
    subprocess.run(["tar", "-C", path, "-xf", CACHE], check=True)
    yield Root(path)
    # Nothing is mounted outside the unshared namespaces; plain removal.
    shutil.rmtree(path, ignore_errors=True)


def install_deb(root, deb):
    shutil.copy(deb, root.file("/tmp/"))
    return root.run("apt-get install -y /tmp/%s 2>&1"
                    % os.path.basename(deb))


def send(root, hub, user, tag):
    """One message through /usr/sbin/sendmail; the hub's copy of it."""
    before = len(hub.messages)
    msg = ("To: ops@example.net\nSubject: %s\n\n%s from %s\n"
           % (tag, tag, user))
    root.run("/usr/sbin/sendmail ops@example.net", user=user, input=msg)
    assert len(hub.messages) == before + 1, hub.commands()
    m = hub.messages[-1]
    hdr = email.message_from_bytes(m.content)
    assert hdr["Subject"] == tag
    # ssmtp writes "root" <a@b>, postino root <a@b>: the same address
    # and display name (RFC 5322 3.2.4), so compared parsed.
    return m.mail_from, email.utils.parseaddr(hdr["From"])


def test_deb_replaces_ssmtp(deb, root):
    hub = FaultServer().start()
    try:
        replace_and_use(deb, root, hub)
    finally:
        hub.stop()


def replace_and_use(deb, root, hub):
    # ssmtp's debconf questions answered as the fleet would (without
    # an answer its postinst needs `hostname --fqdn` to resolve).
    root.run("debconf-set-selections", input=DEBCONF)
    root.run("apt-get install -y --no-download ssmtp 2>&1")
    assert root.status("ssmtp").startswith("ii")
    root.write("/etc/ssmtp/ssmtp.conf", SEED_CONF.format(hub=hub.mailhub()))
    root.write("/etc/ssmtp/revaliases", SEED_REVALIASES)
    ssmtp = {u: send(root, hub, u, "ssmtp-" + u) for u in ("root", "www-data")}
    conf = {f: root.read(f) for f in ("/etc/ssmtp/ssmtp.conf",
                                      "/etc/ssmtp/revaliases")}
    assert root.mode("/etc/ssmtp/ssmtp.conf") == (0o640, "root:mail")
    assert root.mode("/etc/ssmtp") == (0o750, "root:mail")
    before = root.tree()

    out = install_deb(root, deb).stdout
    assert root.status("ssmtp").startswith("rc"), out   # removed, not purged
    assert root.status("postino").startswith("ii"), out
    for f, text in conf.items():
        assert root.read(f) == text, f                  # kept byte for byte
    # ssmtp's root:mail 0640 would shut postino's users out: the group.
    assert root.mode("/etc/ssmtp/ssmtp.conf") == (0o640, "root:postino")
    assert "/etc/ssmtp/ssmtp.conf: group postino" in out
    assert root.mode("/etc/ssmtp") == (0o750, "root:postino")
    assert "/etc/ssmtp: group postino" in out
    assert "do not purge" in out                        # ssmtp's rm -r
    check_layout(root)

    # The same senders ssmtp produced, as root and as www-data.
    for u in ("root", "www-data"):
        assert send(root, hub, u, "postino-" + u) == ssmtp[u], u
    check_queue(root, hub)

    root.run("apt-get remove -y postino 2>&1")
    assert not os.path.lexists(root.file("/usr/sbin/sendmail"))
    for f, text in conf.items():
        assert root.read(f) == text, f
    root.run("apt-get purge -y postino 2>&1")
    for f, text in conf.items():
        assert root.read(f) == text, f
    # libssl3 and libbsd0 came in for postino only: apt takes them away.
    root.run("apt-get autoremove --purge -y 2>&1")
    left = root.tree() - before
    assert left == set(), sorted(left)
    # What went is ssmtp's (removed by the switch, its library taken by
    # autoremove), never the administrator's.
    gone = before - root.tree()
    assert not [p for p in gone if p.startswith("etc/")], sorted(gone)
    assert "usr/sbin/ssmtp" in gone
    assert root.run("dpkg-statoverride --list /usr/sbin/postino",
                    check=False).returncode != 0


def check_layout(root):
    assert root.mode("/usr/sbin/postino") == (0o2755, "root:postino")
    assert os.readlink(root.file("/usr/sbin/sendmail")) == "postino"
    assert os.path.realpath(root.file("/usr/lib/sendmail")) == \
        root.file("/usr/sbin/postino")
    for link in ("/usr/bin/mailq", "/usr/sbin/newaliases"):
        assert os.path.realpath(root.file(link)) == \
            root.file("/usr/sbin/postino"), link
    assert root.mode("/var/spool/postino") == (0o2770, "postino:postino")
    for d in ("data", "queue", "failed", "rate"):
        assert root.mode("/var/spool/postino/" + d) == \
            (0o2770, "root:postino"), d
    # The timer enabled (no systemd running: the symlink), the loopback
    # SMTP socket not, the cron fallback in place.
    wants = "/etc/systemd/system/timers.target.wants/postino-queue.timer"
    assert os.path.islink(root.file(wants))
    assert not glob.glob(root.file("/etc/systemd/system/*/postino-smtpd*"))
    assert os.path.exists(root.file("/etc/cron.d/postino"))
    assert os.path.exists(root.file("/usr/share/man/man8/postino.8.gz"))
    assert os.path.exists(root.file("/usr/share/man/man5/ssmtp.conf.5.gz"))
    pw = root.run("getent passwd postino postino-smtpd").stdout
    assert "/usr/sbin/nologin" in pw and "postino-smtpd" in pw


def check_queue(root, hub):
    """mailq as www-data lists its queued message; a queue run sends it."""
    before = len(hub.messages)
    root.run("/usr/sbin/sendmail -odq ops@example.net", user="www-data",
             input="Subject: queued\n\nlater\n")
    listing = root.run("mailq", user="www-data").stdout
    assert "ops@example.net" in listing, listing
    root.run("/usr/sbin/sendmail -q")
    assert len(hub.messages) == before + 1
    listing = root.run("mailq", user="www-data").stdout
    assert "ops@example.net" not in listing, listing


def test_deb_example_config_and_busy_queue(deb, root):
    """Without a configuration: the example, which postino check accepts;
    a purge with mail in the queue keeps the queue and says so."""
    out = install_deb(root, deb).stdout
    assert "installed an example /etc/ssmtp/ssmtp.conf" in out
    assert root.read("/etc/ssmtp/ssmtp.conf") == \
        root.read("/usr/share/postino/ssmtp.conf.example")
    check = root.run("postino check 2>&1")
    assert "hub mailhub port 25" in check.stdout, check.stdout
    # A password dropped world-readable into conf.d: the next configure
    # (here a reinstall) makes it root:postino 0640 and says so.
    root.run("mkdir -p /etc/ssmtp/conf.d && printf '%s' > "
             "/etc/ssmtp/conf.d/auth.conf && chmod 0644 "
             "/etc/ssmtp/conf.d/auth.conf" % AUTH_CONF)
    assert root.run("postino check 2>&1", check=False).returncode != 0
    out = root.run("apt-get install -y --reinstall /tmp/%s 2>&1"
                   % os.path.basename(deb)).stdout
    assert "/etc/ssmtp/conf.d/auth.conf holds AuthPass: mode 0640, owner " \
        "root:postino (was 644 root:root)" in out, out
    assert root.mode("/etc/ssmtp/conf.d/auth.conf") == (0o640, "root:postino")
    root.run("postino check 2>&1")
    root.run("/usr/sbin/sendmail -odq ops@example.net",
             input="Subject: stays\n\nqueued\n")
    out = root.run("apt-get purge -y postino 2>&1").stdout
    assert "/var/spool/postino still holds messages" in out, out
    assert glob.glob(root.file("/var/spool/postino/queue/*"))
    # The unchanged example went with the package; the administrator's
    # conf.d file stays.
    assert not os.path.exists(root.file("/etc/ssmtp/ssmtp.conf"))
    assert os.path.exists(root.file("/etc/ssmtp/conf.d/auth.conf"))
