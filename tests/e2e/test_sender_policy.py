"""SenderPolicy and AllowedSendersFile (issue 12): the senders a user may
use, From: aligned with them, or the message refused (exit 77).

The hub here is the fault server, and every delivered message is checked
the way a relay with reject_sender_login_mismatch-style rules (SES, M365)
checks it: envelope sender, From: and Sender: must be one allowed
address. Runs as root's login (the postino fixture) for the policy
itself, then through a set-group-ID install as www-data (PHP-FPM's user)
and as an ordinary user, and through PHP's mail() with sendmail_path.
"""

import os
import shutil
import socket
import subprocess

import pytest

from helpers import (DOMAIN, addr_of, expect_partial_report, login, parse,
                     token)
from privhelpers import accounts_fixture, install_fixture

RCPT = "rcpt@example.org"
SHOP = "shop@shop.test"


def allowed_file(postino, text):
    path = os.path.join(postino.dir, "allowed-senders")
    with open(path, "w") as f:
        f.write(text)
    return path


def conf(postino, srv, policy, text=None, **keys):
    keys.setdefault("AliasesFile", "")
    keys["MailHub"] = srv.mailhub()
    if policy is not None:
        keys["SenderPolicy"] = policy
    if text is not None:
        keys["AllowedSendersFile"] = allowed_file(postino, text)
    return postino.config(**keys)


def msg(tok, *headers):
    hdrs = "".join("%s\n" % h for h in headers)
    return ("%sTo: %s\nSubject: %s\n\nbody %s\n" % (hdrs, RCPT, tok, tok)
            ).encode()


def one(srv):
    srv.wait_idle()
    assert len(srv.messages) == 1, srv.commands()
    return srv.messages[0], parse(srv.messages[0].content)


def assert_aligned(m, p, allowed):
    """What a relay checking sender alignment would accept."""
    assert m.mail_from in allowed, m.mail_from
    assert addr_of(p.one("From")) in allowed, p.get("From")
    for s in p.get("Sender"):
        assert addr_of(s) in allowed, s


ME = login()
OWN = "%s@%s" % (ME, DOMAIN)
FILE = "%s: %s, *@lists.shop.test\n*: nobody@%s\n" % (ME, SHOP, DOMAIN)


# -- keep: without the new keys, exactly as before --------------------------

def test_keep_is_the_default(postino, fault):
    srv = fault()
    conf(postino, srv, None)
    tok = token()
    res = postino.run(["-f", "x@anywhere.test", RCPT],
                      msg(tok, "From: CEO <ceo@bank.test>",
                          "Sender: s@else.test"))
    res.ok()
    m, p = one(srv)
    assert m.mail_from == "x@anywhere.test"
    assert p.one("From") == "CEO <ceo@bank.test>"
    assert p.one("Sender") == "s@else.test"
    assert p.get("Reply-To") == []


def test_keep_with_a_file_changes_nothing(postino, fault):
    srv = fault()
    conf(postino, srv, "keep", FILE)
    res = postino.run([RCPT], msg(token(), "From: ceo@bank.test"))
    res.ok()
    m, p = one(srv)
    assert p.one("From") == "ceo@bank.test"


@pytest.mark.parametrize("policy", ["align", "refuse"])
def test_localhost_qualified_under_a_policy(postino, fault, policy):
    """user@localhost never leaves unqualified under a policy (From,
    Sender, To, Cc, the envelope); keep leaves it as ssmtp did."""
    srv = fault()
    conf(postino, srv, policy, "%s: *@%s\n" % (ME, DOMAIN))
    res = postino.run(["-t", "-f", "root@localhost"],
                      msg(token(), "From: Admin <admin@localhost>",
                          "Sender: www-data@LOCALHOST",
                          "Cc: ops, user@localhost.localdomain"))
    res.ok()
    m, p = one(srv)
    assert m.mail_from == "root@" + DOMAIN
    assert p.one("From") == "Admin <admin@%s>" % DOMAIN
    if policy == "refuse":
        assert p.one("Sender") == "www-data@" + DOMAIN
    assert p.one("Cc") == "ops@%s, user@%s" % (DOMAIN, DOMAIN)
    assert sorted(m.rcpts) == sorted([RCPT, "ops@" + DOMAIN,
                                      "user@" + DOMAIN])


