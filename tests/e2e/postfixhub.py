"""A private Postfix instance used as the mailhub by the end-to-end tests.

It has its own config_directory and queue_directory under a temporary
directory and is driven with `postfix -c DIR start|stop`; /etc/postfix is
never read or written (except the stock postfix-files under meta_directory,
which postfix-script only reads). Nothing leaves the machine: every
message is put on hold at end of DATA (smtpd_end_of_data_restrictions =
static:HOLD), and in case one ever left the hold queue every transport is
discard:. No DNS is used (smtpd_peername_lookup = no, explicit myhostname).

Messages are read back with postqueue -j (to list the hold queue) and
postcat (envelope records and content). The log goes to a file through
postlogd (maillog_file), so no syslog daemon is needed.

Services (all on loopback, 127.0.0.1 and ::1, each with its own
syslog_name so that the log shows which one a client talked to):
  plain      relays for mynetworks, no TLS
  alt        a second plain one (the revaliases hub/port test)
  submission STARTTLS required, Cyrus SASL AUTH (PLAIN LOGIN), relays only
             for authenticated clients
  smtps      implicit TLS (wrapper mode), AUTH
  ccert      STARTTLS required with a client certificate from the test CA
  wrongname  STARTTLS + AUTH, certificate for the wrong host name
  unknownca  STARTTLS + AUTH, certificate from an unknown CA
"""

import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time

from helpers import LogReader, free_port

MYHOSTNAME = "hub.example.test"
SASL_USER = "hubuser"
SASL_PASS = "hub-Pass-9x"

POSTFIX = "/usr/sbin/postfix"
POSTCAT = "/usr/sbin/postcat"
POSTQUEUE = "/usr/sbin/postqueue"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"

SERVICES = ("plain", "alt", "submission", "smtps", "ccert", "wrongname",
            "unknownca")

MASTER_TAIL = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


# Stops the hub if the test process dies without doing it (killed by a
# timeout, say): it waits for EOF on a pipe that only the test process
# holds, then runs `postfix stop` and removes the hub's directory (or
# cleanup_dir), unless it was told "done" first.
WATCHDOG = """
import shutil, subprocess, sys
if sys.stdin.buffer.read() != b"done":
    subprocess.run([sys.argv[1], "-c", sys.argv[2], "stop"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)
    shutil.rmtree(sys.argv[3], ignore_errors=True)
"""


class HubMessage:
    """One message in the hub's hold queue, as postcat shows it."""

    def __init__(self, qid, text):
        self.qid = qid
        self.text = text
        env, _, rest = text.partition("*** MESSAGE CONTENTS")
        content = rest.split("\n", 1)[1] if "\n" in rest else ""
        content = content.split("*** HEADER EXTRACTED")[0]
        self.content = content
        self.sender = None
        self.recipients = []
        self.attrs = {}
        for line in env.splitlines():
            key, _, value = line.partition(": ")
            if key == "sender":
                self.sender = value.strip()
            elif key == "recipient":
                self.recipients.append(value.strip())
            elif key == "named_attribute":
                k, _, v = value.partition("=")
                self.attrs[k] = v
        # The hub's own Received: comes first; split headers from body.
        head, _, body = content.partition("\n\n")
        self.header_block = head
        self.body = body
        self.headers = []   # (name, value) unfolded, in order
        for line in head.split("\n"):
            if line[:1] in (" ", "\t") and self.headers:
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
            elif ":" in line:
                name, _, value = line.partition(":")
                self.headers.append((name, value.strip()))

    def header(self, name):
        """Values of every header called name (case-insensitive)."""
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def server_port(self):
        return int(self.attrs.get("server_port", "0"))


