# SPDX-License-Identifier: MIT
"""Fixtures of ringmaster's Python tests.

Run by tests/python/test-python.sh (make check), which sets PYTHONPATH to
engine/python and RINGMASTER_LIBSHMRING to the build tree's library.  By
hand, from the top of a built tree:
    PYTHONPATH=engine/python RINGMASTER_LIBSHMRING=build/shmring/.libs/libshmring.so.1 \
        python3 -m pytest -q tests/python
"""

import os
import queue
import socket
import subprocess
import sys
import threading
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.path.realpath(os.environ.get("top_srcdir") or os.path.join(HERE, os.pardir, os.pardir))
PACKAGE_DIR = os.path.join(TOP_SRCDIR, "engine", "python")
HOOK_DIR = os.path.join(TOP_SRCDIR, "engine", "python", "hook")
FAKE_TORCH_DIR = os.path.join(HERE, "fake_torch")

if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)


class NotifyReceiver:
    """A fake notify socket: a bound AF_UNIX datagram socket, as the
    supervisor (or systemd) listens on, read by a thread as soon as
    datagrams come (the kernel queues only net.unix.max_dgram_qlen of
    them, 10 by default, before senders wait)."""

    def __init__(self, address, bind_to, reading=True):
        self.address = address          # what goes into NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self._queue = queue.Queue()
        self._stop = False
        self._thread = None
        if reading:
            self.sock.settimeout(0.05)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()

    def _read(self):
        while not self._stop:
            try:
                self._queue.put(self.sock.recv(65536))
            except socket.timeout:
                continue
            except OSError:
                return

    def recv(self, timeout=5.0):
        """The next datagram (bytes); fails the test after timeout."""
        if self._thread is None:
            self.sock.settimeout(timeout)
            try:
                return self.sock.recv(65536)
            except socket.timeout:
                pytest.fail("no datagram on the notify socket within %s s" % timeout)
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("no datagram on the notify socket within %s s" % timeout)

    def drain(self, quiet=0.2):
        """Every datagram that arrives until none came for `quiet` seconds."""
        out = []
        while True:
            try:
                if self._thread is None:
                    self.sock.settimeout(quiet)
                    out.append(self.sock.recv(65536))
                else:
                    out.append(self._queue.get(timeout=quiet))
            except (socket.timeout, queue.Empty):
                return out

    def close(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()


@pytest.fixture
def notify_receiver(tmp_path):
    path = str(tmp_path / "notify.sock")
    r = NotifyReceiver(path, path)
    yield r
    r.close()


@pytest.fixture
def silent_receiver(tmp_path):
    """A notify socket nobody reads until the test does."""
    path = str(tmp_path / "silent.sock")
    r = NotifyReceiver(path, path, reading=False)
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
