"""The command line and the config file: usage errors, data errors, config
errors with file:line, options that must be swallowed with their argument,
recipient lists."""

import os

import pytest

from helpers import DOMAIN, login, message, token

RCPT = "rcpt@example.org"


@pytest.fixture
def sink(fault, postino):
    srv = fault()
    postino.config(MailHub=srv.mailhub())
    return srv


def nothing_sent(srv):
    srv.wait_idle()
    assert not any(s.saw("MAIL") for s in srv.sessions), srv.commands()
    assert srv.messages == []


def one_line_error(res, code):
    assert res.rc == code, res.describe()
    assert res.stdout == b""
    assert len(res.err_lines()) >= 1, res.describe()


# -- usage (64) --------------------------------------------------------------

def test_no_recipients(postino, sink):
    res = postino.run([], message(token()))
    one_line_error(res, 64)
    nothing_sent(sink)


def test_only_empty_recipient(postino, sink):
    """anacron with MAILTO= passes ''."""
    res = postino.run([""], message(token()))
    one_line_error(res, 64)
    nothing_sent(sink)


def test_t_without_any_recipient(postino, sink):
    res = postino.run(["-t"], b"Subject: nobody\n\nbody\n")
    one_line_error(res, 64)
    nothing_sent(sink)


@pytest.mark.parametrize("opt", ["-Y", "-K", "--frobnicate"])
def test_unknown_option(postino, sink, opt):
    res = postino.run([opt, RCPT], message(token()))
    one_line_error(res, 64)
    nothing_sent(sink)


def test_usage_error_drains_stdin(postino, sink):
    """Writers such as git send-email die of SIGPIPE if we stop reading."""
    proc = postino.start([])
    chunk = b"x" * 65536 + b"\n"
    try:
        for _ in range(32):         # 2 MiB, far more than a pipe holds
            proc.stdin.write(chunk)
        proc.stdin.close()
    except BrokenPipeError:
        proc.kill()
        proc.wait()
        pytest.fail("postino closed stdin before EOF on a usage error")
    rc = proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()
    assert rc == 64


# -- options swallowed with their argument -----------------------------------

def test_ignored_options_never_become_recipients(postino, sink):
    args = ["-B8BITMIME", "-oem", "-odi", "-h", "17", "-N", "never",
            "-R", "hdrs", "-L", "tag", "-O", "DeliveryMode=i", "-oi",
            "-V", "envid", "-i", RCPT]
    postino.run(args, message(token())).ok()
    sink.wait_idle()
    assert [m.rcpts for m in sink.messages] == [[RCPT]]


def test_cron_argv(postino, sink):
    postino.run(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                b"From: root (Cron Daemon)\nTo: root\nSubject: Cron\n\nx\n"
                ).ok()
    sink.wait_idle()
    m = sink.messages[0]
    assert m.rcpts == ["root@" + DOMAIN]
    assert m.mail_from == "%s@%s" % (login(), DOMAIN)


def test_options_after_recipients(postino, sink):
    postino.run([RCPT, "-f", "late@example.org"], message(token())).ok()
    sink.wait_idle()
    assert sink.messages[0].mail_from == "late@example.org"
    assert sink.messages[0].rcpts == [RCPT]


def test_attached_option_argument(postino, sink):
    postino.run(["-fattached@example.org", RCPT], message(token())).ok()
    sink.wait_idle()
    assert sink.messages[0].mail_from == "attached@example.org"


def test_double_dash_ends_options(postino, sink):
    postino.run(["--", "-f@example.org"], message(token())).ok()
    sink.wait_idle()
    assert sink.messages[0].rcpts == ["-f@example.org"]


@pytest.mark.parametrize("sender,want", [
    ("<>", ""),
    ("Some One <one@example.org>", "one@example.org"),
    ("bare", "bare@" + DOMAIN),
])
def test_f_forms(postino, sink, sender, want):
    postino.run(["-f", sender, RCPT], message(token())).ok()
    sink.wait_idle()
    assert sink.messages[0].mail_from == want


def test_recipient_lists(postino, sink):
    postino.run(["a@example.org,b@example.org",
                 "Name <c@example.org>, d@example.org", "a@example.org"],
                message(token())).ok()
    sink.wait_idle()
    assert sorted(sink.messages[0].rcpts) == [
        "a@example.org", "b@example.org", "c@example.org", "d@example.org"]


def test_version(postino):
    res = postino.run(["--version"], b"")
    assert res.rc == 0, res.describe()
    assert res.out.strip(), res.describe()


# -- data errors (65) ------------------------------------------------------

@pytest.mark.parametrize("bad", ["a@example.org\r\nRCPT TO:<x@evil>",
                                 "a@example.org\nx", "a\r@example.org"])
def test_crlf_in_sender(postino, sink, bad):
    res = postino.run(["-f", bad, RCPT], message(token()))
    one_line_error(res, 65)
    nothing_sent(sink)


def test_crlf_in_recipient(postino, sink):
    res = postino.run(["a@example.org\r\nDATA"], message(token()))
    one_line_error(res, 65)
    nothing_sent(sink)


# -- config errors (78) ----------------------------------------------------

@pytest.mark.parametrize("bad_line", [
    "UseTLS=maybe",
    "Timeout=soon",
    "MailHub=[::1",
    "TLSFingerprint=sha256:abcd",
])
def test_bad_config_names_file_and_line(postino, sink, bad_line):
    path = postino.raw_config("# comment\nMailHub=%s\n%s\nHostName=h\n"
                              % (sink.mailhub(), bad_line))
    res = postino.run([RCPT], message(token()), config=path)
    one_line_error(res, 78)
    assert "%s:3" % path in res.err, res.describe()
    nothing_sent(sink)


def test_missing_config(postino, sink):
    path = os.path.join(postino.dir, "no-such.conf")
    res = postino.run([RCPT], message(token()), config=path)
    one_line_error(res, 78)
    assert path in res.err
    nothing_sent(sink)


def test_config_syntax_ssmtp_quirks(postino, sink):
    """Case-insensitive keys, spaces around '=', '#' inside a value (with
    no blank before it: blanks then '#' start a comment), a last line
    without a newline."""
    path = postino.raw_config(
        "# leading comment\n"
        "mailhub = %s\n"
        "HOSTNAME=postino-host.example.test\n"
        "rewritedomain=quirks.example\n"
        "QueueDir=%s\nLogFile=%s\nRevaliasesFile=%s\n"
        "AddHeader=X-Note: has#inside # a comment" % (
            sink.mailhub(), postino.queue_dir, postino.logfile,
            postino.revaliases))
    postino.run([RCPT], message(token()), config=path).ok()
    sink.wait_idle()
    m = sink.messages[0]
    assert m.mail_from == "%s@quirks.example" % login()
    assert b"\r\nX-Note: has#inside\r\n" in m.content