def test_localhost_kept_in_keep(postino, fault):
    srv = fault()
    conf(postino, srv, None)
    res = postino.run(["-t", "-f", "root@localhost"],
                      msg(token(), "From: Admin <admin@localhost>"))
    res.ok()
    m, p = one(srv)
    assert m.mail_from == "root@localhost"
    assert p.one("From") == "Admin <admin@localhost>"


# -- align ------------------------------------------------------------------

def test_align_keeps_an_allowed_from(postino, fault):
    srv = fault()
    conf(postino, srv, "align", FILE)
    res = postino.run([RCPT], msg(token(), "From: The Shop <%s>" % SHOP))
    res.ok()
    assert res.stderr == b""
    m, p = one(srv)
    assert p.one("From") == "The Shop <%s>" % SHOP
    assert m.mail_from == SHOP
    assert p.get("Reply-To") == []
    assert_aligned(m, p, {SHOP})


def test_align_replaces_a_spoofed_from_and_keeps_reply_to(postino, fault):
    srv = fault()
    conf(postino, srv, "align", FILE)
    res = postino.run([RCPT], msg(token(), "From: CEO <ceo@bank.test>",
                                  "Sender: ceo@bank.test"))
    res.ok()
    assert res.stderr == b""
    m, p = one(srv)
    # The user's first allowed address, display name kept.
    assert p.one("From") == "CEO <%s>" % SHOP
    assert p.one("Reply-To") == "CEO <ceo@bank.test>"
    assert p.get("Sender") == []
    assert m.mail_from == SHOP
    assert_aligned(m, p, {SHOP})
    assert "From: aligned to <%s>" % SHOP in res.log_text


def test_align_keeps_the_messages_own_reply_to(postino, fault):
    srv = fault()
    conf(postino, srv, "align", FILE)
    res = postino.run([RCPT], msg(token(), "From: ceo@bank.test",
                                  "Reply-To: help@bank.test"))
    res.ok()
    m, p = one(srv)
    assert p.get("Reply-To") == ["help@bank.test"]
    assert addr_of(p.one("From")) == SHOP


def test_align_f_counts_only_when_allowed(postino, fault):
    srv = fault()
    conf(postino, srv, "align", FILE)
    res = postino.run(["-f", "bounce@lists.shop.test", RCPT],
                      msg(token()))
    res.ok()
    m, p = one(srv)
    # Allowed: the envelope, and the From: postino adds.
    assert m.mail_from == "bounce@lists.shop.test"
    assert addr_of(p.one("From")) == "bounce@lists.shop.test"
    srv2 = fault()
    conf(postino, srv2, "align", FILE)
    res = postino.run(["-f", "ceo@bank.test", RCPT], msg(token()))
    res.ok()
    m, p = one(srv2)
    assert m.mail_from == SHOP
    assert addr_of(p.one("From")) == SHOP
    assert "-f <ceo@bank.test> not allowed" in res.log_text


def test_align_t_path(postino, fault):
    srv = fault()
    conf(postino, srv, "align", FILE)
    res = postino.run(["-t", "-i"], msg(token(), "From: ceo@bank.test",
                                        "Cc: root"))
    res.ok()
    m, p = one(srv)
    assert RCPT in m.rcpts
    assert p.one("Cc") == "root@%s" % DOMAIN
    assert_aligned(m, p, {SHOP})


def test_align_null_sender_stays_null(postino, fault):
    """-f '<>' (a bounce or DSN) is allowed: the envelope stays <>, the
    From: postino adds is the user's own address."""
    srv = fault()
    conf(postino, srv, "align", FILE)
    res = postino.run(["-f", "<>", RCPT], msg(token()))
    res.ok()
    m, p = one(srv)
    assert m.mail_from == ""
    assert addr_of(p.one("From")) == SHOP


# -- bounces: from <>, never refused or aligned away -----------------------

