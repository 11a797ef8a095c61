# SPDX-License-Identifier: MIT
"""Workers an engine spawns (docs/spawned-workers.md), the Python side:
the start-up hook's announcements (at start-up, after fork, in every
multiprocessing start method), init_process_group's group, how a worker
ends, and the per-worker capture handshake against a fake supervisor that
takes the pipes (or declines, or never answers)."""

import array
import json
import os
import socket
import struct
import sys
import threading
import time

import pytest

from conftest import FAKE_TORCH_DIR, HOOK_DIR, PACKAGE_DIR, clean_env, run_python


class FakeSupervisor:
    """A notify socket that reads credentials and descriptors as the
    supervisor does, and answers capture requests with `answer` (b"Y",
    b"N"; None: closes the acknowledgement unanswered, as an old supervisor
    does; "keep": holds it, never answering)."""

    def __init__(self, path, answer=b"Y", barrier_delay=0.0):
        self.address = path
        self.answer = answer
        self.barrier_delay = barrier_delay      # BARRIER=1's fd closed after this long; None: never
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.05)
        self.messages = []              # (pid, {key: value}, raw)
        self.outputs = {}               # pid -> {"stdout": bytearray, "stderr": bytearray}
        self.kept = []
        self._readers = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        fd_size = array.array("i").itemsize
        while not self._stop:
            try:
                data, anc, flags, _ = self.sock.recvmsg(
                    65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(8 * fd_size))
            except socket.timeout:
                continue
            except OSError:
                return
            pid, fds = None, []
            for level, kind, body in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", body[:12])[0]
                elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(body[:len(body) - len(body) % fd_size])
                    fds.extend(a)
            text = data.decode("utf-8", "replace")
            fields = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
            with self._lock:
                self.messages.append((pid, fields, data))
            if fields.get("X_RINGMASTER_CAPTURE") == "1" and len(fds) == 3:
                out_r, err_r, ack_w = fds
                if self.answer in (b"Y", b"N") and self.answer == b"Y":
                    buffers = self.outputs.setdefault(pid, {"stdout": bytearray(), "stderr": bytearray()})
                    for fd, name in ((out_r, "stdout"), (err_r, "stderr")):
                        t = threading.Thread(target=self._drain, args=(fd, buffers[name]), daemon=True)
                        t.start()
                        self._readers.append(t)
                else:
                    os.close(out_r)
                    os.close(err_r)
                if self.answer == "keep":
                    self.kept.append(ack_w)
                    continue
                if self.answer in (b"Y", b"N"):
                    os.write(ack_w, self.answer)
                os.close(ack_w)
            elif fields.get("BARRIER") == "1" and len(fds) == 1:
                if self.barrier_delay is None:
                    self.kept.append(fds[0])
                else:
                    threading.Timer(self.barrier_delay, os.close, args=(fds[0],)).start()
            else:
                for fd in fds:
                    os.close(fd)

    @staticmethod
    def _drain(fd, buf):
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf.extend(chunk)
        os.close(fd)

    def settle(self, quiet=0.3):
        """Waits until no datagram came for `quiet` s and every pipe ended."""
        last = -1
        while True:
            time.sleep(quiet)
            with self._lock:
                n = len(self.messages)
            if n == last:
                break
            last = n
        for t in self._readers:
            t.join(10)

    def by_pid(self, pid, barriers=False):
        """What pid sent; without barriers, its BARRIER=1s left out."""
        with self._lock:
            return [f for p, f, _ in self.messages if p == pid and (barriers or f != {"BARRIER": "1"})]

    def announces(self):
        with self._lock:
            return [(p, f) for p, f, _ in self.messages if "X_RINGMASTER_WORKER" in f]

    def close(self):
        self._stop = True
        self._thread.join(5)
        for fd in self.kept:
            os.close(fd)
        self.sock.close()


@pytest.fixture
def supervisor(tmp_path):
    s = FakeSupervisor(str(tmp_path / "notify"))
    yield s
    s.close()


def worker_env(sup, tmp_path, capture=True, torch=False, **extra):
    path = [HOOK_DIR] + ([FAKE_TORCH_DIR] if torch else []) + [PACKAGE_DIR]
    env = clean_env(PYTHONPATH=os.pathsep.join(path), RINGMASTER_RUN_ID="workertest",
                    NOTIFY_SOCKET=sup.address, RINGMASTER_RUN_DIR=str(tmp_path), **extra)
    if capture:
        env["RINGMASTER_WORKER_CAPTURE"] = "1"
    return env


