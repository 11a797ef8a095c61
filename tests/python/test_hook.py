# SPDX-License-Identifier: MIT
"""The start-up hook (engine/python/hook) with a fake torch: phases and
their order, faulthandler on SIGUSR1, chaining of another sitecustomize,
and nothing done or imported when it is not needed."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from conftest import FAKE_TORCH_DIR, HOOK_DIR, PACKAGE_DIR, clean_env, run_python


def P(name):
    return b"X_RINGMASTER_PHASE=" + name.encode()


def E(name):
    return b"X_RINGMASTER_PHASE_END=" + name.encode()


def is_worker_datagram(d):
    """The hook's announcements and the barriers after them
    (tests/python/test_workers.py covers them)."""
    return d == b"BARRIER=1" or all(line.startswith(b"X_RINGMASTER_WORKER") or
                                    line.startswith(b"X_RINGMASTER_CAPTURE") for line in d.split(b"\n") if line)


def phases(receiver, quiet=0.2):
    """What the receiver got but the announcements."""
    return [d for d in receiver.drain(quiet) if not is_worker_datagram(d)]


def next_phase(receiver, timeout):
    while True:
        d = receiver.recv(timeout)
        if not is_worker_datagram(d):
            return d


def hook_env(receiver=None, run_id="hooktest", extra_path=(), **extra):
    path = [HOOK_DIR] + list(extra_path) + [FAKE_TORCH_DIR, PACKAGE_DIR]
    env = clean_env(PYTHONPATH=os.pathsep.join(path), **extra)
    if run_id is not None:
        env["RINGMASTER_RUN_ID"] = run_id
    if receiver is not None:
        env["NOTIFY_SOCKET"] = receiver.address
    return env


def test_phases_and_their_order(notify_receiver):
    code = r"""
import torch
import torch.distributed as dist
from torch.distributed.distributed_c10d import CALLS
dist.init_process_group("gloo")
dist.barrier()
g = dist.new_group([0])
dist.barrier(group=g)
torch.cuda.set_device(0)
torch.cuda.current_device()
torch.cuda.set_device(0)
print(CALLS)
print(len(torch.cuda.LAZY_INIT_CALLS))
"""
    r = run_python(code, hook_env(notify_receiver))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    # The wrapped functions ran, with their arguments, once each.
    assert r.stdout.splitlines() == [
        "[('init_process_group', 'gloo'), ('new_group', None), ('barrier', None), ('new_group', None), "
        "('barrier', 'gloo')]",
        "3",
    ]
    # new_group inside init_process_group reports nothing; cuda-init once.
    assert phases(notify_receiver) == [
        P("dist-init"), E("dist-init"),
        P("dist-barrier"), E("dist-barrier"),
        P("dist-new-group"), E("dist-new-group"),
        P("dist-barrier"), E("dist-barrier"),
        P("cuda-init"), E("cuda-init"),
    ]


def test_nccl_init_is_the_first_barrier_of_an_nccl_group(notify_receiver):
    code = r"""
import torch.distributed as dist
dist.init_process_group(backend="nccl")
dist.barrier()
dist.barrier()
g = dist.new_group([0, 1])
dist.barrier(g)
dist.barrier(group=g)
h = dist.new_group([0], backend="gloo")
dist.barrier(group=h)
"""
    r = run_python(code, hook_env(notify_receiver))
    assert r.returncode == 0, r.stderr
    assert phases(notify_receiver) == [
        P("dist-init"), E("dist-init"),
        P("nccl-init"), E("nccl-init"),
        P("dist-barrier"), E("dist-barrier"),
        P("dist-new-group"), E("dist-new-group"),
        P("nccl-init"), E("nccl-init"),
        P("dist-barrier"), E("dist-barrier"),
        P("dist-new-group"), E("dist-new-group"),
        P("dist-barrier"), E("dist-barrier"),
    ]


def test_every_way_to_reach_the_functions(notify_receiver):
    """Names bound before or after the patch, the c10d module, and
    torch.cuda's submodules that imported _lazy_init by name."""
    code = r"""
from torch.distributed import init_process_group
import torch.distributed.distributed_c10d as c10d
import torch
init_process_group("gloo")
c10d.barrier()
torch.cuda.memory.memory_allocated()
f = torch.distributed.init_process_group
assert f is init_process_group is c10d.init_process_group
assert f.__name__ == "init_process_group" and f.__wrapped__.__module__ == "torch.distributed.distributed_c10d"
for m in (torch.distributed, c10d, torch.cuda):
    assert type(m.__spec__.loader).__name__ == "SourceFileLoader", m.__spec__.loader
    assert m.__loader__ is m.__spec__.loader
print("ok")
"""
    r = run_python(code, hook_env(notify_receiver))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert phases(notify_receiver) == [P("dist-init"), E("dist-init"), P("dist-barrier"), E("dist-barrier"),
                                       P("cuda-init"), E("cuda-init")]