@pytest.mark.parametrize("policy", ["align", "refuse"])
def test_bounce_from_null_sender_goes_out(postino, fault, policy):
    """A partial refusal makes a report from <> to the (allowed) sender:
    the policy must neither refuse nor rewrite it."""
    bad = "gone@example.org"
    srv = fault(rcpt_replies={bad: "550 5.1.1 unknown"})
    conf(postino, srv, policy, FILE)
    res = postino.run([RCPT, bad], msg(token(), "From: Shop <%s>" % SHOP))
    expect_partial_report(res, srv, SHOP, bad, [RCPT])
    dsn = [m for m in srv.messages if m.mail_from == ""][0]
    assert addr_of(parse(dsn.content).one("From")) == \
        "MAILER-DAEMON@" + DOMAIN


# -- refuse -----------------------------------------------------------------

def test_refuse_a_spoofed_from(postino, fault):
    srv = fault()
    conf(postino, srv, "refuse", FILE)
    res = postino.run([RCPT], msg(token(), "From: ceo@bank.test"))
    assert res.rc == 77, res.describe()
    lines = res.err_lines()
    assert len(lines) == 1, lines
    assert "ceo@bank.test" in lines[0] and "SenderPolicy" in lines[0]
    srv.wait_idle()
    assert srv.messages == [] and srv.sessions == []
    assert postino.queue_entries() == []
    assert "refused sender <ceo@bank.test>" in res.log_text
    assert "login=%s" % ME in res.log_text


def test_refuse_f_and_sender(postino, fault):
    srv = fault()
    conf(postino, srv, "refuse", FILE)
    res = postino.run(["-f", "ceo@bank.test", RCPT], msg(token()))
    assert res.rc == 77, res.describe()
    assert "-f <ceo@bank.test>" in res.err
    res = postino.run([RCPT], msg(token(), "From: %s" % SHOP,
                                  "Sender: spoof@evil.test"))
    assert res.rc == 77, res.describe()
    assert "Sender <spoof@evil.test>" in res.err
    srv.wait_idle()
    assert srv.messages == []
    assert postino.queue_entries() == []


def test_refuse_passes_allowed_mail(postino, fault):
    srv = fault()
    conf(postino, srv, "refuse", FILE)
    res = postino.run(["-f", "bounce@lists.shop.test", RCPT],
                      msg(token(), "From: Shop <%s>" % SHOP))
    res.ok()
    m, p = one(srv)
    assert m.mail_from == "bounce@lists.shop.test"
    assert p.one("From") == "Shop <%s>" % SHOP


def test_refuse_bs(postino, fault):
    srv = fault()
    conf(postino, srv, "refuse", FILE)
    script = ("HELO [127.0.0.1]\r\nMAIL FROM:<ceo@bank.test>\r\n"
              "RCPT TO:<%s>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n"
              "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
              "From: %s\r\nSubject: y\r\n\r\nbody\r\n.\r\nQUIT\r\n"
              % (RCPT, SHOP, RCPT, SHOP)).encode()
    res = postino.run(["-bs"], script)
    replies = [l for l in res.out.split("\r\n") if l and l[3:4] == " "]
    codes = [l[:3] for l in replies]
    assert codes == ["220", "250", "250", "250", "354", "553", "250",
                     "250", "354", "250", "221"], replies
    srv.wait_idle()
    assert [m.mail_from for m in srv.messages] == [SHOP]


def test_align_bs(postino, fault):
    srv = fault()
    conf(postino, srv, "align", FILE)
    script = ("HELO [127.0.0.1]\r\nMAIL FROM:<ceo@bank.test>\r\n"
              "RCPT TO:<%s>\r\nDATA\r\nFrom: CEO <ceo@bank.test>\r\n"
              "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n" % RCPT).encode()
    res = postino.run(["-bs"], script)
    assert res.rc == 0, res.describe()
    m, p = one(srv)
    assert_aligned(m, p, {SHOP})
    assert p.one("Reply-To") == "CEO <ceo@bank.test>"


def test_unreadable_file_is_a_config_error_under_a_policy(postino, fault):
    srv = fault()
    conf(postino, srv, "refuse",
         AllowedSendersFile=os.path.join(postino.dir, "missing"))
    res = postino.run([RCPT], msg(token(), "From: %s" % OWN))
    assert res.rc == 78, res.describe()
    assert "AllowedSendersFile" in res.err
    srv.wait_idle()
    assert srv.messages == []


# -- the EHLO name: qualified, never localhost -------------------------------