def run_child(code, env, timeout=60):
    import subprocess
    p = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=timeout)
    return p.pid, p.returncode, out.decode(), err.decode()


def test_announce_at_start_up(supervisor, tmp_path):
    pid, rc, out, err = run_child("print('hi')", worker_env(supervisor, tmp_path, capture=False))
    assert rc == 0, err
    supervisor.settle()
    msgs = supervisor.by_pid(pid)
    assert msgs, "no datagram from the child"
    first = msgs[0]
    assert first["X_RINGMASTER_WORKER"] == "python"
    assert first["X_RINGMASTER_WORKER_PPID"] == str(os.getpid())
    assert first["X_RINGMASTER_WORKER_ARGV"].endswith("-c print('hi')")
    assert "X_RINGMASTER_CAPTURE" not in first
    # Not offered capture: the output stays where it was; a normal end says 0.
    assert out == "hi\n"
    assert msgs[-1] == {"X_RINGMASTER_WORKER_EXIT": "0"}


def test_capture_taken(supervisor, tmp_path):
    code = "import os, sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nos.system('echo from a child')\n"
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path))
    assert rc == 0, err
    supervisor.settle()
    first = supervisor.by_pid(pid)[0]
    assert first["X_RINGMASTER_CAPTURE"] == "1"
    # Everything went through the supervisor's pipes, the shell child's too (inherited fds).
    assert out == "" and err == ""
    assert bytes(supervisor.outputs[pid]["stdout"]) == b"to stdout\nfrom a child\n"
    assert bytes(supervisor.outputs[pid]["stderr"]) == b"to stderr\n"


@pytest.mark.parametrize("answer", [b"N", None])
def test_capture_declined_keeps_the_fds(tmp_path, answer):
    sup = FakeSupervisor(str(tmp_path / "notify"), answer=answer)
    try:
        t0 = time.monotonic()
        pid, rc, out, err = run_child("import sys\nprint('out')\nprint('err', file=sys.stderr)",
                                      worker_env(sup, tmp_path))
        took = time.monotonic() - t0
        assert rc == 0, err
        assert out == "out\n" and err == "err\n"
        assert took < 1.5, "a refusal must not wait for the timeout (%.2f s)" % took
        sup.settle()
        assert pid not in sup.outputs
    finally:
        sup.close()


def test_capture_unanswered_times_out(tmp_path):
    sup = FakeSupervisor(str(tmp_path / "notify"), answer="keep")
    try:
        t0 = time.monotonic()
        pid, rc, out, err = run_child("print('still here')", worker_env(sup, tmp_path))
        took = time.monotonic() - t0
        assert rc == 0, err
        assert out == "still here\n"
        assert 1.8 <= took < 10, "waited %.2f s for the acknowledgement" % took
    finally:
        sup.close()


def test_no_supervisor_listening(tmp_path):
    env = clean_env(PYTHONPATH=os.pathsep.join([HOOK_DIR, PACKAGE_DIR]), RINGMASTER_RUN_ID="x",
                    NOTIFY_SOCKET=str(tmp_path / "nobody"), RINGMASTER_WORKER_CAPTURE="1")
    t0 = time.monotonic()
    r = run_python("print('fine')", env)
    assert r.returncode == 0 and r.stdout == "fine\n"
    assert time.monotonic() - t0 < 5


def test_outside_ringmaster_nothing_happens(supervisor, tmp_path):
    env = worker_env(supervisor, tmp_path)
    del env["RINGMASTER_RUN_ID"]
    pid, rc, out, err = run_child("print('x')", env)
    assert rc == 0 and out == "x\n"
    supervisor.settle(0.2)
    assert supervisor.by_pid(pid) == []


