"""Running postino under the name a caller uses, with the test config.

Real callers run /usr/sbin/sendmail (or /usr/lib/sendmail, newaliases,
mailq), and the program name on stderr and the personality both come
from argv[0]: run() here is helpers.Postino.run with argv[0] set (the
binary is still postino's; config, clean environment and log as
there)."""

import os
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
    if prefix_config and config_path is None:
        config_path = postino.config_path or config(postino)
    return postino.run(args, input, config=config_path, timeout=timeout,
                       env=env, argv0=argv0, prefix_config=prefix_config)


def run_with_big_stdin(postino, args, size=1 << 20, argv0="sendmail",
                       timeout=60):
    """Write size bytes into postino's stdin from a thread, as git
    send-email or MIME::Lite would. Returns (result, writer_error):
    writer_error is the exception the writer got (EPIPE) or None."""
    config_path = postino.config_path or config(postino)
    proc = postino.start(args, config=config_path, argv0=argv0)
    cmd = proc.args
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