def test_a_raising_phase(notify_receiver):
    code = "import torch.distributed as dist\ndist.init_process_group('gloo')\n"
    r = run_python(code, hook_env(notify_receiver, FAKE_TORCH_INIT="raise"))
    assert r.returncode == 1
    assert "RuntimeError: fake init failed: connection refused" in r.stderr
    assert "in init_process_group" in r.stderr
    # The phase began, and ended with STATUS saying why (one line).
    assert phases(notify_receiver) == [
        P("dist-init"),
        E("dist-init") + b"\nSTATUS=dist-init failed: RuntimeError: fake init failed: connection refused "
        b"second line of the message",
    ]


def test_a_raising_phase_that_the_program_survives(notify_receiver):
    """A CPU-only program probing CUDA: the phase does not stay open."""
    code = r"""
import torch, torch.distributed as dist
for attempt in range(2):
    try:
        torch.cuda.set_device(0)
    except RuntimeError as e:
        print("caught:", e)
dist.init_process_group("gloo")
"""
    r = run_python(code, hook_env(notify_receiver, FAKE_TORCH_CUDA="none"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["caught: Found no NVIDIA driver on your system."] * 2
    assert phases(notify_receiver) == [
        P("cuda-init"),
        E("cuda-init") + b"\nSTATUS=cuda-init failed: RuntimeError: Found no NVIDIA driver on your system.",
        P("dist-init"), E("dist-init"),
    ]


class Lines:
    """Collects a pipe's lines in a thread."""

    def __init__(self, pipe):
        self.lines = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe):
        for line in pipe:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, text, timeout=15):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("%r not seen within %s s in: %s" % (text, timeout, "".join(self.lines)))
                self._cond.wait(left)

    def text(self):
        with self._cond:
            return "".join(self.lines)


