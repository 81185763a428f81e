"""The set-group-ID privilege, secrets and the caller's environment, end
to end, with postino installed as a packager would (privhelpers.Install:
binary 2755 root:GROUP, config 0640 root:GROUP holding AuthPass, queue
2770 root:GROUP) and run by a user who holds no group at all.

What DESIGN.md (Privilege) and the man pages promise and is asserted
here: the user can submit although they can read neither the config nor
the queue; -C from that user gives the group up before the file is
opened (the 0640 config: exit 78; their own config: fine, but the
system queue is then not theirs, exit 73); the message is read and the
network spoken with the user's own group as effective group (the
setgid group kept only as the saved set-group-ID); the process cannot
be dumped or inspected by the user; AuthPass never shows in argv, in
the -v transcript, in the log (Debug=YES included), or in the queue; a
config holding AuthPass, or an AuthPassFile, readable or writable by
every user is refused with exit 78 and chmod advice; HOME, USER,
LOGNAME, TMPDIR, PATH and the umask of the caller change nothing.

Needs root (skipped otherwise).
"""

import os
import random
import re
import stat
import string
import subprocess

import pytest

from helpers import DOMAIN, parse, token, unused_port, wait_until
from privhelpers import (GROUP, SYSTEM_CONF, USERS, accounts_fixture, ids,
                         install_fixture, leaks, wait_exec, wait_ids)

accounts = pytest.fixture(scope="module")(accounts_fixture)
inst = pytest.fixture(install_fixture)

USER = "postino-t1"
RELAY_USER = "relay-account"
RCPT = "rcpt@example.org"


def secret():
    # 20 random letters: nothing in a transcript matches it by chance.
    return "Pw" + "".join(random.choice(string.ascii_letters)
                          for _ in range(20))


def authenticated(srv, password):
    """The hub checked the password (PLAIN and LOGIN show it, CRAM-MD5 is
    an HMAC keyed with it): the secret was read and used."""
    mech, user, shown, ok = srv.sessions[0].auth[-1]
    return user == RELAY_USER and ok is True and (
        mech == "CRAM-MD5" or shown == password)


def msg(tok):
    return ("To: %s\nSubject: priv %s\n\nbody %s\n"
            % (RCPT, tok, tok)).encode()


def uid_gid(inst, user=USER):
    pw = inst.acc.users[user]
    return pw.pw_uid, pw.pw_gid


def auth_hub(fault, password, **kw):
    return fault(auth={RELAY_USER: password}, auth_plaintext=True, **kw)


def auth_keys(srv, password, **keys):
    k = {"MailHub": srv.mailhub(), "AuthUser": RELAY_USER,
         "AuthPass": password, "AuthAllowPlaintext": "YES"}
    k.update(keys)
    return k


def assert_no_other_access(inst, paths):
    """Everything in the queue and the log belongs to the group and is
    closed to other users."""
    assert paths
    for p in paths:
        st = os.lstat(p)
        assert st.st_mode & 0o007 == 0, "%s is mode %04o" % (
            p, stat.S_IMODE(st.st_mode))
        assert st.st_gid == inst.gid, "%s has group %d, not %s" % (
            p, st.st_gid, GROUP)


# -- the setgid installation works for an ordinary user -------------------

def test_user_cannot_reach_config_or_queue_directly(inst):
    inst.write_config(AuthPass=secret())
    tok = token()
    assert inst.as_user(USER, ["/bin/cat", inst.conf]) != 0
    assert inst.as_user(USER, ["/bin/cat", inst.revaliases]) != 0
    assert inst.as_user(USER, ["/bin/ls", inst.queue_dir]) != 0
    assert inst.as_user(USER, ["/usr/bin/touch",
                               os.path.join(inst.queue_dir, tok)]) != 0
    # The same tools work for root: the refusals above are the modes.
    assert subprocess.run(["/bin/cat", inst.conf],
                          stdout=subprocess.DEVNULL).returncode == 0


