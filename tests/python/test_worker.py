# SPDX-License-Identifier: MIT
"""ringmaster.worker: the exact datagrams of every call, the no-op without
a notify socket, argument checks, and send failures that never raise."""

import os
import socket
import struct
import threading
import time

import pytest

from conftest import clean_env, run_python
from ringmaster import worker


@pytest.fixture
def under(monkeypatch, notify_receiver):
    """This process under a fake ringmaster: NOTIFY_SOCKET set."""
    monkeypatch.delenv("RINGMASTER_NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("NOTIFY_SOCKET", notify_receiver.address)
    return notify_receiver


@pytest.mark.parametrize("call, datagram", [
    (lambda: worker.phase("load-weights"), b"X_RINGMASTER_PHASE=load-weights"),
    (lambda: worker.phase("A.b_c-9"), b"X_RINGMASTER_PHASE=A.b_c-9"),
    (lambda: worker.phase("x" * 64), b"X_RINGMASTER_PHASE=" + b"x" * 64),
    (lambda: worker.phase_end("nccl-init"), b"X_RINGMASTER_PHASE_END=nccl-init"),
    (lambda: worker.progress(3, 10), b"X_RINGMASTER_PROGRESS=3/10"),
    (lambda: worker.progress(0, 1), b"X_RINGMASTER_PROGRESS=0/1"),
    (lambda: worker.progress(7, 7), b"X_RINGMASTER_PROGRESS=7/7"),
    (lambda: worker.ready(), b"READY=1"),
    (lambda: worker.ready("serving on :8000"), b"READY=1\nSTATUS=serving on :8000"),
    (lambda: worker.heartbeat(), b"WATCHDOG=1"),
    (lambda: worker.status("loading 3/10 shards"), b"STATUS=loading 3/10 shards"),
    (lambda: worker.status(""), b"STATUS="),
    (lambda: worker.status("caf\u00e9"), "STATUS=caf\u00e9".encode("utf-8")),
    (lambda: worker.stopping(), b"STOPPING=1"),
    (lambda: worker.errno(5), b"ERRNO=5"),
    (lambda: worker.errno(0), b"ERRNO=0"),
    (lambda: worker.extend_timeout(30), b"EXTEND_TIMEOUT_USEC=30000000"),
    (lambda: worker.extend_timeout(0.25), b"EXTEND_TIMEOUT_USEC=250000"),
    (lambda: worker.extend_timeout(1e-9), b"EXTEND_TIMEOUT_USEC=1"),
    (lambda: worker.notify("READY=1\nSTATUS=x"), b"READY=1\nSTATUS=x"),
])
def test_exact_datagram(under, call, datagram):
    assert call() is True
    assert under.recv() == datagram
    assert under.drain(0.05) == []              # exactly one datagram per call


def test_phase_scope(under):
    with worker.phase_scope("warmup"):
        assert under.recv() == b"X_RINGMASTER_PHASE=warmup"
    assert under.recv() == b"X_RINGMASTER_PHASE_END=warmup"
    with pytest.raises(OSError):
        with worker.phase_scope("load-weights"):
            raise OSError(2, "no such shard:\n  shard-3.safetensors")
    # Raised inside: the end, and why, in one datagram.
    assert under.drain() == [b"X_RINGMASTER_PHASE=load-weights",
                             b"X_RINGMASTER_PHASE_END=load-weights\n"
                             b"STATUS=load-weights failed: FileNotFoundError: [Errno 2] no such shard: shard-3.safetensors"]


def test_status_is_cut_to_its_limit(under):
    assert worker.status("\u00e9" * 1000)       # 2000 bytes of UTF-8
    d = under.recv()
    assert d.startswith(b"STATUS=")
    body = d[len(b"STATUS="):]
    assert len(body) <= worker.STATUS_MAX_BYTES
    assert body.decode("utf-8") == "\u00e9" * (worker.STATUS_MAX_BYTES // 2)


def test_ringmaster_notify_socket_wins(monkeypatch, tmp_path, notify_receiver):
    other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    other.bind(str(tmp_path / "systemd.sock"))
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "systemd.sock"))
        monkeypatch.setenv("RINGMASTER_NOTIFY_SOCKET", notify_receiver.address)
        assert worker.notify_socket() == notify_receiver.address
        assert worker.phase("warmup")
        assert notify_receiver.recv() == b"X_RINGMASTER_PHASE=warmup"
        other.settimeout(0.1)
        with pytest.raises(socket.timeout):
            other.recv(100)
    finally:
        other.close()


