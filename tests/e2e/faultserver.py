"""A scriptable SMTP server for fault injection (raw asyncio, loopback only).

aiosmtpd's SMTP class hides exactly the bytes these tests are about (the
STARTTLS 220 packet, segment boundaries, a connection dropped mid-DATA, a
reply sent one byte at a time), so the protocol is written out here on
asyncio streams. It runs in a thread of the test process
(FaultServer(...).start()) or as a subprocess (python3 faultserver.py,
used by tests/demo.sh).

Everything received is recorded per connection in Session objects:
command lines, raw receive chunks outside DATA (to check pipelining), AUTH
attempts, TLS state, every DATA as it arrived on the wire (data_received)
and the messages the script accepted (messages).

Script knobs (keyword arguments of FaultServer):
  replies        {step: reply} for greeting, ehlo, helo, starttls, auth,
                 mail, rcpt, data, dot, rset, quit ("4xx text", may be
                 multi-line with embedded CRLF)
  rcpt_replies   {address: reply} overrides replies["rcpt"] per address
  hide           extension keywords not to offer (STARTTLS, PIPELINING...)
  size_limit     value of the SIZE extension (0: "SIZE" without a limit)
  tls_cert/key   offer STARTTLS with this certificate
  implicit_tls   TLS from connect (port 465 style) with tls_cert/key
  inject         bytes sent in the same packet right after STARTTLS's 220
  auth           {user: password}: offer AUTH PLAIN LOGIN CRAM-MD5 (only
                 inside TLS when TLS is offered, unless auth_plaintext)
  oauth          oauth(user, token) -> bool: also offer AUTH XOAUTH2 and
                 OAUTHBEARER and accept a bearer token it approves; a
                 refused one gets RFC 7628's 334 JSON error, then 535
                 once the client acknowledges it
  stall_at       a step whose reply is never sent (the client must time out)
  trickle        seconds between the bytes of every reply (0: off)
  drop_in_data   close the connection after this many bytes of DATA
  greeting_delay seconds to wait after accepting before the greeting (a
                 hub whose greeting comes late)
  blackhole      True: never accept; the listening socket's backlog is
                 full, so the kernel drops further SYNs and a connect()
                 hangs until the client's own deadline
  script         script(conn): a raw peer, for hubs that must misbehave
                 where this dialogue cannot (junk before the greeting, a
                 TLS close_notify mid-DATA, a reader that takes one byte a
                 second). Each connection runs script(RawConn) in a thread
                 over a blocking socket; conn.serve() is a minimal SMTP
                 loop a script hands over to after its mischief. Sessions
                 are then RawConn objects (commands, messages as wire
                 bytes, events, received); a script's own bug is recorded
                 as "server error: script ..."
  rcvbuf         (script) SO_RCVBUF of the listening socket
  io_timeout     (script) socket timeout of each connection

This is the suite's one scripted SMTP peer: tests start it through the
`fault` fixture (conftest.py), fault(**knobs).
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import select
import signal
import socket
import ssl
import sys
import threading
import time

DEFAULT_REPLIES = {
    "greeting": "220 fault.test ESMTP faultserver",
    "ehlo": "250",
    "helo": "250 fault.test",
    "starttls": "220 2.0.0 Ready to start TLS",
    "auth": "235 2.7.0 Authentication successful",
    "mail": "250 2.1.0 Ok",
    "rcpt": "250 2.1.5 Ok",
    "data": "354 End data with <CR><LF>.<CR><LF>",
    "dot": "250 2.0.0 Ok: queued as {qid}",
    "rset": "250 2.0.0 Ok",
    "noop": "250 2.0.0 Ok",
    "quit": "221 2.0.0 Bye",
}

STEPS = set(DEFAULT_REPLIES)


class Message:
    """One DATA transaction as the server saw it."""

    def __init__(self, mail_from, mail_params, rcpts, wire, qid):
        self.mail_from = mail_from
        self.mail_params = mail_params
        self.rcpts = rcpts          # accepted recipients only
        self.wire = wire            # bytes after 354, up to ".\r\n"
        self.qid = qid

    @property
    def content(self):
        """The message with SMTP dot-stuffing undone (CRLF kept)."""
        lines = self.wire.split(b"\r\n")
        return b"\r\n".join(l[1:] if l.startswith(b".") else l
                            for l in lines)

    def to_json(self):
        return {"mail_from": self.mail_from, "mail_params": self.mail_params,
                "rcpts": self.rcpts, "qid": self.qid}


class Session:
    """Everything one client connection sent."""

    def __init__(self, n):
        self.n = n
        self.commands = []      # command lines, CRLF stripped, latin-1
        self.raw_lines = []     # command lines with their line ending
        self.chunks = []        # every recv() result outside DATA
        self.events = []        # "tls", "tls-failed: ...", "dropped", ...
        self.auth = []          # (mechanism, user, secret, ok)
        self.auth_seen = False  # any AUTH command at all
        self.tls = False
        self.tls_version = None
        self.messages = []
        self.data_received = []   # every complete DATA, accepted or not
        self.partial_data = None  # what arrived before drop_in_data hit
        self.done = threading.Event()

    def verbs(self):
        return [c.split(" ", 1)[0].split(":", 1)[0].upper()
                for c in self.commands]

    def saw(self, verb):
        return verb.upper() in self.verbs()


class _Conn:
    """One SMTP conversation driven by the server's script."""

    def __init__(self, server, reader, writer, session):
        self.srv = server
        self.reader = reader
        self.writer = writer
        self.s = session
        self.buf = b""
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_params = ""
        self.rcpts = []

    # -- I/O ---------------------------------------------------------

    async def fill(self, record=True):
        chunk = await self.reader.read(65536)
        if not chunk:
            raise EOFError
        if record:
            self.s.chunks.append(chunk)
        self.buf += chunk

    async def readline(self):
        while b"\n" not in self.buf:
            if len(self.buf) > 65536:
                raise EOFError
            await self.fill()
        i = self.buf.index(b"\n") + 1
        raw, self.buf = self.buf[:i], self.buf[i:]
        return raw

    async def reply(self, step, text=None, extra=b""):
        if text is None:
            text = self.srv.replies[step]
        if step is not None and self.srv.stall_at == step:
            self.s.events.append("stalled at " + step)
            await self.stall()
        data = text.replace("\r\n", "\n").replace("\n", "\r\n")
        data = data.encode() + b"\r\n" + extra
        if self.srv.trickle:
            for i in range(len(data)):
                self.writer.write(data[i:i + 1])
                await self.writer.drain()
                await asyncio.sleep(self.srv.trickle)
        else:
            self.writer.write(data)
            await self.writer.drain()
        return int(text[:3]) if text[:3].isdigit() else 0

    async def stall(self):
        # Keep reading (and recording) until the client gives up.
        while True:
            await self.fill()

    # -- the protocol ------------------------------------------------

    def extensions(self):
        ext = ["PIPELINING",
               "SIZE %d" % self.srv.size_limit if self.srv.size_limit
               else "SIZE",
               "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"]
        if self.srv.tls_ctx and not self.srv.implicit_tls and not self.s.tls:
            ext.append("STARTTLS")
        if self.srv.auth is not None and (
                self.s.tls or self.srv.auth_plaintext or not self.srv.tls_ctx):
            ext.append("AUTH PLAIN LOGIN CRAM-MD5")
        if self.srv.oauth is not None and (
                self.s.tls or self.srv.auth_plaintext or not self.srv.tls_ctx):
            ext.append("AUTH XOAUTH2 OAUTHBEARER")
        hide = {h.upper() for h in self.srv.hide}
        return [e for e in ext if e.split(" ")[0].upper() not in hide]

    async def run(self):
        if self.srv.greeting_delay:
            self.s.events.append("greeting delayed")
            await asyncio.sleep(self.srv.greeting_delay)
        # Whatever the greeting, keep answering: a client that ignores a
        # 4xx/5xx greeting shows up in the recorded commands.
        await self.reply("greeting")
        while True:
            raw = await self.readline()
            self.s.raw_lines.append(raw)
            line = raw.rstrip(b"\r\n").decode("latin-1")
            self.s.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb) + 1:] if " " in line else ""
            handler = getattr(self, "cmd_" + verb.replace("-", "_"), None)
            if verb.startswith("MAIL"):
                handler = self.cmd_MAIL
            elif verb.startswith("RCPT"):
                handler = self.cmd_RCPT
            if handler is None:
                await self.reply(None, "502 5.5.2 Error: command not "
                                 "recognized")
                continue
            if await handler(arg) == "close":
                return

    async def cmd_EHLO(self, arg):
        text = self.srv.replies["ehlo"]
        if text == "250":
            lines = ["fault.test"] + self.extensions()
            text = "\r\n".join("250%s%s" % ("-" if i < len(lines) - 1
                                             else " ", l)
                               for i, l in enumerate(lines))
        self.reset()
        await self.reply("ehlo", text)

    async def cmd_HELO(self, arg):
        self.reset()
        await self.reply("helo")

    async def cmd_NOOP(self, arg):
        await self.reply("noop")

    async def cmd_RSET(self, arg):
        self.reset()
        await self.reply("rset")

    async def cmd_QUIT(self, arg):
        await self.reply("quit")
        return "close"

    async def cmd_STARTTLS(self, arg):
        if not self.srv.tls_ctx or self.s.tls:
            await self.reply(None, "502 5.5.1 STARTTLS not offered")
            return None
        if self.buf:
            # RFC 3207: nothing may follow STARTTLS before the handshake.
            self.s.events.append("pipelined-after-starttls")
            self.buf = b""
        code = await self.reply("starttls", extra=self.srv.inject)
        if code != 220:
            return None
        try:
            await self.writer.start_tls(self.srv.tls_ctx,
                                        ssl_handshake_timeout=15)
        except (ssl.SSLError, OSError, ConnectionError,
                asyncio.TimeoutError) as e:
            self.s.events.append("tls-failed: %r" % (e,))
            return "close"
        self.s.tls = True
        obj = self.writer.get_extra_info("ssl_object")
        self.s.tls_version = obj.version() if obj else None
        self.s.events.append("tls")
        self.reset()
        return None

    async def cmd_AUTH(self, arg):
        self.s.auth_seen = True
        parts = arg.split()
        mech = parts[0].upper() if parts else ""
        initial = parts[1] if len(parts) > 1 else None
        try:
            user, secret, ok = await getattr(
                self, "auth_" + mech.replace("-", "_"))(initial)
        except AttributeError:
            await self.reply(None, "504 5.5.4 Unrecognized mechanism")
            return None
        except ValueError:
            self.s.auth.append((mech, None, None, False))
            await self.reply(None, "501 5.5.2 Cannot decode response")
            return None
        self.s.auth.append((mech, user, secret, ok))
        if not ok and mech in ("XOAUTH2", "OAUTHBEARER"):
            # RFC 7628 3.2.2: the error as a challenge, which the client
            # must answer (^A, or an empty line for XOAUTH2) first.
            err = base64.b64encode(b'{"status":"invalid_token",'
                                   b'"schemes":"bearer"}').decode()
            try:
                ack = await self.challenge(err)
            except ValueError:
                ack = b"*"
            self.s.events.append("oauth-ack %r" % ack)
            await self.reply(None, "535 5.7.8 Username and Password not "
                             "accepted")
            return None
        if not ok:
            await self.reply(None, "535 5.7.8 Error: authentication "
                             "failed")
            return None
        await self.reply("auth")
        return None

    async def challenge(self, text):
        await self.reply(None, "334 " + text)
        line = (await self.readline()).rstrip(b"\r\n")
        self.s.commands.append("<auth response>")
        if line == b"*":
            raise ValueError("cancelled")
        return line

    def check(self, user, password):
        users = self.srv.auth or {}
        return user in users and users[user] == password

    async def auth_PLAIN(self, initial):
        b64 = initial if initial else (await self.challenge("")).decode()
        raw = base64.b64decode(b64, validate=True)
        fields = raw.split(b"\0")
        if len(fields) != 3:
            raise ValueError("PLAIN needs three fields")
        user, pw = fields[1].decode(), fields[2].decode()
        return user, pw, self.check(user, pw)

    async def auth_LOGIN(self, initial):
        if initial:
            u = initial.encode()
        else:
            u = await self.challenge(base64.b64encode(b"Username:").decode())
        p = await self.challenge(base64.b64encode(b"Password:").decode())
        user = base64.b64decode(u, validate=True).decode()
        pw = base64.b64decode(p, validate=True).decode()
        return user, pw, self.check(user, pw)

    async def auth_CRAM_MD5(self, initial):
        chal = ("<%d.%s@fault.test>" % (os.getpid(),
                                        secrets.token_hex(8))).encode()
        resp = base64.b64decode(await self.challenge(
            base64.b64encode(chal).decode()), validate=True).decode()
        user, _, digest = resp.rpartition(" ")
        pw = (self.srv.auth or {}).get(user)
        ok = pw is not None and hmac.compare_digest(
            digest, hmac.new(pw.encode(), chal, hashlib.md5).hexdigest())
        return user, digest, ok

    def bearer(self, initial, fields):
        # "user=U^Aauth=Bearer T^A^A" or "n,a=U,^A...auth=Bearer T^A^A"
        if self.srv.oauth is None or not initial:
            raise AttributeError("no bearer mechanisms")
        raw = base64.b64decode(initial, validate=True).decode()
        kv = dict(p.split("=", 1) for p in raw.split("\x01")[1:] if p)
        user = fields(raw)
        token = kv.get("auth", "")
        if not token.startswith("Bearer ") or not raw.endswith("\x01\x01"):
            raise ValueError("malformed bearer message")
        token = token[len("Bearer "):]
        return user, token, bool(self.srv.oauth(user, token))

    async def auth_XOAUTH2(self, initial):
        return self.bearer(initial, lambda raw: raw.split("\x01")[0][5:]
                           if raw.startswith("user=") else None)

    async def auth_OAUTHBEARER(self, initial):
        return self.bearer(initial, lambda raw: raw.split("\x01")[0]
                           .split(",")[1][2:] if raw.startswith("n,a=")
                           else None)

    async def cmd_MAIL(self, arg):
        rest = self.s.commands[-1][4:].lstrip()
        addr, params = _path(rest, "FROM:")
        if addr is None:
            await self.reply(None, "501 5.5.4 Syntax: MAIL FROM:<address>")
            return None
        size = _param(params, "SIZE")
        if size is not None and not size.isdigit():
            await self.reply(None, "501 5.5.4 Bad SIZE parameter")
            return None
        if self.srv.size_limit and size and int(size) > self.srv.size_limit:
                await self.reply(None, "552 5.3.4 Message size exceeds "
                                 "fixed limit")
                return None
        if await self.reply("mail") // 100 == 2:
            self.mail_from, self.mail_params = addr, params
        return None

    async def cmd_RCPT(self, arg):
        rest = self.s.commands[-1][4:].lstrip()
        addr, _ = _path(rest, "TO:")
        if addr is None:
            await self.reply(None, "501 5.5.4 Syntax: RCPT TO:<address>")
            return None
        if self.mail_from is None:
            await self.reply(None, "503 5.5.1 Error: need MAIL command")
            return None
        text = self.srv.rcpt_replies.get(addr, self.srv.replies["rcpt"])
        if await self.reply("rcpt", text) // 100 == 2:
            self.rcpts.append(addr)
        return None

    async def cmd_DATA(self, arg):
        if self.mail_from is None or not self.rcpts:
            await self.reply(None, "554 5.5.1 Error: no valid recipients")
            return None
        if await self.reply("data") != 354:
            self.reset()
            return None
        wire = await self.read_data()
        if wire is None:
            return "close"
        qid = "FAULT%04d" % self.srv.next_qid()
        msg = Message(self.mail_from, self.mail_params, list(self.rcpts),
                      wire, qid)
        text = self.srv.replies["dot"].replace("{qid}", qid)
        if text[:1] == "2" and self.srv.stall_at != "dot":
            # Recorded before the reply: once the client has its 250 the
            # message must be visible to whoever looks.
            self.s.messages.append(msg)
            if self.srv.on_message:
                self.srv.on_message(self.s, msg)
        await self.reply("dot", text)
        self.reset()
        return None

    async def read_data(self):
        """Bytes up to the final ".\r\n"; None if dropped on purpose."""
        data = bytearray(self.buf)
        self.buf = b""
        scan = 0
        limit = self.srv.drop_in_data
        while True:
            if limit is not None and len(data) >= limit:
                self.s.events.append("dropped in DATA after %d bytes"
                                     % len(data))
                self.s.partial_data = bytes(data)
                self.writer.transport.abort()
                return None
            if data.startswith(b".\r\n"):
                end, wire = 3, b""
                break
            i = data.find(b"\r\n.\r\n", scan)
            if i >= 0:
                # The CRLF before the dot ends the last line: keep it.
                end, wire = i + 5, bytes(data[:i + 2])
                break
            scan = max(0, len(data) - 4)
            chunk = await self.reader.read(1 << 20)
            if not chunk:
                raise EOFError
            data += chunk
        self.buf = bytes(data[end:])
        self.s.data_received.append(wire)
        return wire


