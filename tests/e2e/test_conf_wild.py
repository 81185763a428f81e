"""ssmtp.conf files as found in the wild (issue 15): read as ssmtp read
them where that is safe, and `postino check` predicting what the first
send will do. The files are written like those of real hosts (tutorials,
Ansible roles, Docker images); each test adds only what makes them
hermetic (QueueDir, LogFile, RevaliasesFile, no aliases)."""

import os

import pytest

from callers import harness

PASS = "s3cr#t"
USER = "alerts@example.org"


def wild(postino, text, hub=None):
    """A config file: text as a host would have it, then our own keys."""
    tail = ["QueueDir=%s" % postino.queue_dir,
            "LogFile=%s" % postino.logfile,
            "RevaliasesFile=%s" % postino.revaliases,
            "AliasesFile=",
            "Timeout=10"]
    if hub is not None:
        tail.insert(0, "mailhub=%s" % hub.mailhub())
    return postino.raw_config(text + "\n".join(tail) + "\n")


def send(postino, to="ops@example.org"):
    msg = ("To: %s\nSubject: cron\n\nbackup done\n" % to).encode()
    return harness.run(postino, ["-i", to], msg)


def check(postino):
    return postino.run(["check"], argv0="postino")


# -- 1. an e-mail address as hostname= -----------------------------------

TUTORIAL = """\
# Config file for sSMTP sendmail
root=postmaster
hostname=youralerts@gmail.com
FromLineOverride=YES
"""


def test_address_as_hostname_sends(postino, fault):
    srv = fault()
    wild(postino, TUTORIAL, hub=srv)
    res = send(postino)
    assert res.rc == 0, res.describe()
    assert len(srv.messages) == 1
    ehlo = [c for c in srv.commands() if c.upper().startswith("EHLO")]
    # The machine's name, not the address, nor gmail.com.
    assert ehlo and "@" not in ehlo[0] and "gmail.com" not in ehlo[0]
    assert "root@gmail.com" not in " ".join(srv.commands())
    # Part 6: the warning reaches LogFile, not only syslog.
    assert "HostName: 'youralerts@gmail.com' is not a host name" in \
        postino.log_text()


def test_address_as_hostname_is_a_check_finding(postino):
    wild(postino, TUTORIAL, hub=None)
    res = check(postino)
    assert res.rc == 78, res.describe()
    assert "raw.conf:3: HostName: 'youralerts@gmail.com' is not a host " \
        "name; using the machine's name" in res.err


# -- 2. a comment after a value ------------------------------------------

COMMENTED = """\
#
# /etc/ssmtp/ssmtp.conf -- managed by hand
#
hostname=mycomputer.example.org\t# Very important: the FQDN
AuthUser=%s # my account
AuthPass=%s   # app password
AuthAllowPlaintext=YES # loopback hub
FromLineOverride=YES # let cron set From
""" % (USER, PASS)


def test_comment_after_value_is_not_data(postino, fault):
    srv = fault(auth={USER: PASS}, auth_plaintext=True)
    wild(postino, COMMENTED, hub=srv)
    res = send(postino)
    assert res.rc == 0, res.describe()
    assert len(srv.messages) == 1, res.describe()
    # The user and password without the comments: AUTH succeeded (the
    # hub checks the password; CRAM-MD5 records only its digest).
    assert [(a[1], a[3]) for a in srv.sessions[0].auth] == [(USER, True)]
    assert "EHLO mycomputer.example.org" in srv.commands()
    res = check(postino)
    assert res.rc == 0, res.describe()


# -- 3. a stray line without '=' -----------------------------------------

STRAY = """\
# ssmtp for the backup box
install ssmtp and mailx, then:
root=ops@example.org
"""


def test_stray_line_is_skipped_with_a_warning(postino, fault):
    srv = fault()
    wild(postino, STRAY, hub=srv)
    res = send(postino)
    assert res.rc == 0, res.describe()
    assert len(srv.messages) == 1
    assert "raw.conf:2: line without '=' skipped" in postino.log_text()
    res = check(postino)
    assert res.rc == 78, res.describe()
    assert "raw.conf:2: line without '=' skipped" in res.err


