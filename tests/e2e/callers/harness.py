"""Running postino under the name a caller uses, with the test config.

helpers.Postino.run always runs the binary under its own name, so its
stderr says "postino: ...". Real callers run /usr/sbin/sendmail (or
/usr/lib/sendmail, newaliases, mailq), and the program name on stderr and
the personality both come from argv[0]: run() here sets argv[0] and keeps
everything else of helpers.Postino (config, clean environment, log)."""

import os
import subprocess
import threading
import time

import helpers


def config(postino, srv=None, **keys):
    """The test config, hermetic: no /etc/aliases unless asked for."""
    keys.setdefault("AliasesFile", "")
    if srv is not None:
        keys.setdefault("MailHub", srv.mailhub())
    return postino.config(**keys)


def run(postino, args, input=b"", argv0="sendmail", config_path=None,
        env=None, timeout=60, prefix_config=True):
    """Run argv0 -C <config> args (the binary is postino's); without
    prefix_config, args alone (they name the config themselves)."""
    if config_path is None:
        config_path = postino.config_path or config(postino)
    cmd = [argv0] + (["-C", config_path] if prefix_config else [])
    cmd += list(args)
    before = postino._log_size()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, executable=postino.binary,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=postino.env(env),
                            cwd=postino.dir)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("%s %s did not exit within %ds\nstdout: %r\n"
                             "stderr: %r" % (argv0, " ".join(args), timeout,
                                             out, err))
    res = helpers.Result(cmd, proc.returncode, out, err,
                         time.monotonic() - start)
    res.log_text = postino._log_since(before)
    return res


def run_with_big_stdin(postino, args, size=1 << 20, argv0="sendmail",
                       timeout=60):
    """Write size bytes into postino's stdin from a thread, as git
    send-email or MIME::Lite would. Returns (result, writer_error):
    writer_error is the exception the writer got (EPIPE) or None."""
    config_path = postino.config_path or config(postino)
    cmd = [argv0, "-C", config_path] + list(args)
    proc = subprocess.Popen(cmd, executable=postino.binary,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=postino.env(),
                            cwd=postino.dir)
    failure = []
    line = b"x" * 1023 + b"\n"
    data = b"Subject: big\n\n" + line * (size // len(line))

    def writer():
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except OSError as e:        # BrokenPipeError: EPIPE
            failure.append(e)

    t = threading.Thread(target=writer, daemon=True)
    start = time.monotonic()
    t.start()
    try:
        out = proc.stdout.read()
        err = proc.stderr.read()
        rc = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    t.join(timeout)
    proc.stdout.close()
    proc.stderr.close()
    res = helpers.Result(cmd, rc, out, err, time.monotonic() - start)
    return res, (failure[0] if failure else None)


def queued_ids(postino):
    """Ids of the entries waiting in the queue (not the failed area)."""
    return [os.path.basename(p) for p in postino.queue_entries()
            if os.path.basename(os.path.dirname(p)) == "queue"]


def usage_error(res, srv=None, progname="sendmail"):
    """Exit 64, nothing on stdout, one "sendmail: ..." line on stderr (the
    program name is argv[0]'s base name), and nothing reached the hub."""
    assert res.rc == 64, res.describe()
    assert res.stdout == b"", res.describe()
    lines = res.err_lines()
    assert len(lines) == 1 and lines[0].startswith(progname + ": "), \
        res.describe()
    if srv is not None:
        nothing_sent(srv)


def nothing_sent(srv):
    srv.wait_idle()
    assert not any(s.saw("MAIL") for s in srv.sessions), srv.commands()
    assert srv.messages == []
