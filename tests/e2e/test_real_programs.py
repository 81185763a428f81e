"""Real programs from Debian's packages drive postino (callers.md section
1): PHP's mail() (php-cli), bsd-mailx and git send-email (git-email,
libmailtools-perl), each pointed at postino the way an administrator
would, never by replacing /usr/sbin/sendmail. A test is skipped, with the
package to install, only when the program is missing."""

import os
import shutil
import subprocess

import pytest

from callers import harness
from helpers import DOMAIN, login, parse, unused_port, wait_until

TIMEOUT = 60


def need(program, package):
    path = shutil.which(program)
    if path is None:
        pytest.skip("%s is not installed (apt-get install %s)" % (
            program, package))
    return path


def run(cmd, env, cwd, input=b""):
    proc = subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, cwd=cwd,
                          timeout=TIMEOUT)
    return proc.returncode, proc.stdout.decode(errors="replace"), \
        proc.stderr.decode(errors="replace")


def one_message(srv):
    srv.wait_idle()
    assert len(srv.messages) == 1, srv.commands()
    return srv.messages[0]


# -- PHP mail() ---------------------------------------------------------------

PHP_MAIL = r"""
var_dump(mail("customer@example.org", "Your order 1042",
    "Hello,\nyour order has shipped.\n.\n..two dots\nThanks",
    "From: Shop <shop@example.org>\r\nReply-To: support@example.org\r\n" .
    "Bcc: audit@example.org\r\nContent-Type: text/plain; charset=UTF-8",
    "-fbounce@example.org"));
"""


def php(postino, conf, code):
    """php -d sendmail_path=... -r code, under an empty environment as
    PHP-FPM's clear_env gives it."""
    binary = need("php", "php-cli")
    path = "%s -C %s -t -i" % (postino.binary, conf)
    return run([binary, "-n", "-d", "sendmail_path=" + path, "-r", code],
               postino.env(), postino.dir)


def test_php_mail(postino, fault):
    srv = fault()
    conf = harness.config(postino, srv)
    rc, out, err = php(postino, conf, PHP_MAIL)
    # postino shares PHP's stdout and stderr: silence means only PHP's
    # own output is there.
    assert (rc, out, err) == (0, "bool(true)\n", ""), (rc, out, err)
    m = one_message(srv)
    assert m.mail_from == "bounce@example.org"
    assert sorted(m.rcpts) == ["audit@example.org", "customer@example.org"]
    p = parse(m.content)
    assert p.get("Bcc") == []
    assert p.one("To") == "customer@example.org"
    assert p.one("Subject") == "Your order 1042"
    assert p.one("From") == "Shop <shop@example.org>"
    assert p.one("Reply-To") == "support@example.org"
    assert len(p.get("Date")) == 1 and len(p.get("Message-ID")) == 1
    # CRLF headers, LF body (PHP >= 8) become CRLF; -i keeps the lone dot.
    assert p.body == (b"Hello,\r\nyour order has shipped.\r\n.\r\n"
                      b"..two dots\r\nThanks\r\n")


def test_php_mail_sees_a_refusal(postino, fault):
    srv = fault(rcpt_replies={"customer@example.org": "550 5.1.1 unknown",
                              "audit@example.org": "550 5.1.1 unknown"})
    conf = harness.config(postino, srv)
    rc, out, err = php(postino, conf, PHP_MAIL)
    assert rc == 0 and out == "bool(false)\n", (rc, out, err)
    srv.wait_idle()
    assert srv.messages == []


def test_php_mail_true_when_queued(postino):
    """Hub down: committed to the queue, exit 0, so mail() is true (PHP up
    to 8.4 reads anything else, 75 included, as failure)."""
    conf = harness.config(postino, MailHub="127.0.0.1:%d" % unused_port())
    rc, out, err = php(postino, conf, PHP_MAIL)
    assert (rc, out, err) == (0, "bool(true)\n", ""), (rc, out, err)
    assert len(harness.queued_ids(postino)) == 1


# -- bsd-mailx ---------------------------------------------------------------