def expected_helo(domain):
    host = socket.gethostname()
    if os.path.exists("/etc/mailname"):
        with open("/etc/mailname") as f:
            words = f.read().split()
        if words and "." in words[0] and \
                not words[0].lower().startswith("localhost"):
            return words[0]
    if "." in host and not host.lower().startswith("localhost"):
        return host
    return domain


@pytest.mark.parametrize("hostname", [None, "localhost", "container"])
def test_ehlo_name_is_qualified(postino, fault, hostname):
    srv = fault()
    conf(postino, srv, None, HostName=hostname, RewriteDomain="mail.test")
    postino.run([RCPT], msg(token())).ok()
    srv.wait_idle()
    first = srv.sessions[0].commands[0]
    assert first == "EHLO " + expected_helo("mail.test"), first
    assert "localhost" not in first.lower()


def test_ehlo_name_from_hostname(postino, fault):
    srv = fault()
    conf(postino, srv, None, HostName="mx1.example.net")
    postino.run([RCPT], msg(token())).ok()
    srv.wait_idle()
    assert srv.sessions[0].commands[0] == "EHLO mx1.example.net"


# -- -bv and postino check: which sender, and why ---------------------------

def test_bv_tells_the_sender(postino, fault):
    srv = fault()
    conf(postino, srv, "align", FILE)
    res = postino.run(["-bv", "-f", "ceo@bank.test"])
    assert res.rc == 0, res.describe()
    assert res.out == ("ceo@bank.test... sender: envelope <%s>, From: <%s> "
                       "when the message has none (aligned: not allowed; "
                       "SenderPolicy=align, user %s)\n" % (SHOP, SHOP, ME))
    res = postino.run(["-bv", "-f", "x@lists.shop.test", RCPT])
    assert res.rc == 0, res.describe()
    lines = res.out.splitlines()
    assert "envelope <x@lists.shop.test>" in lines[0]
    assert "(allowed; SenderPolicy=align" in lines[0]
    assert lines[1].startswith(RCPT + "... deliverable")
    conf(postino, srv, "refuse", FILE)
    res = postino.run(["-bv", "-f", "ceo@bank.test"])
    assert "(refused: not allowed, exit 77; SenderPolicy=refuse" in res.out
    # Under a policy, -bv names the sender even without -f.
    res = postino.run(["-bv", RCPT])
    assert res.out.startswith("%s... sender: envelope <%s>" % (ME, SHOP))
    assert "(the user's own address;" in res.out
    srv.wait_idle()
    assert srv.sessions == []


def test_bv_without_policy_keys_is_unchanged(postino, fault):
    srv = fault()
    conf(postino, srv, None)
    res = postino.run(["-bv", RCPT])
    assert res.out == ("%s... deliverable: mailer relay, host 127.0.0.1, "
                       "user %s\n" % (RCPT, RCPT)), res.describe()


def test_check_refuses_a_bad_allowed_senders_file(postino, fault):
    srv = fault()
    conf(postino, srv, "align", "%s shop@shop.test\n" % ME)
    res = postino.run(["check"])
    assert res.rc == 78, res.describe()
    assert "allowed-senders:1: expected 'login: address, ...'" in res.err
    conf(postino, srv, "align", FILE)
    res = postino.run(["check"])
    assert res.rc == 0, res.describe()
    # ... and tells the sender the caller would get.
    assert "%s... sender: envelope <%s>" % (ME, SHOP) in res.out
    assert "(the user's own address; SenderPolicy=align" in res.out


def test_shipped_example_file(postino, fault):
    """allowed-senders.example parses and means what it says."""
    srv = fault()
    example = os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))),
        "allowed-senders.example")
    conf(postino, srv, "refuse", AllowedSendersFile=example)
    res = postino.run(["check"])
    assert res.rc == 0, res.describe()
    if ME == "root":
        res = postino.run(["-bv", "-f", "ceo@bank.test"])
        assert "envelope <ops@example.com>" in res.out, res.describe()
        assert "refused" in res.out


# -- PHP mail() (sendmail_path), the main user of this ----------------------

PHP = r"""
var_dump(mail("%s", "order", "Hello\n",
    "From: Shop <%s>\r\nContent-Type: text/plain", "%s"));
"""