def test_user_submits_through_the_group(inst, fault):
    password = secret()
    srv = auth_hub(fault, password)
    inst.write_config(**auth_keys(srv, password))
    tok = token()
    res = inst.run(USER, [RCPT], msg(tok))
    res.ok()
    srv.wait_idle()
    assert len(srv.messages) == 1, res.describe()
    m = srv.messages[0]
    assert m.mail_from == "%s@%s" % (USER, DOMAIN)
    assert tok.encode() in m.content
    # AuthPass came out of the 0640 file the user cannot read.
    assert authenticated(srv, password), srv.sessions[0].auth
    uid, _ = uid_gid(inst)
    assert re.search(r"uid=%d from=<%s@" % (uid, USER), inst.log())
    assert inst.queued() == []


@pytest.mark.parametrize("how", ["hub down", "-odq"])
def test_user_submission_is_queued_with_the_group(inst, how):
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port(),
                      AuthPass=secret(), AuthUser=RELAY_USER,
                      AuthAllowPlaintext="YES")
    tok = token()
    args = ["-odq", RCPT] if how == "-odq" else [RCPT]
    res = inst.run(USER, args, msg(tok))
    assert res.rc == 0, res.describe()
    assert len(inst.queued()) == 1, res.describe()
    files = inst.queue_files()
    assert_no_other_access(inst, files)
    assert any(tok.encode() in open(f, "rb").read() for f in files)
    for f in files:
        assert inst.as_user(USER, ["/bin/cat", f]) != 0, f


# -- one queue, many users ---------------------------------------------------

UMASK_BUG = (
    "postino bug: queue_prepare() (queue.c) and open_counter() "
    "(ratelimit.c) mkdir the queue areas with 0770 under the caller's "
    "umask, so under the common umask 022 the first user to queue "
    "creates data/, queue/ and failed/ as 2750 owned by that user; every "
    "other non-root user then gets exit 73 'cannot commit "
    "QUEUEDIR/data/QID: Permission denied'")

SWEEP_BUG = (
    "postino bug: control_exists() (queue.c) tests the control file with "
    "access(2), which uses the REAL ids; in the setgid install the "
    "caller's real group cannot search QueueDir, so queue_sweep() takes "
    "every data file the caller can open for an orphan and unlinks it: "
    "-odb by a non-root user exits 0 and the message is silently lost, "
    "and so is everything they queued when they run sendmail -q")

OTHER_USER_BUG = (
    "postino bug: the data file is created 0600 (message_spool_create, "
    "O_TMPFILE), so a queue run by another non-root member of the "
    "group (their sendmail -q, or the runner spawned after their own "
    "submission) cannot read it: 'unusable queue entry: Permission "
    "denied'; only root's runs can deliver it. " + UMASK_BUG)


def test_second_user_can_queue(inst):
    inst.write_config(MailHub="127.0.0.1:%d" % unused_port())
    res = [inst.run(user, ["-odq", RCPT], msg(token()), umask=0o022)
           for user in (USER, "postino-t2", USER)]
    assert [r.rc for r in res] == [0, 0, 0], "\n".join(
        r.describe() for r in res)
    assert len(inst.queued()) == 3


def test_background_delivery_by_user(inst, fault):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub())
    tok = token()
    res = inst.run(USER, ["-odb", RCPT], msg(tok))
    res.ok()
    assert wait_until(lambda: srv.messages, 5), (
        "-odb: exit 0 but never delivered; queue files left: %r\n%s" % (
            inst.queue_files(), inst.log()))
    assert tok.encode() in srv.messages[0].content
    assert wait_until(lambda: inst.queued() == [], 5), inst.queue_files()


def test_queue_run_by_the_user_delivers_their_queue(inst, fault):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub())
    toks = [token(), token()]
    for tok in toks:
        assert inst.run(USER, ["-odq", RCPT], msg(tok)).rc == 0
    res = inst.run(USER, ["-q"])
    assert res.rc == 0, res.describe()
    srv.wait_idle()
    got = sorted(t for t in toks for m in srv.messages
                 if t.encode() in m.content)
    assert got == sorted(toks), ("sendmail -q as the user delivered %d of "
                                 "2; queue files left: %r\n%s" % (
                                     len(got), inst.queue_files(),
                                     inst.log()))
    assert inst.queued() == []


