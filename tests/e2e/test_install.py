"""make install: the binary set-group-ID, every link callers look for,
the man pages, the queue directory and the scheduling files, under
DESTDIR and PREFIX (README.md, postino(8) FILES)."""

import grp
import os
import stat
import subprocess

import pytest

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
    if os.geteuid() == 0:
        assert grp.getgrgid(st.st_gid).gr_name == "mail"
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
    cron = os.path.join(dest, "etc/cron.d/postino")
    with open(cron) as f:
        assert "sendmail -q" in f.read()
    for unit in ("postino-queue.service", "postino-queue.timer"):
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
