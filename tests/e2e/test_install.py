"""make install: the binary set-group-ID, every link callers look for,
the man pages, the queue directory and the scheduling files, under
DESTDIR and PREFIX (README.md, postino(8) FILES and SECURITY): the
dedicated group and user (postino, never mail), QueueDir
postino:postino 2770, its data/ queue/ failed/ rate/ root:postino 2770,
the binary root:postino 2755; the accounts themselves are created only
by an install onto the system (as root, without DESTDIR)."""

import grp
import os
import pwd
import stat
import subprocess

import pytest

from privhelpers import accounts_fixture

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def install(tmp_path, *extra):
    dest = str(tmp_path / "root")
    proc = subprocess.run(
        ["make", "-s", "-C", REPO, "install", "DESTDIR=" + dest,
         "WITH_SYSTEMD=1"] + list(extra),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest


def test_install_layout(tmp_path):
    dest = install(tmp_path)
    sbin = os.path.join(dest, "usr/sbin")
    binary = os.path.join(sbin, "postino")
    st = os.stat(binary)
    assert st.st_mode & stat.S_ISGID, oct(st.st_mode)
    assert st.st_mode & 0o777 == 0o755
    # The group is never mail (it can write every mailbox in /var/mail).
    assert st.st_gid == 0 or grp.getgrgid(st.st_gid).gr_name != "mail"
    # Every name real callers use leads to the one binary.
    for link in ("usr/sbin/sendmail", "usr/lib/sendmail", "usr/bin/mailq",
                 "usr/bin/newaliases", "usr/sbin/newaliases"):
        path = os.path.join(dest, link)
        assert os.path.islink(path), link
        assert os.path.realpath(path) == os.path.realpath(binary), link
    for page in ("share/man/man8/postino.8", "share/man/man5/ssmtp.conf.5",
                 "share/man/man5/revaliases.5"):
        assert os.path.isfile(os.path.join(dest, "usr", page)), page
    queue = os.path.join(dest, "var/spool/postino")
    qst = os.stat(queue)
    assert stat.S_ISDIR(qst.st_mode)
    assert qst.st_mode & 0o7777 == 0o2770, oct(qst.st_mode)
    for area in ("data", "queue", "failed", "rate"):
        ast = os.stat(os.path.join(queue, area))
        assert ast.st_mode & 0o7777 == 0o2770, (area, oct(ast.st_mode))
    cron = os.path.join(dest, "etc/cron.d/postino")
    with open(cron) as f:
        assert "sendmail -q" in f.read()
    for unit in ("postino-queue.service", "postino-queue.timer",
                 "postino-smtpd.socket", "postino-smtpd@.service"):
        assert os.path.isfile(os.path.join(
            dest, "usr/lib/systemd/system", unit)), unit


def test_install_honours_prefix(tmp_path):
    dest = install(tmp_path, "PREFIX=/opt/postino")
    assert os.path.isfile(os.path.join(dest, "opt/postino/sbin/postino"))
    assert os.path.islink(os.path.join(dest, "opt/postino/bin/mailq"))
    # The personality comes from argv[0]: the installed mailq lists.
    conf = tmp_path / "ssmtp.conf"
    (tmp_path / "q").mkdir()
    conf.write_text("MailHub=127.0.0.1:1\nQueueDir=%s\n" % (tmp_path / "q"))
    out = subprocess.run(
        [os.path.join(dest, "opt/postino/bin/mailq"), "-C", str(conf)],
        capture_output=True, text=True, timeout=30)
    assert (out.returncode, out.stdout, out.stderr) == (
        0, "Mail queue is empty\n", "")


IN_USER = "postino-inst1"
IN_GROUP = "postino-instgrp"
accounts = pytest.fixture(scope="module")(
    lambda: (yield from accounts_fixture({IN_USER: "Install Tester"},
                                         IN_GROUP)))


def test_install_owners_and_modes(tmp_path, accounts):
    """Run as root into a DESTDIR, with accounts that exist (a test's own
    in place of postino:postino)."""
    dest = install(tmp_path, "POSTINO_GROUP=" + IN_GROUP,
                   "POSTINO_USER=" + IN_USER)
    uid = pwd.getpwnam(IN_USER).pw_uid
    gid = grp.getgrnam(IN_GROUP).gr_gid

    def owner_mode(rel):
        st = os.stat(os.path.join(dest, rel))
        return st.st_uid, st.st_gid, st.st_mode & 0o7777

    assert owner_mode("usr/sbin/postino") == (0, gid, 0o2755)
    assert owner_mode("var/spool/postino") == (uid, gid, 0o2770)
    for area in ("data", "queue", "failed", "rate"):
        assert owner_mode("var/spool/postino/" + area) == (0, gid, 0o2770)


def test_install_defaults_to_postino_accounts():
    """Onto the system, make install creates the system group and user
    postino (home QueueDir, no login shell) when missing: shown with make
    -n, so that this machine's accounts are not touched."""
    proc = subprocess.run(["make", "-n", "-s", "-C", REPO, "install"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.replace("\\\n", " ").split())
    assert "groupadd --system postino" in out, out
    assert ("useradd --system --gid postino --no-create-home "
            "--home-dir /var/spool/postino --shell /usr/sbin/nologin") in \
        out, out
    assert ("useradd --system --user-group --no-create-home "
            "--home-dir /nonexistent --shell /usr/sbin/nologin "
            "--comment \"postino loopback SMTP sessions\" postino-smtpd") \
        in out, out
    assert "chown root:postino" in out and "chown postino:postino" in out
    assert ":mail " not in out and "chgrp mail" not in out