def mailx_setup(postino, conf):
    """bsd-mailx runs the program named by its 'sendmail' variable with
    no arguments of its own, and does not wait for it: a small wrapper
    adds -C and records argv, exit status and output."""
    d = postino.dir
    wrapper = os.path.join(d, "sendmail-wrapper")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\n'
                'printf "%%s\\n" "$@" > "%(d)s/mailx.argv"\n'
                '"%(bin)s" -C "%(conf)s" "$@" > "%(d)s/mailx.out" '
                '2> "%(d)s/mailx.err"\n'
                'echo $? > "%(d)s/mailx.rc.tmp"\n'
                'mv "%(d)s/mailx.rc.tmp" "%(d)s/mailx.rc"\n'
                % {"d": d, "bin": postino.binary, "conf": conf})
    os.chmod(wrapper, 0o755)
    rc_file = os.path.join(d, "mailrc")
    with open(rc_file, "w") as f:
        f.write("set sendmail=%s\n" % wrapper)
    return postino.env({"HOME": d, "MAILRC": rc_file})


def read(postino, name):
    with open(os.path.join(postino.dir, name)) as f:
        return f.read()


def test_bsd_mailx(postino, fault):
    mail = need("bsd-mailx", "bsd-mailx")
    srv = fault()
    conf = harness.config(postino, srv)
    env = mailx_setup(postino, conf)
    rc, out, err = run([mail, "-s", "disk report", "-c", "cc@example.org",
                        "-b", "bcc@example.org", "-r", "ops@example.org",
                        "to1@example.org", "to2@example.org"], env,
                       postino.dir, b"/dev/sda1 91%\n.\nlast line\n")
    assert (rc, out, err) == (0, "", ""), (rc, out, err)
    done = os.path.join(postino.dir, "mailx.rc")
    assert wait_until(lambda: os.path.exists(done), timeout=TIMEOUT)
    assert read(postino, "mailx.rc") == "0\n"
    assert read(postino, "mailx.out") == read(postino, "mailx.err") == ""
    # The shape of callers.md row 13: -i -t -f <from>.
    argv = read(postino, "mailx.argv").split()
    assert argv[:2] == ["-i", "-t"] and "ops@example.org" in argv, argv
    m = one_message(srv)
    assert m.mail_from == "ops@example.org"
    assert sorted(m.rcpts) == ["bcc@example.org", "cc@example.org",
                               "to1@example.org", "to2@example.org"]
    p = parse(m.content)
    assert p.get("Bcc") == []
    assert p.one("Subject") == "disk report"
    assert p.one("From") == "ops@example.org"
    # bsd-mailx writes neither Date nor Message-ID.
    assert len(p.get("Date")) == 1 and len(p.get("Message-ID")) == 1
    assert p.body == b"/dev/sda1 91%\r\n.\r\nlast line\r\n"


def test_bsd_mailx_local_name(postino, fault):
    """smartd, apticron, Nagios: mail -s subj root (callers.md row 16)."""
    mail = need("bsd-mailx", "bsd-mailx")
    srv = fault()
    conf = harness.config(postino, srv, Root="admin@example.org")
    env = mailx_setup(postino, conf)
    rc, out, err = run([mail, "-s", "SMART error detected", "root"], env,
                       postino.dir, b"Device: /dev/sda [SAT]\n")
    assert (rc, out, err) == (0, "", ""), (rc, out, err)
    assert wait_until(lambda: os.path.exists(
        os.path.join(postino.dir, "mailx.rc")), timeout=TIMEOUT)
    assert read(postino, "mailx.rc") == "0\n"
    m = one_message(srv)
    assert m.rcpts == ["admin@example.org"]
    assert m.mail_from == "%s@%s" % (login(), DOMAIN)
    p = parse(m.content)
    assert p.one("To") == "root@" + DOMAIN
    assert p.one("From").endswith("<%s@%s>" % (login(), DOMAIN))


# -- git send-email -----------------------------------------------------------

def git_env(postino):
    return postino.env({"HOME": postino.dir, "GIT_CONFIG_NOSYSTEM": "1",
                        "GIT_AUTHOR_NAME": "Dev Eloper",
                        "GIT_AUTHOR_EMAIL": "dev@example.org",
                        "GIT_COMMITTER_NAME": "Dev Eloper",
                        "GIT_COMMITTER_EMAIL": "dev@example.org"})


