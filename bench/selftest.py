"""Checks that the floor of `make bench` sends what a client must:
bench/refclient.c's one-pass LF -> CR LF and dot-stuffing against a
byte-by-byte model, on inputs that cross its 64 KiB read boundary, over
one connection to a scripted hub on loopback. Not part of `make check`
(the bench is not a test); run it after changing refclient.c:

    make build/bench/refclient && python3 bench/selftest.py
"""

import os
import random
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, os.pardir, "build", "bench", "refclient")


def model(data):
    """What must be on the wire between DATA's 354 and the final 250."""
    out, bol, cr = bytearray(), True, False
    for c in data:
        ch = bytes([c])
        if bol and ch == b".":
            out += b"."
        if ch == b"\n" and not cr:
            out += b"\r"
        out += ch
        cr, bol = ch == b"\r", ch == b"\n"
    return bytes(out) + (b".\r\n" if bol else b"\r\n.\r\n")


def hub(srv, got):
    c, _ = srv.accept()
    f = c.makefile("rb")
    c.sendall(b"220 hub\r\n")
    f.readline()
    c.sendall(b"250-hub\r\n250 PIPELINING\r\n")
    for _ in range(3):          # MAIL, RCPT, DATA pipelined
        f.readline()
    c.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
    buf = b""
    while not (buf == b".\r\n" or buf.endswith(b"\r\n.\r\n")):
        line = f.readline()
        if not line:
            break
        buf += line
    got.append(buf)
    c.sendall(b"250 ok\r\n")
    f.readline()
    c.sendall(b"221 bye\r\n")
    c.close()


def main():
    rnd = random.Random(11)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cases = [b"x", b".", b"\n", b".\n.", b"a\r\nb\rc\n..d"]
    for n in (65535, 65536, 65537, 200000):
        cases.append(bytes(rnd.choice(b".\r\nab") for _ in range(n)))
    for data in cases:
        got = []
        t = threading.Thread(target=hub, args=(srv, got))
        t.start()
        p = subprocess.run([REF, "127.0.0.1", str(port), "a@example.org"],
                           input=data, capture_output=True, timeout=30)
        t.join(30)
        if p.returncode != 0 or got != [model(data)]:
            print("selftest: refclient wrong for %d bytes (exit %d): %s" % (
                len(data), p.returncode, p.stderr.decode()[:200]))
            return 1
    print("selftest: refclient converts %d inputs as the model does" %
          len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
