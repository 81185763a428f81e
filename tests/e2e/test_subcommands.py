"""postino's own subcommands (postino(8)): `postino check` reads the
configuration strictly, `postino verify` is `sendmail -bv`. The binary
is run as `postino`, so a first argument naming a subcommand runs it."""

import os


def run_postino(postino, args):
    # "-C file" first: both "postino -C f check" and "postino check -C f"
    # are accepted; helpers.Postino.run puts -C in front.
    return postino.run(args)


def test_check_accepts_a_good_config(postino):
    postino.config(MailHub="hub.example.org:587", UseSTARTTLS="YES",
                   RewriteDomain="example.org")
    res = run_postino(postino, ["check"])
    assert res.rc == 0, res.describe()
    assert res.err == ""
    assert "ok; hub hub.example.org port 587, STARTTLS, domain example.org" \
        in res.out


def test_check_fails_on_an_unknown_key(postino):
    postino.config(MailHub="hub.example.org", Bogus="1")
    res = run_postino(postino, ["check"])
    assert res.rc == 78, res.describe()
    assert "unknown key 'Bogus'" in res.err
    assert res.out == ""


def test_check_fails_on_a_bad_value(postino):
    postino.config(MailHub="hub.example.org", UseTLS="maybe")
    res = run_postino(postino, ["check"])
    assert res.rc == 78, res.describe()
    assert "UseTLS" in res.err


def test_check_fails_on_a_skipped_alias_line(postino):
    aliases = os.path.join(postino.dir, "aliases")
    with open(aliases, "w") as f:
        f.write("root: ops@example.org\nbackup: |/usr/bin/backup\n")
    postino.config(MailHub="hub.example.org", AliasesFile=aliases)
    res = run_postino(postino, ["check"])
    assert res.rc == 78, res.describe()
    assert "aliases:2" in res.err


def test_check_takes_no_operands(postino):
    postino.config(MailHub="hub.example.org")
    res = run_postino(postino, ["check", "extra"])
    assert res.rc == 64, res.describe()


def test_verify_is_bv(postino):
    aliases = os.path.join(postino.dir, "aliases")
    with open(aliases, "w") as f:
        f.write("root: ops@example.org, oncall@example.org\n")
    postino.config(MailHub="hub.example.org", RewriteDomain="example.org",
                   AliasesFile=aliases)
    res = run_postino(postino, ["verify", "root", "someone@example.net"])
    assert res.rc == 0, res.describe()
    assert res.out.splitlines() == [
        "root... deliverable: mailer relay, host hub.example.org, "
        "user ops@example.org",
        "root... deliverable: mailer relay, host hub.example.org, "
        "user oncall@example.org",
        "someone@example.net... deliverable: mailer relay, host "
        "hub.example.org, user someone@example.net",
    ]
    bad = run_postino(postino, ["verify", "a b c"])
    assert bad.rc == 67, bad.describe()
    assert "Invalid address" in bad.out