MP_CODE = r"""
import multiprocessing as mp, os, sys

def work(i):
    print("worker %d says hi" % i, flush=True)
    print("worker %d on stderr" % i, file=sys.stderr, flush=True)
    if i == 1:
        sys.exit(3)
    if i == 2:
        raise ValueError("worker 2 failed on purpose")

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    ps = [ctx.Process(target=work, args=(i,), name="Engine-%d" % i) for i in range(3)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("pids", " ".join(str(p.pid) for p in ps), flush=True)
    print("codes", " ".join(str(p.exitcode) for p in ps), flush=True)
"""


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_multiprocessing_children(supervisor, tmp_path, method):
    script = tmp_path / "engine.py"
    script.write_text(MP_CODE)
    import subprocess
    p = subprocess.Popen([sys.executable, str(script), method], env=worker_env(supervisor, tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.communicate(timeout=120)
    supervisor.settle()
    assert p.returncode == 0
    # The engine's own output went through its pipes.
    engine_out = bytes(supervisor.outputs[p.pid]["stdout"]).decode()
    pids = [int(x) for x in engine_out.split("pids ")[1].split("\n")[0].split()]
    assert engine_out.split("codes ")[1].split("\n")[0] == "0 3 1"
    for i, pid in enumerate(pids):
        msgs = supervisor.by_pid(pid)
        named = [m for m in msgs if m.get("X_RINGMASTER_WORKER_NAME") == "Engine-%d" % i]
        assert named, "worker %d announced with its name: %r" % (i, msgs)
        assert pid in supervisor.outputs, "worker %d has pipes of its own" % i
        out = bytes(supervisor.outputs[pid]["stdout"]).decode()
        err = bytes(supervisor.outputs[pid]["stderr"]).decode()
        assert "worker %d says hi\n" % i in out
        assert "worker %d on stderr\n" % i in err
        assert "worker %d" % i not in engine_out.split("pids")[0]
        exits = [m["X_RINGMASTER_WORKER_EXIT"] for m in msgs if "X_RINGMASTER_WORKER_EXIT" in m]
        assert exits == [str([0, 3, 1][i])], "worker %d: %r" % (i, msgs)
        # Only the capture in one announce: spawn's at start-up, fork's after fork() (not again in _bootstrap).
        assert sum(1 for m in msgs if m.get("X_RINGMASTER_CAPTURE") == "1") == 1
    msgs = supervisor.by_pid(pids[2])
    exc = [m["X_RINGMASTER_WORKER_EXCEPTION"] for m in msgs if "X_RINGMASTER_WORKER_EXCEPTION" in m]
    assert exc == ["ValueError: worker 2 failed on purpose"]
    with open(tmp_path / ("worker-%d.error.json" % pids[2])) as f:
        error = json.load(f)
    assert error["message"]["message"] == "ValueError: worker 2 failed on purpose"
    assert "in work" in error["message"]["extraInfo"]["py_callstack"]
    # The traceback multiprocessing prints is in the worker's own stderr.
    assert "ValueError: worker 2 failed on purpose" in bytes(supervisor.outputs[pids[2]]["stderr"]).decode()


def test_os_fork_child_announces(supervisor, tmp_path):
    code = r"""
import os, sys
print("parent before", flush=True)
pid = os.fork()
if pid == 0:
    print("child", flush=True)
    print("child on stderr", file=sys.stderr, flush=True)
    os._exit(7)
os.waitpid(pid, 0)
print("forked", pid, flush=True)
"""
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path))
    assert rc == 0, err
    supervisor.settle()
    engine = bytes(supervisor.outputs[pid]["stdout"]).decode()
    child = int(engine.split("forked ")[1])
    msgs = supervisor.by_pid(child)
    assert msgs[0]["X_RINGMASTER_WORKER"] == "python"
    assert msgs[0]["X_RINGMASTER_WORKER_PPID"] == str(pid)
    assert msgs[0]["X_RINGMASTER_CAPTURE"] == "1"
    assert {"X_RINGMASTER_WORKER_EXIT": "7"} in msgs
    # A plain fork's child has pipes of its own, as multiprocessing's do.
    assert bytes(supervisor.outputs[child]["stdout"]).decode() == "child\n"
    assert bytes(supervisor.outputs[child]["stderr"]).decode() == "child on stderr\n"
    assert engine == "parent before\nforked %d\n" % child


def test_os_fork_then_exec(supervisor, tmp_path):
    # The child execs at once: the new interpreter finds its pipes in place and only announces.
    code = r"""
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-c", "print('exec child')"])
os.waitpid(pid, 0)
print("forked", pid, flush=True)
"""
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path))
    assert rc == 0, err
    supervisor.settle()
    child = int(bytes(supervisor.outputs[pid]["stdout"]).decode().split("forked ")[1])
    msgs = supervisor.by_pid(child)
    announces = [m for m in msgs if "X_RINGMASTER_WORKER" in m]
    assert len(announces) == 2 and announces[1]["X_RINGMASTER_WORKER_ARGV"].endswith("print('exec child')")
    assert [m.get("X_RINGMASTER_CAPTURE") for m in announces] == ["1", None]
    assert {"X_RINGMASTER_WORKER_EXEC": "1"} in msgs
    assert bytes(supervisor.outputs[child]["stdout"]).decode() == "exec child\n"


