"""A scriptable OAuth 2.0 token endpoint (RFC 6749) over HTTPS, for the
OAuth tests (test_oauth.py): http.server and ssl on loopback, with the
test CA's server certificate (certs.py), in a thread of the test process.

It answers POSTs of application/x-www-form-urlencoded forms with the
refresh-token grant or the client-credentials grant as Microsoft's and
Google's endpoints do: {"access_token", "token_type": "Bearer",
"expires_in", "refresh_token" (when rotating)} or an RFC 6749 5.2 error
with 400/401.

Script knobs (attributes, changeable between runs):
  client_id, client_secret  what the client must send
  refresh_token   the one valid refresh token (None: that grant refused)
  rotate          True: every refresh-token grant issues a new refresh
                  token and the old one stops working
  expires_in      the lifetime given with each access token
  delay           seconds to wait before answering (overlapping clients)
Records: grants (the grant_type of every request), forms (every parsed
form), issued (access tokens, in order); valid(token) says whether an
access token is current (revoke() makes every issued one stale, as a hub
would see an expired token). stop() makes it unreachable (the port is
closed) and start() brings it back on the same port.
"""

import http.server
import json
import os
import ssl
import threading
import time
import urllib.parse


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):     # quiet
        pass

    def do_POST(self):
        ts = self.server.ts
        n = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in urllib.parse.parse_qs(
            self.rfile.read(n).decode(), keep_blank_values=True).items()}
        ts.paths.append(self.path)
        if ts.delay:
            time.sleep(ts.delay)
        status, body = ts.answer(form)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        if ts.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = len(data) // 2
            for part in (data[:half], data[half:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        self.close_connection = True


class TokenServer:
    def __init__(self, certs, client_id="postino-client",
                 client_secret="cl13nt-S3cret-xyz", refresh_token=None,
                 rotate=False, expires_in=3600, chunked=False):
        self.certs = certs
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.rotate = rotate
        self.expires_in = expires_in
        self.chunked = chunked
        self.delay = 0
        self.grants = []
        self.forms = []
        self.paths = []
        self.issued = []
        self._valid = set()
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None
        self.port = 0

    # -- the endpoint's rules -------------------------------------------

    def answer(self, form):
        with self._lock:
            self.forms.append(form)
            grant = form.get("grant_type")
            self.grants.append(grant)
            if (form.get("client_id") != self.client_id or
                    form.get("client_secret") != self.client_secret):
                return 401, {"error": "invalid_client",
                             "error_description": "client authentication "
                             "failed"}
            if grant == "refresh_token":
                if (self.refresh_token is None or
                        form.get("refresh_token") != self.refresh_token):
                    return 400, {"error": "invalid_grant",
                                 "error_description": "refresh token "
                                 "expired or revoked"}
            elif grant != "client_credentials":
                return 400, {"error": "unsupported_grant_type"}
            tok = "at-%d-%s" % (len(self.issued) + 1,
                                os.urandom(12).hex())
            self.issued.append(tok)
            self._valid.add(tok)
            body = {"token_type": "Bearer", "expires_in": self.expires_in,
                    "ext_expires_in": self.expires_in,
                    "scope": form.get("scope", ""), "access_token": tok}
            if grant == "refresh_token" and self.rotate:
                self.refresh_token = "rt-%s" % os.urandom(12).hex()
                body["refresh_token"] = self.refresh_token
            return 200, body

    def valid(self, token):
        with self._lock:
            return token in self._valid

    def revoke(self):
        with self._lock:
            self._valid.clear()

    # -- running -----------------------------------------------------------

    @property
    def url(self):
        return "https://localhost:%d/tenant-1/oauth2/v2.0/token" % self.port

    def start(self):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.certs.server.cert, self.certs.server.key)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                _Handler)
        httpd.daemon_threads = True
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        httpd.ts = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(10)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve_tokens(certs, refresh_token):
    """For a fixture: a started endpoint, stopped when the test is done."""
    ts = TokenServer(certs, refresh_token=refresh_token).start()
    yield ts
    ts.stop()


def oauth_hub(fault, certs, endpoint, mailbox):
    """A fault-server hub over TLS that takes the endpoint's current
    token for mailbox, and nothing else."""
    return fault(tls_cert=certs.server.cert, tls_key=certs.server.key,
                 oauth=lambda user, tok: user == mailbox and
                 endpoint.valid(tok))
