"""Shared pieces of the hostile-input and hostile-hub tests.

RawHub is a loopback TCP server in plain blocking sockets, for the hubs
the fault server cannot play because it always speaks correct SMTP at
the moments that matter: a greeting preceded by junk or cut into pieces,
bytes pushed after a delay, a clean TLS close_notify in the middle of
DATA, a reader that takes one byte a second, a reply trickled forever.
Each accepted connection runs script(conn) in its own thread; serve() is
a minimal SMTP loop the scripts hand over to once they have done their
mischief, so the rest of the session is recorded like the fault
server's (commands, DATA, events).

Also: the RSS and "never lost" checks every test here repeats.
"""

import os
import re
import socket
import ssl
import threading
import time

# Peak RSS a hostile input may cost (the brief: "under ~16 MiB").
RSS_LIMIT_KIB = 16 * 1024

EHLO_PLAIN = (b"250-raw.test\r\n250-8BITMIME\r\n250-SIZE\r\n"
              b"250 ENHANCEDSTATUSCODES\r\n")


def check_rss(res, asan, what):
    """Peak RSS of the postino run stayed bounded (skipped under ASan)."""
    if asan:
        return
    assert res.maxrss_kib is not None, "run with measure_rss=True"
    assert res.maxrss_kib < RSS_LIMIT_KIB, (
        "%s: peak RSS %d KiB (limit %d KiB)" % (what, res.maxrss_kib,
                                                RSS_LIMIT_KIB))


def not_a_signal(res):
    """Negative return codes are deaths by signal (a crash, ASan abort
    exits 1 and prints to stderr, which other checks see)."""
    assert res.rc >= 0, "postino died of signal %d\n%s" % (-res.rc,
                                                            res.describe())


def queued_ids(postino, area="queue"):
    d = os.path.join(postino.queue_dir, area)
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if not n.startswith("."))


def sanitised(text):
    """No terminal control, no bare CR, no DEL in text meant for humans."""
    bad = re.findall(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    return not bad


# -- the raw hub ----------------------------------------------------------

class Closed(Exception):
    """The client went away."""


class RawConn:
    """One client connection seen by a RawHub script."""

    def __init__(self, hub, sock, n):
        self.hub = hub
        self.sock = sock
        self.n = n
        self.buf = b""
        self.received = bytearray()     # every byte read, in order
        self.commands = []              # command lines, CRLF stripped
        self.messages = []              # DATA contents (dot-stuffed wire)
        self.events = []
        self.tls = False
        self.done = threading.Event()

    # -- primitives --------------------------------------------------

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as e:
            raise Closed(repr(e))

    def send_slowly(self, data, delay):
        for i in range(len(data)):
            self.send(data[i:i + 1])
            time.sleep(delay)

    def _fill(self, size=65536):
        try:
            chunk = self.sock.recv(size)
        except socket.timeout:
            raise Closed("timeout")
        except (OSError, ssl.SSLError) as e:
            raise Closed(repr(e))
        if not chunk:
            raise Closed("eof")
        self.received += chunk
        self.buf += chunk

    def readline(self):
        while b"\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise Closed("line too long")
            self._fill()
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def command(self):
        line = self.readline()
        text = line.rstrip(b"\r\n").decode("latin-1")
        self.commands.append(text)
        return text

    def read_data(self):
        """DATA up to the final dot, as on the wire (dot-stuffed)."""
        data = bytearray(self.buf)
        self.buf = b""
        while True:
            if data.startswith(b".\r\n"):
                self.buf = bytes(data[3:])
                return b""
            i = data.find(b"\r\n.\r\n")
            if i >= 0:
                self.buf = bytes(data[i + 5:])
                return bytes(data[:i + 2])
            self._fill(1 << 20)
            data += self.buf
            self.buf = b""

    def starttls(self, ctx):
        """Server side of a TLS handshake on this connection."""
        if self.buf:
            self.events.append("bytes pipelined after STARTTLS")
            self.buf = b""
        try:
            self.sock = ctx.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError) as e:
            self.events.append("tls-failed: %r" % (e,))
            raise Closed("tls failed")
        self.tls = True
        self.events.append("tls")

    def verbs(self):
        return [c.split(" ", 1)[0].split(":", 1)[0].upper()
                for c in self.commands]

    def saw(self, verb):
        return verb.upper() in self.verbs()

    # -- a plain SMTP session -----------------------------------------

    def serve(self, ehlo=EHLO_PLAIN, dot=b"250 2.0.0 Ok: queued as RAW1\r\n",
              on_data=None):
        """Answer like a simple hub until QUIT or the client leaves.

        on_data(conn) is called after the 354 instead of reading the
        data, for scripts that misbehave in the middle of it."""
        while True:
            cmd = self.command()
            verb = cmd.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "EHLO":
                self.send(ehlo)
            elif verb == "HELO":
                self.send(b"250 raw.test\r\n")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.send(b"250 2.0.0 Ok\r\n")
            elif verb == "DATA":
                self.send(b"354 go ahead\r\n")
                if on_data is not None:
                    on_data(self)
                    return
                self.messages.append(self.read_data())
                self.send(dot)
            elif verb == "QUIT":
                self.send(b"221 2.0.0 Bye\r\n")
                return
            else:
                self.send(b"502 5.5.2 not here\r\n")


class RawHub:
    """script(conn) runs for each connection; start()/stop()."""

    def __init__(self, script, rcvbuf=None, io_timeout=30):
        self.script = script
        self.rcvbuf = rcvbuf
        self.io_timeout = io_timeout
        self.conns = []
        self.errors = []
        self._threads = []
        self._stop = threading.Event()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            # Set before listen(): accepted sockets inherit it, and the
            # window it advertises is fixed at the handshake.
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                  rcvbuf)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True,
                                          name="rawhub")

    def start(self):
        self._acceptor.start()
        return self

    def mailhub(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while not self._stop.is_set():
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(self.io_timeout)
            conn = RawConn(self, sock, len(self.conns))
            self.conns.append(conn)
            t = threading.Thread(target=self._run, args=(conn,),
                                 daemon=True, name="rawhub-conn")
            self._threads.append(t)
            t.start()

    def _run(self, conn):
        try:
            self.script(conn)
        except Closed as e:
            conn.events.append("client closed: %s" % e)
        except Exception as e:  # a bug in the script: make it visible
            self.errors.append("script error: %r" % (e,))
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass
            conn.done.set()

    def wait_idle(self, timeout=10):
        deadline = time.monotonic() + timeout
        for c in list(self.conns):
            if not c.done.wait(max(0, deadline - time.monotonic())):
                raise AssertionError("raw connection %d still open" % c.n)
        return self.conns

    def stop(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.sock.close()
            except OSError:
                pass
        self._acceptor.join(5)
        for t in self._threads:
            t.join(5)


def server_tls_context(certpair):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certpair.cert, certpair.key)
    return ctx