def test_os_fork_capture_limit_and_busy_socket(supervisor, tmp_path):
    # A thread keeps the notify socket busy while the main thread forks; past
    # FORK_CAPTURE_MAX children a child only announces (its output is its parent's).
    code = r"""
import os, sys, threading
import _ringmaster_hook
from ringmaster import worker
_ringmaster_hook.FORK_CAPTURE_MAX = 5
stop = []
def chatter():
    while not stop:
        worker.status("busy")
t = threading.Thread(target=chatter)
t.start()
pids = []
for i in range(8):
    pid = os.fork()
    if pid == 0:
        print("child %d" % i, flush=True)
        os._exit(0)
    pids.append(pid)
    os.waitpid(pid, 0)
stop.append(1)
t.join()
print("pids", " ".join(map(str, pids)), flush=True)
"""
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path))
    assert rc == 0, err
    supervisor.settle()
    engine = bytes(supervisor.outputs[pid]["stdout"]).decode()
    pids = [int(x) for x in engine.split("pids ")[1].split()]
    for i, child in enumerate(pids):
        first = [m for m in supervisor.by_pid(child) if "X_RINGMASTER_WORKER" in m][0]
        if i < 5:
            assert first.get("X_RINGMASTER_CAPTURE") == "1", i
            assert bytes(supervisor.outputs[child]["stdout"]).decode() == "child %d\n" % i
        else:
            assert "X_RINGMASTER_CAPTURE" not in first, i
            assert "child %d\n" % i in engine


def test_os_fork_child_not_announced_when_off(supervisor, tmp_path):
    code = "import os\npid = os.fork()\nif pid == 0:\n    print('child', flush=True)\n    os._exit(0)\nos.waitpid(pid, 0)\n"
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path, RINGMASTER_WORKER_ANNOUNCE="0"))
    assert rc == 0, err
    supervisor.settle()
    assert supervisor.announces() == [] and out == "child\n"


def test_exec_keeps_the_capture(supervisor, tmp_path):
    code = "import os, sys\nprint('before', flush=True)\nos.execv(sys.executable, [sys.executable, '-c', 'print(\"after\")'])"
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path))
    assert rc == 0, err
    supervisor.settle()
    msgs = supervisor.by_pid(pid)
    assert {"X_RINGMASTER_WORKER_EXEC": "1"} in msgs
    announces = [m for m in msgs if "X_RINGMASTER_WORKER" in m]
    assert len(announces) == 2 and announces[1]["X_RINGMASTER_WORKER_ARGV"].endswith("print(\"after\")")
    assert sum(1 for m in msgs if m.get("X_RINGMASTER_CAPTURE") == "1") == 1
    assert bytes(supervisor.outputs[pid]["stdout"]) == b"before\nafter\n"


@pytest.mark.parametrize("code,expect", [
    ("pass", [{"X_RINGMASTER_WORKER_EXIT": "0"}]),
    ("import sys; sys.exit(5)", [{"X_RINGMASTER_WORKER_EXIT": "5"}]),
    ("import sys; sys.exit('message')", [{"X_RINGMASTER_WORKER_EXIT": "1"}]),
    ("raise KeyError('k')", [{"X_RINGMASTER_WORKER_EXCEPTION": "KeyError: 'k'"}, {"X_RINGMASTER_WORKER_EXIT": "1"}]),
])
def test_how_a_script_ends(supervisor, tmp_path, code, expect):
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path, capture=False))
    supervisor.settle()
    msgs = [m for m in supervisor.by_pid(pid) if "X_RINGMASTER_WORKER" not in m]
    assert msgs == expect


def test_group_of_init_process_group(supervisor, tmp_path):
    code = r"""
import torch.distributed as dist
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29999", world_size=4, rank=2)
"""
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path, capture=False, torch=True))
    assert rc == 0, err
    supervisor.settle()
    msgs = supervisor.by_pid(pid)
    start = [m for m in msgs if "X_RINGMASTER_PHASE" in m][0]
    assert start == {"X_RINGMASTER_PHASE": "dist-init", "X_RINGMASTER_GROUP": "tcp://127.0.0.1:29999",
                     "X_RINGMASTER_GROUP_RANK": "2", "X_RINGMASTER_GROUP_WORLD": "4"}


