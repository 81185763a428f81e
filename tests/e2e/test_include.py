"""Include = PATTERN in ssmtp.conf (ssmtp.conf(5) "INCLUDED FILES"), seen
through `postino check`, which a configuration tool runs before it
deploys: files of a conf.d read in strcmp order at the Include line
(later keys win), every diagnostic naming the included file and line, a
conf.d that matches nothing accepted, a loop refused, the AuthPass
permission rule applied to the included file itself; and a message
sent with the included settings."""

import os

from helpers import message, token


def conf_d(postino, files):
    d = os.path.join(postino.dir, "conf.d")
    os.makedirs(d, exist_ok=True)
    for name, (text, mode) in files.items():
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
    return d


def test_check_reads_conf_d_in_order(postino):
    d = conf_d(postino, {
        "20-hub.conf": ("MailHub = second.example.org:587\n", 0o644),
        "10-hub.conf": ("MailHub = first.example.org\nUseSTARTTLS=YES\n",
                        0o644),
    })
    postino.config(MailHub="main.example.org", Include=d + "/*.conf",
                   RewriteDomain="example.org")
    res = postino.run(["check"])
    assert res.rc == 0, res.describe()
    assert "hub second.example.org port 587, STARTTLS, domain example.org" \
        in res.out


def test_check_names_the_included_file(postino):
    d = conf_d(postino, {"50-tool.conf": ("# dropped by a tool\n"
                                          "MailHub=h.example.org\n"
                                          "Bogus=1\n", 0o644)})
    postino.config(Include=d + "/*.conf")
    res = postino.run(["check"])
    assert res.rc == 78, res.describe()
    assert d + "/50-tool.conf:3: unknown key 'Bogus'" in res.err


def test_check_accepts_an_empty_conf_d(postino):
    postino.config(Include=os.path.join(postino.dir, "none.d") + "/*.conf")
    res = postino.run(["check"])
    assert res.rc == 0, res.describe()


def test_check_refuses_a_loop(postino):
    d = conf_d(postino, {})
    path = postino.config(Include=d + "/*.conf")
    conf_d(postino, {"loop.conf": ("Include=%s\n" % path, 0o644)})
    res = postino.run(["check"])
    assert res.rc == 78, res.describe()
    assert d + "/loop.conf:1: Include: " in res.err
    assert "include loop" in res.err


def test_included_auth_pass_must_be_private(postino):
    d = conf_d(postino, {"auth.conf": ("AuthUser=u\nAuthPass=pw-xyzzy\n"
                                       "UseSTARTTLS=YES\n", 0o644)})
    postino.config(Include=d + "/auth.conf")
    res = postino.run(["check"])
    assert res.rc == 78, res.describe()
    assert d + "/auth.conf holds AuthPass but is readable by every user" \
        in res.err
    assert "pw-xyzzy" not in res.err
    os.chmod(os.path.join(d, "auth.conf"), 0o640)
    res = postino.run(["check"])
    assert res.rc == 0, res.describe()


def test_send_uses_included_hub(postino, fault):
    srv = fault()
    d = conf_d(postino, {"hub.conf": ("MailHub=%s\n" % srv.mailhub(),
                                      0o644)})
    postino.config(MailHub="unused.invalid", Include=d + "/*.conf")
    tok = token()
    res = postino.run(["-i", "rcpt@example.org"], input=message(tok))
    res.ok()
    (msg,) = srv.messages
    assert tok.encode() in msg.content