def test_queue_run_by_another_user_leaves_it_to_root(inst, fault):
    """A user's -q takes only that user's entries (a user can stop the
    run they started: postino(8) SECURITY); its owner's run, or root's,
    delivers it.
    (Until issue 9 item 19, another user's -q delivered it.)"""
    srv = fault()
    inst.write_config(MailHub=srv.mailhub())
    tok = token()
    assert inst.run(USER, ["-odq", RCPT], msg(tok), umask=0o022).rc == 0
    res = inst.run("postino-t2", ["-q"], umask=0o022)
    assert res.rc == 0, res.describe()
    srv.wait_idle()
    assert len(srv.messages) == 0, inst.log()
    assert len(inst.queued()) == 1
    res = inst.run(USER, ["-q"], umask=0o022)
    assert res.rc == 0, res.describe()
    srv.wait_idle()
    assert len(srv.messages) == 1, inst.log()
    assert inst.queued() == []


# -- -C -------------------------------------------------------------------

def test_C_with_the_system_config_is_refused_to_a_user(inst, fault):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), AuthPass=secret())
    tok = token()
    res = inst.run(USER, ["-C", inst.conf, RCPT], msg(tok))
    assert res.rc == 78, res.describe()
    assert inst.conf in res.err and "Permission denied" in res.err, \
        res.describe()
    assert res.err.count("\n") == 1, res.describe()
    assert srv.sessions == [] and inst.queued() == []
    # The file itself is a good config: root may name it with -C.
    res = inst.run(None, ["-C", inst.conf, RCPT], msg(tok))
    res.ok()


def test_C_with_own_config_loses_the_system_queue(inst, fault):
    srv = fault()
    tok = token()
    own = inst.user_config(USER, own_queue=False, MailHub=srv.mailhub())
    res = inst.run(USER, ["-C", own, RCPT], msg(tok))
    assert res.rc == 73, res.describe()
    assert inst.queue_dir in res.err, res.describe()
    assert srv.sessions == [] and inst.queue_files() == []
    # With QueueDir pointing at the user's own directory it works.
    own = inst.user_config(USER, MailHub=srv.mailhub())
    res = inst.run(USER, ["-C", own, RCPT], msg(tok))
    res.ok()
    srv.wait_idle()
    assert len(srv.messages) == 1
    assert srv.messages[0].mail_from == "%s@%s" % (USER, DOMAIN)


# -- where the group is held ----------------------------------------------