class PostfixHub:
    def __init__(self, base, certs, cleanup_dir=None):
        """cleanup_dir: what to remove if the test process dies (base)."""
        self.base = base
        self.cleanup_dir = cleanup_dir or base
        self.certs = certs
        self.conf = os.path.join(base, "conf")
        self.queue = os.path.join(base, "queue")
        self.data = os.path.join(base, "data")
        # Debian's Postfix reads smtpd.conf from $config_directory/sasl
        # whatever cyrus_sasl_config_path says; set both.
        self.sasl = os.path.join(self.conf, "sasl")
        self.maillog = os.path.join(base, "maillog")
        self.ports = {name: free_port() for name in SERVICES}
        self.running = False
        self._seen = {}
        self._watch_fd = None

    # -- setup -------------------------------------------------------

    def _main_cf(self):
        return "\n".join([
            "compatibility_level = 3.6",
            "queue_directory = " + self.queue,
            "data_directory = " + self.data,
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "inet_interfaces = loopback-only",
            "inet_protocols = all",
            "myhostname = " + MYHOSTNAME,
            "mydomain = example.test",
            "mydestination =",
            "mynetworks = 127.0.0.0/8 [::1]/128",
            "alias_maps =",
            "alias_database =",
            "local_recipient_maps =",
            "maillog_file = " + self.maillog,
            "maillog_file_prefixes = " + self.base,
            # No DNS at all: the tests may only talk to loopback.
            "smtpd_peername_lookup = no",
            # Keep the client's headers as sent: no qualification or
            # added Date/Message-ID by the hub, so the tests see postino's.
            "local_header_rewrite_clients =",
            "always_add_missing_headers = no",
            # Nothing is ever delivered: hold everything, discard the rest.
            "smtpd_end_of_data_restrictions = check_client_access "
            "static:HOLD",
            "default_transport = discard:test hub",
            "relay_transport = discard:test hub",
            "local_transport = discard:test hub",
            "virtual_transport = discard:test hub",
            "notify_classes =",
            "message_size_limit = 0",
            "biff = no",
            "smtpd_tls_received_header = yes",
            "smtpd_sasl_authenticated_header = yes",
            "smtpd_tls_loglevel = 1",
            "smtpd_sasl_type = cyrus",
            "smtpd_sasl_path = smtpd",
            "cyrus_sasl_config_path = " + self.sasl,
            "smtpd_sasl_local_domain = " + MYHOSTNAME,
            "smtpd_relay_restrictions = permit_mynetworks, reject",
            "",
        ])

    def _service(self, name, opts):
        lines = ["%d inet n - n - - smtpd" % self.ports[name],
                 "  -o syslog_name=postfix-%s" % name]
        lines += ["  -o %s=%s" % kv for kv in opts]
        return "\n".join(lines) + "\n"

    def _master_cf(self):
        c = self.certs

        def chain(pair):
            return ("smtpd_tls_chain_files", "%s,%s" % (pair.key, pair.cert))

        auth = [("smtpd_tls_security_level", "encrypt"),
                ("smtpd_sasl_auth_enable", "yes"),
                ("smtpd_tls_auth_only", "yes"),
                ("smtpd_relay_restrictions",
                 "permit_sasl_authenticated,reject")]
        out = self._service("plain", [])
        out += self._service("alt", [])
        out += self._service("submission", [chain(c.server)] + auth)
        out += self._service("smtps", [chain(c.server),
                                       ("smtpd_tls_wrappermode", "yes")]
                             + auth)
        out += self._service("ccert", [
            chain(c.server),
            ("smtpd_tls_security_level", "encrypt"),
            ("smtpd_tls_ask_ccert", "yes"),
            ("smtpd_tls_req_ccert", "yes"),
            ("smtpd_tls_CAfile", c.ca.cert),
            ("smtpd_relay_restrictions",
             "permit_tls_all_clientcerts,reject")])
        out += self._service("wrongname", [chain(c.wrongname)] + auth)
        out += self._service("unknownca", [chain(c.unknownca)] + auth)
        return out + MASTER_TAIL

    def setup(self):
        pw = pwd.getpwnam("postfix")
        for d in (self.conf, self.queue, self.data, self.sasl):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.base, 0o755)
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(self._main_cf())
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(self._master_cf())
        db = os.path.join(self.sasl, "sasldb2")
        with open(os.path.join(self.sasl, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\n"
                    "auxprop_plugin: sasldb\n"
                    "mech_list: PLAIN LOGIN\n"
                    "sasldb_path: %s\n" % db)
        subprocess.run([SASLPASSWD2, "-f", db, "-c", "-p", "-u",
                        MYHOSTNAME, SASL_USER], input=SASL_PASS.encode(),
                       check=True, capture_output=True)
        os.chown(db, pw.pw_uid, pw.pw_gid)
        os.chmod(db, 0o600)

    def _postfix(self, *args, check=True):
        with open(os.path.join(self.base, "postfix-cmd.log"), "ab") as log:
            return subprocess.run([POSTFIX, "-c", self.conf, *args],
                                  stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=log, check=check, timeout=60)

    def _watchdog(self):
        r, w = os.pipe()
        subprocess.Popen([sys.executable, "-c", WATCHDOG, POSTFIX, self.conf,
                          self.cleanup_dir], stdin=r,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        os.close(r)
        self._watch_fd = w   # not inherited by anything started later

    def start(self):
        self.setup()
        self._watchdog()
        self._postfix("start")
        self.running = True
        # master binds the listeners before it forks anything; wait until
        # every port answers so the first test does not race it.
        deadline = time.monotonic() + 20
        for name, port in self.ports.items():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("postfix service %s on %d did "
                                           "not come up; see %s" % (
                                               name, port, self.maillog))
                    time.sleep(0.05)
        return self

    def stop(self):
        if self.running:
            self._postfix("stop", check=False)
            self.running = False
        if self._watch_fd is not None:
            os.write(self._watch_fd, b"done")
            os.close(self._watch_fd)
            self._watch_fd = None

    # -- reading back ------------------------------------------------

    def hub(self, service, v6=False):
        """MailHub= value for a service."""
        host = "[::1]" if v6 else "127.0.0.1"
        return "%s:%d" % (host, self.ports[service])

    def queue_ids(self):
        out = subprocess.run([POSTQUEUE, "-c", self.conf, "-j"],
                             capture_output=True, text=True, check=True,
                             stdin=subprocess.DEVNULL).stdout
        return [json.loads(l)["queue_id"] for l in out.splitlines() if l]

    def message(self, qid):
        if qid not in self._seen:
            text = subprocess.run(
                [POSTCAT, "-c", self.conf, "-q", qid],
                capture_output=True, text=True, check=True,
                stdin=subprocess.DEVNULL, errors="surrogateescape").stdout
            self._seen[qid] = HubMessage(qid, text)
        return self._seen[qid]

    def find(self, token, timeout=5.0, expect=1):
        """Messages whose content contains token; wait for `expect` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in map(self.message, self.queue_ids())
                     if token in m.content]
            if len(found) >= expect or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def find_one(self, token, timeout=5.0):
        found = self.find(token, timeout)
        assert len(found) == 1, "hub holds %d messages with %r (want 1)" % (
            len(found), token)
        return found[0]

    def log_size(self):
        return LogReader(self.maillog).mark()

    def log_since(self, offset):
        return LogReader(self.maillog).since(offset)

    def wait_log(self, offset, pattern, timeout=5.0):
        """The first log line after offset matching pattern (regex)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_since(offset).splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def available():
    """Why the hub cannot run here, or None."""
    if os.geteuid() != 0:
        return "the private Postfix hub needs root (postfix -c DIR start)"
    for tool in (POSTFIX, POSTCAT, POSTQUEUE, SASLPASSWD2):
        if not os.access(tool, os.X_OK):
            return "%s is missing (run tests/install-deps.sh)" % tool
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user (the postfix package is not installed)"
    return None
