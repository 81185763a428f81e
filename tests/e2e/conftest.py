"""Fixtures of the end-to-end suite.

  certs       session: throwaway CA and certificates (certs.py)
  hub         session: a private Postfix on loopback (postfixhub.py);
              its tests are skipped, with the reason, when not root
  fault       factory: fault(**script) starts a FaultServer for one test,
              the suite's one scripted SMTP peer (faultserver.py: replies,
              stalls, drops, TLS, AUTH, a late greeting, a black hole,
              raw scripts)
  postino     one test's postino: config, revaliases, queue dir, log file
  asan        the binary is an ASan build

The binary is $POSTINO_BIN (default build/postino at the top of the
repository); without it every test that runs postino is skipped. It is
run only through helpers (Postino.start/run, or launch/execute behind a
wrapper) and its log read only through helpers.LogReader.
"""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import certs as certs_mod  # noqa: E402
import helpers  # noqa: E402
import postfixhub  # noqa: E402
from faultserver import FaultServer  # noqa: E402


@pytest.fixture(scope="session")
def postino_binary():
    path = helpers.postino_bin()
    if not os.access(path, os.X_OK):
        pytest.skip("no postino binary at %s (run make, or set "
                    "POSTINO_BIN)" % path)
    return path


@pytest.fixture(scope="session")
def asan(postino_binary):
    return helpers.is_asan(postino_binary)


@pytest.fixture(scope="session")
def shared_dir():
    # Not under pytest's tmp_path: that is mode 0700 for root, and the
    # Postfix daemons run as the postfix user.
    d = tempfile.mkdtemp(prefix="postino-e2e-")
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("POSTINO_E2E_KEEP") != "1":
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def certs(shared_dir):
    d = os.path.join(shared_dir, "certs")
    os.mkdir(d, 0o755)
    return certs_mod.make_certs(d)


@pytest.fixture(scope="session")
def hub(shared_dir, certs):
    why = postfixhub.available()
    if why:
        pytest.skip(why)
    base = os.path.join(shared_dir, "postfix")
    os.mkdir(base, 0o755)
    h = postfixhub.PostfixHub(base, certs, cleanup_dir=shared_dir)
    try:
        h.start()
    except Exception:
        h.stop()
        raise
    yield h
    h.stop()


@pytest.fixture
def fault():
    servers = []

    def start(**script):
        srv = FaultServer(**script).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()
        # A fault in the server itself must not pass for postino's.
        assert not [e for e in srv.errors if "server error" in e], srv.errors
        for s in srv.sessions:
            bad = [e for e in s.events if e.startswith("server error")]
            assert not bad, bad


@pytest.fixture
def postino(postino_binary, tmp_path):
    return helpers.Postino(postino_binary, tmp_path)
