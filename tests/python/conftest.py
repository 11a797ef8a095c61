# SPDX-License-Identifier: MIT
"""Fixtures of ringmaster's Python tests.

Run by tests/python/test-python.sh (make check), which sets PYTHONPATH to
engine/python and RINGMASTER_LIBSHMRING to the build tree's library.  By
hand, from the top of a built tree:
    PYTHONPATH=engine/python RINGMASTER_LIBSHMRING=build/shmring/.libs/libshmring.so.1 \
        python3 -m pytest -q tests/python
"""

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.normpath(os.path.join(HERE, os.pardir, os.pardir))
PACKAGE_DIR = os.path.join(TOP_SRCDIR, "engine", "python")
HOOK_DIR = os.path.join(TOP_SRCDIR, "engine", "python", "hook")
FAKE_TORCH_DIR = os.path.join(HERE, "fake_torch")

if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)


class NotifyReceiver:
    """A fake notify socket: a bound AF_UNIX datagram socket, as the
    supervisor (or systemd) listens on."""

    def __init__(self, address, bind_to):
        self.address = address          # what goes into NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)

    def recv(self, timeout=5.0):
        """The next datagram (bytes); fails the test after timeout."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            pytest.fail("no datagram on the notify socket within %s s" % timeout)

    def drain(self, quiet=0.2):
        """Every datagram that arrives until none came for `quiet` seconds."""
        out = []
        self.sock.settimeout(quiet)
        while True:
            try:
                out.append(self.sock.recv(65536))
            except socket.timeout:
                return out

    def wait_for(self, datagram, timeout=10.0):
        """Reads until `datagram` arrives; returns everything read."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                break
            seen.append(d)
            if d == datagram:
                return seen
        pytest.fail("datagram %r did not come within %s s; got %r" % (datagram, timeout, seen))

    def close(self):
        self.sock.close()


@pytest.fixture
def notify_receiver(tmp_path):
    path = str(tmp_path / "notify.sock")
    r = NotifyReceiver(path, path)
    yield r
    r.close()


@pytest.fixture
def abstract_receiver():
    name = "ringmaster-test-%s" % uuid.uuid4().hex
    r = NotifyReceiver("@" + name, "\0" + name)
    yield r
    r.close()


def clean_env(**extra):
    """The environment for a child Python: ours without any ringmaster or
    notify variable, plus extra (a None value removes the variable)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RINGMASTER_") or k == "RINGMASTER_LIBSHMRING"}
    for k in ("NOTIFY_SOCKET", "PYTHONFAULTHANDLER", "PYTHONSTARTUP", "PYTHONINSPECT"):
        env.pop(k, None)
    env["PYTHONPATH"] = PACKAGE_DIR
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run_python(code, env, timeout=60, **kwargs):
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


@pytest.fixture
def run_id():
    return "pytest-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