def test_abstract_namespace(monkeypatch, abstract_receiver):
    monkeypatch.delenv("RINGMASTER_NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("NOTIFY_SOCKET", abstract_receiver.address)
    assert abstract_receiver.address.startswith("@")
    assert worker.ready()
    assert abstract_receiver.recv() == b"READY=1"


def test_noop_without_notify_socket():
    """Not under ringmaster: every call returns False and opens nothing."""
    code = r"""
import sys
from ringmaster import worker
calls = [worker.phase("x"), worker.phase_end("x"), worker.progress(1, 2), worker.ready(),
         worker.ready("s"), worker.heartbeat(), worker.status("s"), worker.stopping(),
         worker.errno(3), worker.extend_timeout(1), worker.notify("READY=1")]
assert calls == [False] * len(calls), calls
assert worker._notifier._sock is None
assert not worker.enabled()
# Arguments are checked all the same.
try:
    worker.phase("bad name")
except ValueError:
    print("ok")
"""
    r = run_python(code, clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert r.stderr == ""


@pytest.mark.parametrize("call, exc", [
    (lambda: worker.phase(""), ValueError),
    (lambda: worker.phase("x" * 65), ValueError),
    (lambda: worker.phase("two words"), ValueError),
    (lambda: worker.phase("nl\n"), ValueError),
    (lambda: worker.phase("caf\u00e9"), ValueError),
    (lambda: worker.phase("a=b"), ValueError),
    (lambda: worker.phase(None), TypeError),
    (lambda: worker.phase(b"bytes"), TypeError),
    (lambda: worker.phase_end("x/y"), ValueError),
    (lambda: worker.phase_scope("x y"), ValueError),
    (lambda: worker.progress(-1, 3), ValueError),
    (lambda: worker.progress(4, 3), ValueError),
    (lambda: worker.progress(0, 0), ValueError),
    (lambda: worker.progress(1.5, 3), TypeError),
    (lambda: worker.progress(True, 3), TypeError),
    (lambda: worker.status("two\nlines"), ValueError),
    (lambda: worker.status("nul\0"), ValueError),
    (lambda: worker.status(3), TypeError),
    (lambda: worker.ready("a\nREADY=1"), ValueError),
    (lambda: worker.errno(-1), ValueError),
    (lambda: worker.errno("5"), TypeError),
    (lambda: worker.extend_timeout(0), ValueError),
    (lambda: worker.extend_timeout(-1), ValueError),
    (lambda: worker.extend_timeout(float("inf")), ValueError),
    (lambda: worker.extend_timeout(float("nan")), ValueError),
    (lambda: worker.extend_timeout("5"), TypeError),
    (lambda: worker.notify("no equals sign"), ValueError),
    (lambda: worker.notify("=value"), ValueError),
    (lambda: worker.notify("READY=1\n"), ValueError),
])
def test_argument_checks(under, call, exc):
    with pytest.raises(exc):
        call()
    assert under.drain(0.05) == []              # nothing sent


def test_send_failure_returns_false_and_warns_once(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("RINGMASTER_NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens.sock"))
    monkeypatch.setattr(worker._notifier, "_warned", False)
    assert worker.ready() is False
    assert worker.heartbeat() is False
    err = capsys.readouterr().err
    assert err.count("ringmaster.worker:") == 1
    assert "nobody-listens.sock" in err


def test_relative_notify_socket_is_refused(monkeypatch, capsys):
    monkeypatch.delenv("RINGMASTER_NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("NOTIFY_SOCKET", "relative.sock")
    monkeypatch.setattr(worker._notifier, "_warned", False)
    assert worker.ready() is False
    assert "relative.sock" in capsys.readouterr().err


def test_receiver_that_stopped_reading(monkeypatch, silent_receiver):
    """A full receive queue makes a call wait at most SEND_TIMEOUT, then
    drop the datagram: never raise, never hang."""
    monkeypatch.delenv("RINGMASTER_NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("NOTIFY_SOCKET", silent_receiver.address)
    monkeypatch.setattr(worker, "SEND_TIMEOUT", 0.2)
    monkeypatch.setattr(worker._notifier, "_warned", True)
    worker._notifier._close()                   # reconnect with the new timeout
    results = []
    start = time.monotonic()
    for _ in range(2000):
        ok = worker.heartbeat()
        results.append(ok)
        if not ok:
            break
    elapsed = time.monotonic() - start
    assert results[-1] is False, "the queue never filled up"
    assert 0.15 <= elapsed < 5
    received = silent_receiver.drain()
    assert len(received) == results.count(True)
    # The socket still works once the receiver reads again.
    assert worker.heartbeat() is True
    assert silent_receiver.recv() == b"WATCHDOG=1"
    worker._notifier._close()


def test_receiver_replaced(under, tmp_path, monkeypatch):
    """The socket is reconnected when the receiver goes and comes back."""
    assert worker.ready()
    assert under.recv() == b"READY=1"
    under.close()
    os.unlink(under.address)
    time.sleep(0.1)
    again = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    again.bind(under.address)
    try:
        assert worker.heartbeat() is True
        again.settimeout(5)
        assert again.recv(100) == b"WATCHDOG=1"
    finally:
        again.close()


def test_threads_share_one_socket(under):
    """Concurrent calls from many threads: every datagram whole, and as many
    received as were reported sent."""
    sent = []
    got = []

    def reader():
        while True:
            d = under.recv(10)
            if d == b"STOPPING=1":
                return
            got.append(d)

    def sender(i):
        n = 0
        for j in range(200):
            n += worker.progress(j, 200 + i)
        sent.append(n)

    r = threading.Thread(target=reader)
    r.start()
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker.stopping()
    r.join(30)
    assert sum(sent) == len(got) == 1600
    for i in range(8):
        mine = [d for d in got if d.endswith(b"/%d" % (200 + i))]
        assert mine == [b"X_RINGMASTER_PROGRESS=%d/%d" % (j, 200 + i) for j in range(200)]


def recv_with_pid(sock):
    """A datagram and its sender's pid (SCM_CREDENTIALS), as the supervisor
    reads them to map a datagram to a rank."""
    sock.settimeout(5)
    data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            return data, struct.unpack("3i", payload[:struct.calcsize("3i")])[0]
    return data, None


def test_forked_child_sends_with_its_own_credentials(monkeypatch, silent_receiver):
    """The socket, connected before the fork, is shared with the child; each
    datagram still carries the pid of the process that sent it."""
    sock = silent_receiver.sock                 # no reader thread in a process that forks
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    monkeypatch.delenv("RINGMASTER_NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("NOTIFY_SOCKET", silent_receiver.address)
    worker._notifier._close()
    assert worker.phase("before-fork")
    assert recv_with_pid(sock) == (b"X_RINGMASTER_PHASE=before-fork", os.getpid())
    pid = os.fork()
    if pid == 0:
        try:
            ok = worker.phase("in-child")
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert recv_with_pid(sock) == (b"X_RINGMASTER_PHASE=in-child", pid)
    assert worker.phase("after-fork")
    assert recv_with_pid(sock) == (b"X_RINGMASTER_PHASE=after-fork", os.getpid())


def test_environment_helpers(monkeypatch):
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "RINGMASTER_RUN_ID", "RINGMASTER_RUN_DIR"):
        monkeypatch.delenv(k, raising=False)
    assert (worker.rank(), worker.local_rank(), worker.world_size(), worker.local_world_size()) == (0, 0, 1, 1)
    assert worker.run_id() is None and worker.run_dir() is None
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("RINGMASTER_RUN_ID", "r1")
    monkeypatch.setenv("RINGMASTER_RUN_DIR", "/run/x")
    assert (worker.rank(), worker.local_rank(), worker.world_size(), worker.local_world_size()) == (3, 1, 8, 4)
    assert worker.run_id() == "r1" and worker.run_dir() == "/run/x"
    monkeypatch.setenv("RANK", "three")
    with pytest.raises(ValueError, match="RANK"):
        worker.rank()


def test_package_import_is_light():
    """import ringmaster loads the worker module, not ctypes or libshmring."""
    code = "import sys; %s print('ctypes' in sys.modules, 'ringmaster.shmring' in sys.modules)"
    base = run_python(code % "", clean_env())
    r = run_python(code % "import ringmaster;", clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout == base.stdout
    assert r.stdout.split()[1] == "False"