@pytest.mark.parametrize("line,key", [
    ("mailhub:smtp.example.org", "MailHub"),
    ("AuthPass[hunter2]", "AuthPass"),
    ("UseTLS YES", "UseTLS"),
])
def test_mistyped_key_is_still_refused(postino, fault, line, key):
    srv = fault()
    wild(postino, "root=ops@example.org\n%s\n" % line, hub=srv)
    res = send(postino)
    assert res.rc == 78, res.describe()
    assert "raw.conf:2: %s: expected '='" % key in res.err
    assert "hunter2" not in res.err
    assert srv.messages == []


def test_bad_boolean_and_open_secret_are_still_refused(postino, fault):
    srv = fault()
    wild(postino, "UseSTARTTLS=maybe # we'll see\n", hub=srv)
    res = send(postino)
    assert res.rc == 78 and "UseSTARTTLS: expected YES or NO" in res.err
    path = wild(postino, "AuthUser=%s # me\nAuthPass=%s\n" % (USER, PASS),
                hub=srv)
    os.chmod(path, 0o644)
    res = send(postino)
    assert res.rc == 78, res.describe()
    assert "readable by every user" in res.err
    assert srv.messages == []


# -- 4. UseTLS=NO then UseSTARTTLS=YES (an Ansible role's output) ----------

def test_usetls_no_then_starttls_is_quiet(postino):
    wild(postino, "mailhub=smtp.example.org:587\nUseTLS=NO\n"
         "UseSTARTTLS=YES\n")
    res = check(postino)
    assert res.rc == 0, res.describe()
    assert res.err == ""
    assert "STARTTLS" in res.out


def test_starttls_then_usetls_no_warns(postino):
    wild(postino, "mailhub=smtp.example.org:587\nUseSTARTTLS=YES\n"
         "UseTLS=NO\n")
    res = check(postino)
    assert res.rc == 78, res.describe()
    assert "raw.conf:3: UseTLS=NO after UseSTARTTLS=YES ignored" in res.err


# -- 5. check predicts the first send ------------------------------------

def test_check_finds_auth_without_tls(postino):
    wild(postino, "mailhub=smtp.example.org\nAuthUser=%s\nAuthPass=%s\n"
         % (USER, PASS))
    res = check(postino)
    assert res.rc == 78, res.describe()
    assert "raw.conf:2: AuthUser is set but the connection to the hub " \
        "is not encrypted" in res.err
    assert PASS not in res.err and USER not in res.err
    assert res.out == ""


def test_check_finds_a_missing_ca_file(postino):
    wild(postino, "mailhub=smtp.example.org:465\nUseTLS=YES\n"
         "TLS_CA_File=/etc/pki/tls/certs/ca-bundle.crt\n")
    res = check(postino)
    assert res.rc == 78, res.describe()
    assert "raw.conf:3: TLS_CA_File: /etc/pki/tls/certs/ca-bundle.crt: " \
        "No such file or directory" in res.err


def test_check_finds_client_files_senders_cannot_read(postino):
    cert = os.path.join(postino.dir, "client.pem")
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
    os.chmod(cert, 0o600)
    wild(postino, "mailhub=smtp.example.org:587\nUseSTARTTLS=YES\n"
         "UseTLSCert=YES\nTLSCert=%s\nTLS_CA_Dir=/nonexistent/certs\n"
         % cert)
    res = check(postino)
    assert res.rc == 78, res.describe()
    assert "raw.conf:4: TLSCert: %s: mode 0600" % cert in res.err
    assert "raw.conf:5: TLS_CA_Dir: /nonexistent/certs" in res.err


# -- 6. warnings go where the other log lines go ---------------------------

def test_warning_reaches_logfile_and_check_stderr(postino, fault):
    srv = fault()
    wild(postino, "root=ops@example.org\nFrobnicate=YES\n", hub=srv)
    res = send(postino)
    assert res.rc == 0, res.describe()
    assert res.err == ""
    assert "warning: %s:2: unknown key 'Frobnicate' ignored" % \
        postino.config_path in postino.log_text()
    res = check(postino)
    assert res.rc == 78
    assert "raw.conf:2: unknown key 'Frobnicate' ignored" in res.err