RELABEL_CODE = r"""
import sys, time
from ringmaster import worker
t0 = time.monotonic()
sent = worker.announce(index=3)
print("sent %s took %.3f" % (sent, time.monotonic() - t0), flush=True)
"""


def _took(text):
    words = text.split()
    return words[1] == "True", float(words[3])


@pytest.mark.parametrize("delay", [0.5, None])
def test_relabel_waits_for_the_supervisor(tmp_path, delay):
    # A captured worker's new index names its next lines: announce() returns
    # once the supervisor took it (its BARRIER=1 fd closed), or after 2 s.
    sup = FakeSupervisor(str(tmp_path / "notify"), barrier_delay=delay)
    try:
        pid, rc, out, err = run_child(RELABEL_CODE, worker_env(sup, tmp_path))
        assert rc == 0, err
        sup.settle()
        sent, took = _took(sup.outputs[pid]["stdout"].decode())
        assert sent
        if delay is None:
            assert 1.8 <= took < 10, "waited %.2f s for an unanswered barrier" % took
        else:
            assert delay - 0.05 <= took < 1.8, "announce() returned after %.2f s" % took
        msgs = sup.by_pid(pid, barriers=True)
        i = [k for k, m in enumerate(msgs) if m.get("X_RINGMASTER_WORKER_INDEX") == "3"]
        assert len(i) == 1 and msgs[i[0] + 1] == {"BARRIER": "1"}, msgs
    finally:
        sup.close()


def test_announce_not_captured_waits_too(tmp_path):
    # Not captured, an announcement still waits until it was taken: the
    # supervisor reads /proc/PID, which a child that crashes at once (and
    # is reaped) takes away.
    sup = FakeSupervisor(str(tmp_path / "notify"), barrier_delay=0.5)
    try:
        pid, rc, out, err = run_child(RELABEL_CODE, worker_env(sup, tmp_path, capture=False))
        assert rc == 0, err
        sent, took = _took(out)
        assert sent and 0.45 <= took < 1.8, took
        sup.settle()
        msgs = sup.by_pid(pid, barriers=True)
        i = [k for k, m in enumerate(msgs) if m.get("X_RINGMASTER_WORKER_INDEX") == "3"]
        assert len(i) == 1 and msgs[i[0] + 1] == {"BARRIER": "1"}, msgs
        assert msgs[0].get("X_RINGMASTER_WORKER") == "python" and msgs[1] == {"BARRIER": "1"}, \
            "the start-up announcement waits too: %r" % msgs
    finally:
        sup.close()


def test_group_waits_for_the_supervisor(tmp_path):
    sup = FakeSupervisor(str(tmp_path / "notify"), barrier_delay=0.5)
    code = r"""
import time
import torch.distributed as dist
t0 = time.monotonic()
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29999", world_size=4, rank=2)
print("took %.3f" % (time.monotonic() - t0), flush=True)
"""
    try:
        pid, rc, out, err = run_child(code, worker_env(sup, tmp_path, torch=True))
        assert rc == 0, err
        sup.settle()
        took = float(sup.outputs[pid]["stdout"].decode().split()[1])
        assert 0.45 <= took < 1.8, took
        msgs = sup.by_pid(pid, barriers=True)
        i = [k for k, m in enumerate(msgs) if "X_RINGMASTER_GROUP" in m]
        assert len(i) == 1 and msgs[i[0] + 1] == {"BARRIER": "1"}, msgs
    finally:
        sup.close()


def test_group_from_the_environment(supervisor, tmp_path):
    code = r"""
import os, torch.distributed as dist
os.environ.update(RANK="1", WORLD_SIZE="2", MASTER_ADDR="10.1.2.3", MASTER_PORT="2345")
dist.init_process_group("gloo")
"""
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path, capture=False, torch=True))
    assert rc == 0, err
    supervisor.settle()
    start = [m for m in supervisor.by_pid(pid) if "X_RINGMASTER_PHASE" in m][0]
    assert start["X_RINGMASTER_GROUP"] == "env://10.1.2.3:2345"
    assert (start["X_RINGMASTER_GROUP_RANK"], start["X_RINGMASTER_GROUP_WORLD"]) == ("1", "2")