def make_patch(postino, env):
    """A throwaway repository with one commit, as a patch file."""
    git = need("git", "git")
    repo = os.path.join(postino.dir, "repo")
    os.mkdir(repo)
    page = os.path.join(repo, "page.8")

    def g(*args):
        rc, out, err = run([git] + list(args), env, repo)
        assert rc == 0, (args, out, err)
        return out

    g("init", "-q")
    with open(page, "w") as f:
        f.write(".Sh QUEUE\n.Pp\nRetry after 60 s.\n.\n")
    g("add", "page.8")
    g("commit", "-q", "-m", "initial")
    with open(page, "w") as f:
        f.write(".Sh QUEUE\n..\nRetry after 30 s.\n.\n")
    g("commit", "-q", "-a", "-m", "queue: retry sooner",
      "-m", "Retry after 30 s instead of 60 s.")
    out = g("format-patch", "-1", "-o", os.path.join(postino.dir, "out"))
    return repo, out.strip()


def send_email(postino, conf, extra=()):
    git = need("git", "git")
    rc, exec_path, _ = run([git, "--exec-path"], postino.env(), postino.dir)
    perl_rc, _, _ = run(["perl", "-MMail::Address", "-e", "1"],
                        postino.env(), postino.dir)
    if rc != 0 or perl_rc != 0 or not os.path.exists(os.path.join(
            exec_path.strip(), "git-send-email")):
        pytest.skip("git send-email is not installed (apt-get install "
                    "git-email libmailtools-perl)")
    env = git_env(postino)
    repo, patch = make_patch(postino, env)
    cmd = [git, "send-email", "--sendmail-cmd=%s -C %s" % (postino.binary,
                                                           conf),
           "--confirm=never", "--no-validate", "--suppress-cc=all",
           "--from=Dev Eloper <dev@example.org>",
           "--to=maintainer@example.org", "--cc=list@example.org",
           "--cc=reviewer@example.org", "--bcc=archive@example.org",
           "--envelope-sender=dev@example.org"] + list(extra) + [patch]
    return run(cmd, env, repo) + (patch,)


def test_git_send_email(postino, fault):
    srv = fault()
    conf = harness.config(postino, srv)
    rc, out, err, patch = send_email(postino, conf)
    assert rc == 0, (out, err)
    assert "Result: OK" in out, (out, err)
    # Anything postino said would be in git's output.
    assert "postino" not in err and "sendmail:" not in err, err
    m = one_message(srv)
    assert m.mail_from == "dev@example.org"
    assert sorted(m.rcpts) == ["archive@example.org", "list@example.org",
                               "maintainer@example.org",
                               "reviewer@example.org"]
    p = parse(m.content)
    assert p.get("Bcc") == []
    assert p.one("Subject") == "[PATCH] queue: retry sooner"
    assert p.one("Cc") == "list@example.org, reviewer@example.org"
    # git writes Message-Id: no second one may be added.
    assert len([n for n in p.names() if n.lower() == "message-id"]) == 1
    assert p.one("X-Mailer").startswith("git-send-email")
    # The patch arrives byte for byte: "-.Pp", "+..", " ." lines included.
    with open(patch, "rb") as f:
        want = f.read().split(b"\n\n", 1)[1]
    assert b"\n+..\n" in want and b"\n .\n" in want
    assert p.body == want.replace(b"\n", b"\r\n")


def test_git_send_email_stops_on_refusal(postino, fault):
    """A non-zero exit aborts the series (close $sm or die)."""
    srv = fault(replies={"rcpt": "550 5.1.1 unknown"})
    conf = harness.config(postino, srv)
    rc, out, err, _ = send_email(postino, conf)
    assert rc != 0, (out, err)
    assert "Result: OK" not in out
    srv.wait_idle()
    # It was postino's answer that stopped git: the hub refused the RCPTs.
    assert any(c.startswith("RCPT") for c in srv.commands())
    assert srv.messages == []
    assert "unknown" in err, err