def _param(params, name):
    """Value of ESMTP parameter name in 'SIZE=12 BODY=8BITMIME', or None."""
    for p in params.split():
        k, _, v = p.partition("=")
        if k.upper() == name:
            return v
    return None


def _path(rest, keyword):
    """Split 'FROM:<a@b> PARAMS' into ('a@b', 'PARAMS')."""
    if not rest.upper().startswith(keyword):
        return None, ""
    rest = rest[len(keyword):].lstrip()
    if not rest.startswith("<") or ">" not in rest:
        return None, ""
    addr, _, params = rest[1:].partition(">")
    return addr, params.strip()


class FaultServer:
    """Run with start()/stop() or as a context manager."""

    def __init__(self, host="127.0.0.1", port=0, replies=None,
                 rcpt_replies=None, hide=(), size_limit=52428800,
                 tls_cert=None, tls_key=None, implicit_tls=False,
                 inject=b"", auth=None, auth_plaintext=False,
                 oauth=None, stall_at=None, trickle=0.0, drop_in_data=None,
                 greeting_delay=0.0, blackhole=False, script=None,
                 rcvbuf=None, io_timeout=30):
        if stall_at is not None and stall_at not in STEPS:
            raise ValueError("unknown step %r" % stall_at)
        self.host = host
        self.port = port
        self.replies = dict(DEFAULT_REPLIES)
        self.replies.update(replies or {})
        unknown = set(self.replies) - STEPS
        if unknown:
            raise ValueError("unknown steps %r" % unknown)
        self.rcpt_replies = dict(rcpt_replies or {})
        self.hide = tuple(hide)
        self.size_limit = size_limit
        self.implicit_tls = implicit_tls
        self.inject = inject
        self.auth = auth
        self.auth_plaintext = auth_plaintext
        self.oauth = oauth
        self.stall_at = stall_at
        self.trickle = trickle
        self.drop_in_data = drop_in_data
        self.greeting_delay = greeting_delay
        self.blackhole = blackhole
        self.script = script
        self.rcvbuf = rcvbuf
        self.io_timeout = io_timeout
        self._raw = None
        self.tls_ctx = None
        if tls_cert:
            self.tls_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls_ctx.load_cert_chain(tls_cert, tls_key)
        self.sessions = []
        self.errors = []
        self.qid_counter = 1
        self._loop = None
        self._thread = None
        self._server = None
        self._tasks = set()
        self.on_message = None  # callback(session, message), loop thread

    def next_qid(self):
        n = self.qid_counter
        self.qid_counter += 1
        return n

    # -- lifecycle ---------------------------------------------------

    async def _serve(self, reader, writer):
        session = Session(len(self.sessions))
        self.sessions.append(session)
        task = asyncio.current_task()
        self._tasks.add(task)
        if self.implicit_tls:
            session.tls = True
            obj = writer.get_extra_info("ssl_object")
            session.tls_version = obj.version() if obj else None
        conn = _Conn(self, reader, writer, session)
        try:
            await conn.run()
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            session.events.append("client closed")
        except asyncio.CancelledError:
            session.events.append("server stopped")
        except Exception as e:  # a bug in this file: make it visible
            self.errors.append("server error: %r" % (e,))
            session.events.append("server error: %r" % (e,))
        finally:
            try:
                writer.transport.abort()
            except Exception:
                pass
            self._tasks.discard(task)
            session.done.set()

    def _exception_handler(self, loop, context):
        # Implicit-TLS handshake failures land here; record them quietly.
        self.errors.append(str(context.get("exception")
                               or context.get("message")))

    def _run(self, started):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.set_exception_handler(self._exception_handler)
        ctx = self.tls_ctx if self.implicit_tls else None
        self._server = self._loop.run_until_complete(asyncio.start_server(
            self._serve, self.host, self.port, ssl=ctx,
            ssl_handshake_timeout=15 if ctx else None, reuse_address=True))
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        self._loop.run_until_complete(asyncio.sleep(0.05))
        self._loop.close()

    def start(self):
        if self.blackhole:
            self._raw = _Blackhole(self)
            return self
        if self.script is not None:
            self._raw = _RawServer(self)
            return self
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,),
                                        name="faultserver", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fault server did not start")
        return self

    def stop(self):
        if self._raw is not None:
            self._raw.stop()
            return
        if self._loop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- for assertions ----------------------------------------------

    def wait_idle(self, timeout=10):
        """Wait until every connection so far has ended."""
        deadline = time.monotonic() + timeout
        for s in list(self.sessions):
            if not s.done.wait(max(0, deadline - time.monotonic())):
                raise AssertionError("session %d still open" % s.n)
        return self.sessions

    @property
    def conns(self):
        """The sessions (the name raw scripts' tests use)."""
        return self.sessions

    @property
    def messages(self):
        return [m for s in self.sessions for m in s.messages]

    def commands(self):
        return [c for s in self.sessions for c in s.commands]

    def mailhub(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (host, self.port)


# -- raw peers: scripts over blocking sockets, and the black hole -----------

EHLO_PLAIN = (b"250-raw.test\r\n250-8BITMIME\r\n250-SIZE\r\n"
              b"250 ENHANCEDSTATUSCODES\r\n")


class Closed(Exception):
    """The client went away."""


class RawConn:
    """One client connection seen by a script (FaultServer(script=...))."""

    def __init__(self, server, sock, n):
        self.srv = server
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


class _RawServer:
    """The accept loop of FaultServer(script=...): a thread per
    connection running script(RawConn)."""

    def __init__(self, srv):
        self.srv = srv
        self._threads = []
        self._stop = threading.Event()
        family = socket.AF_INET6 if ":" in srv.host else socket.AF_INET
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if srv.rcvbuf:
            # Set before listen(): accepted sockets inherit it, and the
            # window it advertises is fixed at the handshake.
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                  srv.rcvbuf)
        self.lsock.bind((srv.host, srv.port))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        srv.port = self.lsock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True,
                                          name="faultserver-raw")
        self._acceptor.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(self.srv.io_timeout)
            conn = RawConn(self.srv, sock, len(self.srv.sessions))
            self.srv.sessions.append(conn)
            t = threading.Thread(target=self._run, args=(conn,),
                                 daemon=True, name="faultserver-conn")
            self._threads.append(t)
            t.start()

    def _run(self, conn):
        try:
            self.srv.script(conn)
        except Closed as e:
            conn.events.append("client closed: %s" % e)
        except Exception as e:  # a bug in the script: make it visible
            self.srv.errors.append("server error: script %r" % (e,))
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass
            conn.done.set()

    def stop(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        for c in self.srv.sessions:
            try:
                c.sock.close()
            except OSError:
                pass
        self._acceptor.join(5)
        for t in self._threads:
            t.join(5)


class _Blackhole:
    """FaultServer(blackhole=True): a listening socket whose accept queue
    is full, so that a connect() hangs until the client gives up."""

    def __init__(self, srv):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        srv.host = "127.0.0.1"
        srv.port = self.lsock.getsockname()[1]
        self.fillers = []
        hanging = False
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", srv.port))
            self.fillers.append(c)
            if not select.select([], [c], [], 0.5)[1]:
                hanging = True
                break
        if not hanging:
            self.stop()
            import pytest
            pytest.skip("could not fill the accept queue of a backlog-0 "
                        "socket (SYNs are not dropped here)")

    def stop(self):
        for c in self.fillers:
            c.close()
        self.lsock.close()


def server_tls_context(certpair):
    """A server-side TLS context for a raw script's conn.starttls()."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certpair.cert, certpair.key)
    return ctx


# -- subprocess mode (tests/demo.sh) ----------------------------------------

def _save(spool, session, msg):
    base = os.path.join(spool, msg.qid)
    with open(base + ".eml", "wb") as f:
        f.write(msg.content)
    with open(base + ".json", "w") as f:
        json.dump(dict(msg.to_json(), commands=session.commands), f,
                  indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description="loopback SMTP fault server")
    ap.add_argument("--host", default="127.0.0.1",
                    choices=["127.0.0.1", "::1"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--portfile", help="write the bound port here")
    ap.add_argument("--spool", help="save each message as QID.eml/.json")
    ap.add_argument("--reply", action="append", default=[],
                    metavar="STEP=REPLY", help="e.g. rcpt='550 no'")
    ap.add_argument("--lifetime", type=float, default=600,
                    help="exit after this many seconds regardless")
    args = ap.parse_args(argv)
    replies = dict(r.split("=", 1) for r in args.reply)
    srv = FaultServer(host=args.host, port=args.port, replies=replies)
    if args.spool:
        srv.on_message = lambda s, m: _save(args.spool, s, m)
    srv.start()
    if args.portfile:
        tmp = args.portfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.port)
        os.rename(tmp, args.portfile)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait(args.lifetime)
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