def php(postino, config, code):
    binary = shutil.which("php")
    if binary is None:
        pytest.skip("php is not installed (apt-get install php-cli)")
    path = "%s -C %s -t -i" % (postino.binary, config)
    p = subprocess.run([binary, "-n", "-d", "sendmail_path=" + path, "-r",
                        code], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=postino.env(),
                       cwd=postino.dir, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_php_mail_aligned(postino, fault):
    srv = fault()
    c = conf(postino, srv, "align", FILE)
    rc, out, err = php(postino, c, PHP % (RCPT, "ceo@bank.test",
                                          "-fceo@bank.test"))
    assert (rc, out, err) == (0, "bool(true)\n", ""), (rc, out, err)
    m, p = one(srv)
    assert p.one("From") == "Shop <%s>" % SHOP
    assert p.one("Reply-To") == "Shop <ceo@bank.test>"
    assert_aligned(m, p, {SHOP})


def test_php_mail_allowed_bounce_address(postino, fault):
    srv = fault()
    c = conf(postino, srv, "refuse", FILE)
    rc, out, err = php(postino, c, PHP % (RCPT, SHOP,
                                          "-fbounce@lists.shop.test"))
    assert (rc, out, err) == (0, "bool(true)\n", ""), (rc, out, err)
    m, p = one(srv)
    assert m.mail_from == "bounce@lists.shop.test"
    assert p.one("From") == "Shop <%s>" % SHOP


def test_php_mail_refused_is_false(postino, fault):
    srv = fault()
    c = conf(postino, srv, "refuse", FILE)
    rc, out, err = php(postino, c, PHP % (RCPT, "ceo@bank.test", ""))
    assert rc == 0 and out == "bool(false)\n", (rc, out, err)
    assert "ceo@bank.test" in err
    srv.wait_idle()
    assert srv.messages == []
    assert postino.queue_entries() == []


# -- as www-data and an ordinary user, through a set-group-ID install -------

USER = "postino-sender1"
GROUP = "postino-sender"
SYSTEM_FILE = ("# shared web host\n"
               "www-data: noreply@shop.test, *@lists.shop.test\n"
               "*: *@%s\n" % DOMAIN)


@pytest.fixture(scope="module")
def accounts():
    yield from accounts_fixture({USER: "Sender Policy Tester"}, GROUP)


inst = pytest.fixture(install_fixture)


def system_conf(inst, srv, policy):
    path = os.path.join(inst.etc, "allowed-senders")
    with open(path, "w") as f:
        f.write(SYSTEM_FILE)
    os.chown(path, 0, inst.gid)
    os.chmod(path, 0o640)     # read with the group, as revaliases
    inst.write_config(MailHub=srv.mailhub(), AliasesFile="",
                      SenderPolicy=policy, AllowedSendersFile=path)


def test_www_data_aligned(inst, fault):
    srv = fault()
    system_conf(inst, srv, "align")
    res = inst.run("www-data", ["-t", "-i"],
                   msg(token(), "From: PayPal <service@paypal.test>"))
    res.ok()
    m, p = one(srv)
    assert p.one("From") == "PayPal <noreply@shop.test>"
    assert p.one("Reply-To") == "PayPal <service@paypal.test>"
    assert_aligned(m, p, {"noreply@shop.test"})


def test_www_data_refused_nothing_queued(inst, fault):
    srv = fault()
    system_conf(inst, srv, "refuse")
    res = inst.run("www-data", ["-f", "service@paypal.test", RCPT],
                   msg(token()))
    assert res.rc == 77, res.describe()
    srv.wait_idle()
    assert srv.messages == [] and inst.queued() == []
    assert "uid=33 login=www-data: refused sender <service@paypal.test>" \
        in inst.log()


def test_user_falls_back_to_the_star_line(inst, fault):
    srv = fault()
    system_conf(inst, srv, "refuse")
    me = "%s@%s" % (USER, DOMAIN)
    res = inst.run(USER, [RCPT], msg(token(), "From: Me <%s>" % me))
    res.ok()
    m, p = one(srv)
    assert m.mail_from == me
    res = inst.run(USER, [RCPT], msg(token(), "From: noreply@shop.test"))
    assert res.rc == 77, res.describe()
