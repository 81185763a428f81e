"""Throwaway X.509 material for the end-to-end tests (openssl CLI).

Everything lives in one directory and is valid for a year (shortlived
for three days: check --hub warns about it):

    ca.pem / ca.key            the test CA that postino is told to trust
    server.pem / server.key    CN=localhost, SAN DNS:localhost, IP:127.0.0.1,
                               IP:::1, signed by the test CA
    wrongname.pem / .key       signed by the test CA,
                               SAN DNS:wrong.example.invalid only
    other-ca.pem / .key        a second CA that postino does not know
    unknownca.pem / .key       CN=localhost, the good SANs, signed by other-ca
    client.pem / client.key    a client certificate signed by the test CA
    client-combined.pem        client cert and key in one file (ssmtp style)
    shortlived.pem / .key      like server.pem, but expires in three days

EC P-256 keys keep generation fast (a few milliseconds each).
"""

import hashlib
import os
import ssl
import subprocess
from dataclasses import dataclass

OPENSSL = "openssl"
DAYS = "365"
CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
GOOD_SAN = "DNS:localhost,IP:127.0.0.1,IP:::1"


@dataclass
class CertPair:
    cert: str
    key: str
    # Pins in the form TLSFingerprint= takes.
    spki_pin: str = ""
    cert_pin: str = ""


@dataclass
class CertSet:
    dir: str
    ca: CertPair
    other_ca: CertPair
    server: CertPair
    wrongname: CertPair
    unknownca: CertPair
    client: CertPair
    client_combined: str
    shortlived: CertPair = None


def _run(args, cwd):
    proc = subprocess.run([OPENSSL] + args, cwd=cwd, capture_output=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (
            " ".join(args), proc.stderr.decode(errors="replace")))
    return proc.stdout


def _make_ca(d, name, cn):
    _run(["req", "-x509", *CURVE, "-nodes", "-days", DAYS,
          "-subj", "/O=postino tests/CN=%s" % cn,
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          "-keyout", name + ".key", "-out", name + ".pem"], d)
    return CertPair(os.path.join(d, name + ".pem"),
                    os.path.join(d, name + ".key"))


def _make_leaf(d, name, cn, ca, san, eku, days=DAYS):
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=%s\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\n" % eku)
        if san:
            f.write("subjectAltName=%s\n" % san)
    _run(["req", "-new", *CURVE, "-nodes",
          "-subj", "/O=postino tests/CN=%s" % cn,
          "-keyout", name + ".key", "-out", name + ".csr"], d)
    _run(["x509", "-req", "-in", name + ".csr", "-CA", ca.cert,
          "-CAkey", ca.key, "-CAcreateserial", "-days", days,
          "-sha256", "-extfile", ext, "-out", name + ".pem"], d)
    pair = CertPair(os.path.join(d, name + ".pem"),
                    os.path.join(d, name + ".key"))
    pair.spki_pin, pair.cert_pin = pins(pair.cert)
    return pair


def pins(cert_path):
    """Return ("sha256:<hex of SPKI DER>", "sha256:<hex of cert DER>")."""
    spki = _run(["x509", "-in", cert_path, "-noout", "-pubkey"], None)
    spki_der = subprocess.run([OPENSSL, "pkey", "-pubin", "-outform", "DER"],
                              input=spki, capture_output=True,
                              check=True).stdout
    with open(cert_path) as f:
        cert_der = ssl.PEM_cert_to_DER_cert(f.read())
    return ("sha256:" + hashlib.sha256(spki_der).hexdigest(),
            "sha256:" + hashlib.sha256(cert_der).hexdigest())


def make_certs(d):
    """Create the whole set in directory d (which must exist)."""
    ca = _make_ca(d, "ca", "postino test CA")
    other = _make_ca(d, "other-ca", "postino unknown CA")
    server = _make_leaf(d, "server", "localhost", ca, GOOD_SAN, "serverAuth")
    wrong = _make_leaf(d, "wrongname", "wrong.example.invalid", ca,
                       "DNS:wrong.example.invalid", "serverAuth")
    unknown = _make_leaf(d, "unknownca", "localhost", other, GOOD_SAN,
                         "serverAuth")
    shortlived = _make_leaf(d, "shortlived", "localhost", ca, GOOD_SAN,
                            "serverAuth", days="3")
    client = _make_leaf(d, "client", "postino-client", ca, "",
                        "clientAuth")
    combined = os.path.join(d, "client-combined.pem")
    with open(combined, "w") as out:
        for part in (client.cert, client.key):
            with open(part) as f:
                out.write(f.read())
    # Keys are read by Postfix's smtpd as root before it drops privileges;
    # 0600 everywhere is the realistic mode.
    for name in os.listdir(d):
        if name.endswith(".key") or name == "client-combined.pem":
            os.chmod(os.path.join(d, name), 0o600)
    return CertSet(d, ca, other, server, wrong, unknown, client, combined,
                   shortlived)