def test_no_group_without_a_world(supervisor, tmp_path):
    code = "import torch.distributed as dist\ndist.init_process_group('gloo')\n"
    pid, rc, out, err = run_child(code, worker_env(supervisor, tmp_path, capture=False, torch=True))
    assert rc == 0, err
    supervisor.settle()
    start = [m for m in supervisor.by_pid(pid) if "X_RINGMASTER_PHASE" in m][0]
    assert start == {"X_RINGMASTER_PHASE": "dist-init"}


def test_api_checks_arguments():
    from ringmaster import worker
    with pytest.raises(ValueError):
        worker.group_fields("k", 4, 4)
    with pytest.raises(ValueError):
        worker.group_fields("", 0, 1)
    with pytest.raises(TypeError):
        worker.announce(index="2")
    with pytest.raises(ValueError):
        worker.announce(kind="rust")
    assert worker.group_fields("tcp://a:1\nX=1", 0, 2).split("\n")[0] == "X_RINGMASTER_GROUP=tcp://a:1?X=1"


def announce_worker():
    top_builddir = os.environ.get("top_builddir") or os.path.join(os.path.dirname(PACKAGE_DIR), os.pardir)
    for candidate in (os.path.join(top_builddir, "tests", "spawned", "announce-worker"),
                      os.path.join(os.path.dirname(PACKAGE_DIR), os.pardir, "build", "tests", "spawned",
                                   "announce-worker")):
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("tests/spawned/announce-worker is not built")


def run_native(sup, tmp_path, args, capture=True):
    import subprocess
    env = worker_env(sup, tmp_path, capture=capture)
    p = subprocess.Popen([announce_worker()] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=60)
    sup.settle()
    return p, out.decode(), err.decode()


def test_native_worker_announces_and_is_captured(supervisor, tmp_path):
    p, out, err = run_native(supervisor, tmp_path, ["--name", "tp-worker", "--index", "2", "--group",
                                                    "tcp://127.0.0.1:1234", "2", "4", "--print", "hello",
                                                    "--exit", "3"])
    assert p.returncode == 3
    assert out == "" and err == ""
    msgs = supervisor.by_pid(p.pid)
    first = msgs[0]
    assert first["X_RINGMASTER_WORKER"] == "native"
    assert first["X_RINGMASTER_WORKER_PPID"] == str(os.getpid())
    assert first["X_RINGMASTER_WORKER_NAME"] == "tp-worker"
    assert first["X_RINGMASTER_WORKER_INDEX"] == "2"
    assert first["X_RINGMASTER_WORKER_ARGV"].startswith(announce_worker() + " --name tp-worker")
    assert first["X_RINGMASTER_CAPTURE"] == "1"
    assert {"X_RINGMASTER_GROUP": "tcp://127.0.0.1:1234", "X_RINGMASTER_GROUP_RANK": "2",
            "X_RINGMASTER_GROUP_WORLD": "4"} in msgs
    assert msgs[-1] == {"X_RINGMASTER_WORKER_EXIT": "3"}
    assert bytes(supervisor.outputs[p.pid]["stdout"]) == b"announce=2\ngroup=1\nhello\n"
    assert bytes(supervisor.outputs[p.pid]["stderr"]) == b"stderr: hello\n"


@pytest.mark.parametrize("answer", [b"N", None])
def test_native_worker_declined(tmp_path, answer):
    sup = FakeSupervisor(str(tmp_path / "notify"), answer=answer)
    try:
        p, out, err = run_native(sup, tmp_path, ["--print", "kept"])
        assert p.returncode == 0
        assert out == "announce=1\nkept\n" and err == "stderr: kept\n"
    finally:
        sup.close()


def test_native_worker_without_capture(supervisor, tmp_path):
    p, out, err = run_native(supervisor, tmp_path, ["--print", "x"], capture=False)
    assert out == "announce=1\nx\n"
    assert "X_RINGMASTER_CAPTURE" not in supervisor.by_pid(p.pid)[0]


def test_native_worker_outside_ringmaster(tmp_path):
    import subprocess
    env = clean_env()
    r = subprocess.run([announce_worker(), "--print", "y"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "announce=0\ny\n"


def test_native_worker_checks_arguments(supervisor, tmp_path):
    p, out, err = run_native(supervisor, tmp_path, ["--name", "x" * 65, "--group", "k", "4", "4"])
    assert out.startswith("announce=-22\n") and "group=-22\n" in out