def test_sigusr1_dumps_every_thread_inside_a_hung_init(notify_receiver):
    code = r"""
import threading, time
def helper_thread_sleeps():
    time.sleep(3600)
threading.Thread(target=helper_thread_sleeps, daemon=True).start()
import torch.distributed as dist
dist.init_process_group("gloo")
"""
    proc = subprocess.Popen([sys.executable, "-c", code], env=hook_env(notify_receiver, FAKE_TORCH_INIT="hang"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        assert next_phase(notify_receiver, 15) == P("dist-init")
        out.wait_for("hanging in init_process_group")
        proc.send_signal(signal.SIGUSR1)
        err.wait_for("init_process_group")
        err.wait_for("helper_thread_sleeps")
        time.sleep(0.2)
        assert proc.poll() is None, "SIGUSR1 killed the process"
        text = err.text()
        assert text.count("Thread 0x") + text.count("Current thread 0x") >= 2, text
        assert "distributed_c10d.py" in text
        # A second SIGUSR1 dumps again: the handler stays.
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 15
        while err.text().count("helper_thread_sleeps") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert err.text().count("helper_thread_sleeps") >= 2
    finally:
        proc.kill()
        proc.wait(10)


def sleep_then_status(env, sig):
    proc = subprocess.Popen([sys.executable, "-c", "import time\nprint('up', flush=True)\ntime.sleep(30)"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "up\n"
        proc.send_signal(sig)
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        return proc.returncode, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_inactive_outside_ringmaster(notify_receiver):
    """No RINGMASTER_RUN_ID: no phases even with NOTIFY_SOCKET (a systemd
    service's), no finder, SIGUSR1 keeps its default action."""
    code = r"""
import sys, _ringmaster_hook
import torch.distributed as dist
dist.init_process_group("nccl")
dist.barrier()
print(_ringmaster_hook._installed, any(type(f).__name__ == "PostImportFinder" for f in sys.meta_path),
      hasattr(dist.init_process_group, "__wrapped__"))
"""
    r = run_python(code, hook_env(notify_receiver, run_id=None))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False", "False"]
    assert phases(notify_receiver) == []
    status, _ = sleep_then_status(hook_env(notify_receiver, run_id=None), signal.SIGUSR1)
    assert status == -signal.SIGUSR1


def test_faulthandler_only_without_notify_socket():
    code = r"""
import sys
import torch.distributed as dist
print(any(type(f).__name__ == "PostImportFinder" for f in sys.meta_path),
      hasattr(dist.init_process_group, "__wrapped__"))
"""
    r = run_python(code, hook_env(None))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]
    status, proc = sleep_then_status(hook_env(None), signal.SIGUSR1)
    assert status is None, "SIGUSR1 should dump tracebacks, not kill"


def test_nothing_imported_eagerly(notify_receiver):
    """Active, in a program that never imports torch: no torch, nothing but
    the hook's own module, faulthandler, and the notify client that
    announces the process (ringmaster.worker and what it imports)."""
    code = "import sys\nprint(' '.join(sorted(sys.modules)))"
    base = run_python(code, clean_env())
    client = run_python("import atexit, ringmaster.worker\n" + code, clean_env())
    r = run_python(code, hook_env(notify_receiver))
    assert base.returncode == 0 and client.returncode == 0 and r.returncode == 0, r.stderr
    extra = set(r.stdout.split()) - set(base.stdout.split())
    allowed = set(client.stdout.split()) - set(base.stdout.split())
    assert extra <= {"_ringmaster_hook", "sitecustomize", "faulthandler"} | allowed, extra - allowed
    assert "torch" not in r.stdout.split()
    assert phases(notify_receiver) == []
    # Nor does anything go wrong without torch installed at all (where a real
    # torch is installed, a torch that fails to import stands in for none).
    env = hook_env(notify_receiver)
    no_torch = tempfile.mkdtemp(prefix="rmtest-notorch-")
    with open(os.path.join(no_torch, "torch.py"), "w") as f:
        f.write("raise ImportError('no torch here')\n")
    env["PYTHONPATH"] = os.pathsep.join([HOOK_DIR, no_torch, PACKAGE_DIR])
    r = run_python("import json\ntry:\n import torch\nexcept ImportError:\n print('no torch')", env)
    assert r.returncode == 0 and r.stdout.strip() == "no torch" and r.stderr == "", r.stderr


@pytest.fixture
def user_sitecustomize(tmp_path):
    """Another sitecustomize, as a distribution or a user would have."""
    d = tmp_path / "usersite"
    d.mkdir()

    def write(body):
        (d / "sitecustomize.py").write_text(body)
        return str(d)

    return write


CHAIN_CHECK = r"""
import builtins, os, sys, sitecustomize
print(getattr(builtins, "USER_SITECUSTOMIZE_RAN", False))
print(os.path.dirname(sitecustomize.__file__) == %r)
print(%r in sys.path)
"""


@pytest.mark.parametrize("under_ringmaster", [True, False])
def test_chains_another_sitecustomize(notify_receiver, user_sitecustomize, under_ringmaster):
    usersite = user_sitecustomize("import builtins\nbuiltins.USER_SITECUSTOMIZE_RAN = True\n")
    env = hook_env(notify_receiver, run_id="chain" if under_ringmaster else None, extra_path=[usersite])
    code = CHAIN_CHECK % (usersite, HOOK_DIR) + "import torch.distributed as d\nd.init_process_group('gloo')\n"
    r = run_python(code, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "True"]
    assert phases(notify_receiver) == ([P("dist-init"), E("dist-init")] if under_ringmaster else [])


def test_chained_sitecustomize_that_imports_torch(notify_receiver, user_sitecustomize):
    """The hook is in place before the chained sitecustomize runs."""
    usersite = user_sitecustomize("import torch\n")
    r = run_python("import torch.distributed as d\nd.init_process_group('gloo')\n",
                   hook_env(notify_receiver, extra_path=[usersite]))
    assert r.returncode == 0, r.stderr
    assert phases(notify_receiver) == [P("dist-init"), E("dist-init")]


def test_chained_sitecustomize_that_raises(notify_receiver, user_sitecustomize):
    usersite = user_sitecustomize("raise ValueError('boom in the user sitecustomize')\n")
    r = run_python("import torch.distributed as d\nd.init_process_group('gloo')\nprint('went on')",
                   hook_env(notify_receiver, extra_path=[usersite]))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "went on"
    assert "boom in the user sitecustomize" in r.stderr
    assert phases(notify_receiver) == [P("dist-init"), E("dist-init")]


def test_hook_folder_twice_on_the_path(notify_receiver, user_sitecustomize):
    usersite = user_sitecustomize("import builtins\nbuiltins.USER_SITECUSTOMIZE_RAN = True\n")
    env = hook_env(notify_receiver, extra_path=[HOOK_DIR + "/", usersite])
    r = run_python(CHAIN_CHECK % (usersite, HOOK_DIR), env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "True"]
    assert r.stderr == ""


def test_phases_from_a_thread_and_a_forked_child(notify_receiver):
    code = r"""
import os, threading
import torch.distributed as dist
t = threading.Thread(target=dist.init_process_group, args=("gloo",))
t.start(); t.join()
pid = os.fork()
if pid == 0:
    dist.barrier()
    os._exit(0)
os.waitpid(pid, 0)
"""
    r = run_python(code, hook_env(notify_receiver))
    assert r.returncode == 0, r.stderr
    assert phases(notify_receiver) == [P("dist-init"), E("dist-init"), P("dist-barrier"), E("dist-barrier")]