def test_message_is_read_without_the_group(inst, fault):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), AuthPass=secret())
    uid, ugid = uid_gid(inst)
    tok = token()
    p = inst.popen(USER, [RCPT])
    try:
        assert wait_exec(p.pid, inst.bin), "postino did not start"
        p.stdin.write(b"To: %s\n" % RCPT.encode())
        p.stdin.flush()
        # Still reading: stdin is open, the message not complete.
        got = wait_ids(p.pid, "Gid", (ugid, ugid, inst.gid, ugid))
        assert p.poll() is None
        assert got == (ugid, ugid, inst.gid, ugid), (
            "while reading stdin: Gid (real, effective, saved, fs) %r, "
            "want the user's %d effective and %s (%d) only saved"
            % (got, ugid, GROUP, inst.gid))
        assert ids(p.pid, "Uid") == (uid,) * 4
        out, err = p.communicate(msg(tok), timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and err == b"", err
    srv.wait_idle()
    assert len(srv.messages) == 1 and tok.encode() in srv.messages[0].content


def client_cert_keys(inst, certs):
    """UseTLSCert with the client key at 0640 root:GROUP: the one thing
    the network phase may need the group for, while the session opens."""
    cert = os.path.join(inst.etc, "client.pem")
    key = os.path.join(inst.etc, "client.key")
    with open(certs.client.cert, "rb") as f, open(cert, "wb") as g:
        g.write(f.read())
    with open(certs.client.key, "rb") as f, open(key, "wb") as g:
        g.write(f.read())
    os.chmod(cert, 0o644)
    os.chown(key, 0, inst.gid)
    os.chmod(key, 0o640)
    assert inst.as_user(USER, ["/bin/cat", key]) != 0
    return {"UseSTARTTLS": "YES", "TLS_CA_File": certs.ca.cert,
            "UseTLSCert": "YES", "TLSCert": cert, "TLSKey": key}


# Where the hub stops answering, and what the session has done by then.
STALLS = {
    "greeting": lambda s: True,                 # connected
    "auth": lambda s: bool(s.auth),             # AUTH sent, no reply
    "mail": lambda s: s.saw("MAIL"),            # authenticated, MAIL sent
    "mail, UseTLSCert": lambda s: s.saw("MAIL"),
}


@pytest.mark.parametrize("stall", list(STALLS))
def test_network_runs_without_the_group(inst, fault, request, stall):
    password = secret()
    step = stall.split(",")[0]
    keys = {"Timeout": "2"}
    srv_kw = {"stall_at": step}
    if "UseTLSCert" in stall:
        certs = request.getfixturevalue("certs")
        keys.update(client_cert_keys(inst, certs))
        srv_kw.update(tls_cert=certs.server.cert, tls_key=certs.server.key)
    srv = auth_hub(fault, password, **srv_kw)
    inst.write_config(**auth_keys(srv, password, **keys))
    uid, ugid = uid_gid(inst)
    tok = token()
    p = inst.popen(USER, [RCPT])
    try:
        assert wait_exec(p.pid, inst.bin), "postino did not start"
        p.stdin.write(msg(tok))
        p.stdin.close()
        assert wait_until(lambda: any(STALLS[stall](s)
                                      for s in srv.sessions), 10), \
            "postino never reached the %s step" % step
        gid_line = ids(p.pid, "Gid")
        uid_line = ids(p.pid, "Uid")
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            cmdline = f.read()
        with open("/proc/%d/environ" % p.pid, "rb") as f:
            environ = f.read()
        ps = subprocess.run(["ps", "-eo", "pid,args"],
                            stdout=subprocess.PIPE).stdout
        assert p.poll() is None, "postino exited before the check"
        out = p.stdout.read()
        err = p.stderr.read()
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert gid_line == (ugid, ugid, inst.gid, ugid), (
        "waiting for the hub's %s reply: Gid (real, effective, saved, fs) "
        "%r, want the user's %d effective and %s (%d) only saved"
        % (step, gid_line, ugid, GROUP, inst.gid))
    assert uid_line == (uid,) * 4
    if step == "mail":
        assert authenticated(srv, password), srv.sessions[0].auth
    if "UseTLSCert" in stall:
        assert srv.sessions[0].tls, srv.sessions[0].events
    for where, blob in (("argv", cmdline), ("environment", environ),
                        ("ps", ps)):
        assert not leaks(password, blob), where
    # The timeout queued it: the group was taken back for the commit.
    assert p.returncode == 0 and out == b"", err
    assert len(inst.queued()) == 1, err
    assert_no_other_access(inst, inst.queue_files())


@pytest.mark.parametrize("how", ["setgid", "plain binary, own config"])
def test_process_is_not_dumpable(inst, fault, how):
    """PR_SET_DUMPABLE 0 makes /proc/PID/* owned by root although the
    process runs as the user: no core file, no ptrace, no /proc/PID/mem
    for the user. A setgid exec has the kernel do that on its own, so
    the plain binary (no set-group-ID bit, the user's own config) is
    the case that shows postino asks for it."""
    srv = fault()
    inst.write_config(MailHub=srv.mailhub(), AuthPass=secret())
    uid, _ = uid_gid(inst)
    if how == "setgid":
        binary, args = inst.bin, [RCPT]
    else:
        own = inst.user_config(USER, MailHub=srv.mailhub(),
                               AuthPass=secret())
        binary, args = inst.plain, ["-C", own, RCPT]
    p = inst.popen(USER, args, binary=binary)
    try:
        assert wait_exec(p.pid, binary), "postino did not start"
        path = "/proc/%d/status" % p.pid
        wait_until(lambda: os.stat(path).st_uid == 0, 5)
        owner = os.stat(path).st_uid
        assert p.poll() is None, "postino exited before the check"
        assert ids(p.pid, "Uid") == (uid,) * 4
        assert owner == 0, ("/proc/PID/status owned by uid %d: the "
                            "process is dumpable" % owner)
        # And so the user cannot read its memory map.
        assert inst.as_user(USER, ["/bin/cat", "/proc/%d/maps" % p.pid]) \
            != 0
        out, err = p.communicate(msg(token()), timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err


# -- secrets ----------------------------------------------------------------

@pytest.mark.parametrize("method", ["plain", "login", "cram-md5"])
def test_password_not_in_transcript_or_debug_log(inst, fault, method):
    password = secret()
    srv = auth_hub(fault, password)
    inst.write_config(**auth_keys(srv, password, AuthMethod=method,
                                  Debug="YES"))
    res = inst.run(USER, ["-v", RCPT], msg(token()))
    assert res.rc == 0 and res.stderr == b"", res.describe()
    s = srv.sessions[0]
    assert s.auth and s.auth[-1][3] is True, s.auth
    if method != "cram-md5":
        assert s.auth[-1][2] == password
    log = inst.log()
    # The transcripts are there, AUTH included: the check below has
    # something to look at.
    assert re.search(r"^>>> AUTH", res.out, re.M), res.out
    assert ">>> AUTH" in log, log
    for where, blob in (("-v output", res.stdout), ("stderr", res.stderr),
                        ("log", log)):
        assert not leaks(password, blob), (where, leaks(password, blob))


def test_password_not_in_queue_after_auth_failure(inst, fault):
    password = secret()
    srv = auth_hub(fault, "not-" + password)   # the hub refuses it
    inst.write_config(**auth_keys(srv, password, AuthMethod="plain",
                                  Debug="YES"))
    res = inst.run(USER, ["-v", RCPT], msg(token()))
    assert res.rc == 0, res.describe()
    assert srv.sessions[0].auth[-1][2] == password     # it was sent
    assert len(inst.queued()) == 1, res.describe()
    blobs = [("stdout", res.stdout), ("stderr", res.stderr),
             ("log", inst.log())]
    blobs += [(f, open(f, "rb").read()) for f in inst.queue_files()]
    for where, blob in blobs:
        assert not leaks(password, blob), (where, leaks(password, blob))


@pytest.mark.parametrize("form", ["separate", "attached"])
def test_password_on_the_command_line_is_refused(inst, fault, form):
    srv = fault()
    inst.write_config(MailHub=srv.mailhub())
    password = secret()
    args = ["-ap", password] if form == "separate" else ["-ap" + password]
    res = inst.run(USER, args + [RCPT], msg(token()))
    assert res.rc == 64, res.describe()
    assert not leaks(password, res.stderr + res.stdout)
    assert not leaks(password, inst.log())
    assert srv.sessions == []


@pytest.mark.parametrize("mode,word", [(0o644, "readable"),
                                       (0o642, "writable"),
                                       (0o646, "writable")])
def test_config_with_authpass_open_to_all_is_refused(inst, fault, mode,
                                                     word):
    srv = fault()
    inst.write_config(mode=mode, MailHub=srv.mailhub(), AuthPass=secret())
    res = inst.run(USER, [RCPT], msg(token()))
    assert res.rc == 78, res.describe()
    lines = res.err_lines()
    assert len(lines) == 1, res.describe()
    # The compiled-in path, as postino sees it.
    assert SYSTEM_CONF in lines[0] and "AuthPass" in lines[0], lines
    assert word in lines[0] and re.search(r"\bchmod\b", lines[0]), lines
    assert srv.sessions == [] and inst.queue_files() == []


def test_config_without_secret_may_be_world_readable(inst, fault):
    srv = fault()
    inst.write_config(mode=0o644, MailHub=srv.mailhub())
    res = inst.run(USER, [RCPT], msg(token()))
    res.ok()
    srv.wait_idle()
    assert len(srv.messages) == 1


@pytest.mark.parametrize("mode,word", [(0o644, "readable"),
                                       (0o602, "writable")])
def test_authpassfile_open_to_all_is_refused(inst, fault, mode, word):
    password = secret()
    srv = auth_hub(fault, password)
    pass_file = os.path.join(inst.etc, "relay-password")
    with open(pass_file, "w") as f:
        f.write(password + "\n")
    os.chown(pass_file, 0, inst.gid)
    keys = auth_keys(srv, password, AuthPass=None, AuthPassFile=pass_file)

    # 0640 root:GROUP: the user cannot read it, postino can.
    os.chmod(pass_file, 0o640)
    inst.write_config(**keys)
    assert inst.as_user(USER, ["/bin/cat", pass_file]) != 0
    res = inst.run(USER, [RCPT], msg(token()))
    res.ok()
    assert authenticated(srv, password), srv.sessions[0].auth

    os.chmod(pass_file, mode)
    res = inst.run(USER, [RCPT], msg(token()))
    assert res.rc == 78, res.describe()
    lines = res.err_lines()
    assert len(lines) == 1, res.describe()
    assert pass_file in lines[0] and "AuthPassFile" in lines[0], lines
    assert word in lines[0] and re.search(r"\bchmod\b", lines[0]), lines
    assert not leaks(password, res.stderr)
    assert len(srv.sessions) == 1


# -- the caller's environment ---------------------------------------------

@pytest.mark.parametrize("how", ["setgid", "own config"])
def test_hostile_environment_changes_nothing(inst, fault, how):
    srv = fault()
    base = os.path.join(inst.base, "hostile")
    evil = {d: os.path.join(base, d) for d in ("home", "tmp", "bin")}
    for d in evil.values():
        os.makedirs(d)
        os.chmod(d, 0o777)
    marker = os.path.join(base, "ran")
    for prog in ("sh", "hostname", "sendmail", "postino", "cat", "mail",
                 "id", "whoami", "getent"):
        path = os.path.join(evil["bin"], prog)
        with open(path, "w") as f:
            f.write("#!/bin/sh\ntouch %s\n" % marker)
        os.chmod(path, 0o755)
    env = {"HOME": evil["home"], "USER": "root", "LOGNAME": "root",
           "TMPDIR": evil["tmp"], "PATH": evil["bin"],
           "MAIL": "/var/mail/root", "USERNAME": "root"}
    if how == "setgid":
        inst.write_config(MailHub=srv.mailhub(), AuthPass=secret())
        args, queue = [], inst.queue_dir
    else:
        own = inst.user_config(USER, MailHub=srv.mailhub())
        args, queue = ["-C", own], os.path.join(inst.home(USER), "queue")
    uid, _ = uid_gid(inst)
    gecos = USERS[USER]
    sender = "%s@%s" % (USER, DOMAIN)

    tok = token()
    res = inst.run(USER, args + [RCPT], msg(tok), env=env, umask=0)
    res.ok()
    srv.wait_idle()
    assert len(srv.messages) == 1
    m = srv.messages[0]
    assert m.mail_from == sender
    frm = parse(m.content).one("From")
    assert sender in frm and gecos in frm and "root" not in frm, frm
    # -odq: queue files made under umask 0 stay closed to others.
    res = inst.run(USER, args + ["-odq", RCPT], msg(token()), env=env,
                   umask=0)
    assert res.rc == 0, res.describe()
    files = inst.queue_files(queue)
    assert files
    for f in files:
        assert os.lstat(f).st_mode & 0o007 == 0, f
    assert not os.path.exists(marker), "postino ran a program from $PATH"
    for d in ("home", "tmp"):
        assert os.listdir(evil[d]) == [], "postino wrote into $%s" % (
            d.upper())
    log = inst.log() if how == "setgid" else inst.user_log(USER)
    assert re.search(r"uid=%d from=<%s>" % (uid, re.escape(sender)), log)
