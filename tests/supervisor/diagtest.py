# SPDX-License-Identifier: MIT
"""Helpers for the hang diagnosis tests (tests/supervisor/test-diagnose-*.py),
on top of rmtest: ringmaster in the background, its stderr read as it
comes, SIGUSR2, and waits on /proc for workers to be where a test put them.
"""

import re
import shutil
import subprocess
from rmtest import *

HANG = os.path.join(TOP_BUILDDIR, "tests", "supervisor", "hang-worker")

END_OF_DIAGNOSIS = "======== end of the diagnosis ========"


class StderrReader:
    """ringmaster's stderr, read without blocking as it comes."""

    def __init__(self, p):
        self.p = p
        self.fd = p.stderr.fileno()
        os.set_blocking(self.fd, False)
        self.data = b""

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return None     # EOF
        self.data += chunk
        return True

    @property
    def text(self):
        return self.data.decode("utf-8", "replace")

    def wait_for(self, needle, start=0, timeout=TIMEOUT):
        """Waits until needle appears after offset start; returns the text up to its end, or None."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.text.find(needle, start)
            if i >= 0:
                return self.text[:i + len(needle)]
            left = deadline - time.monotonic()
            if left <= 0 or self._read(left) is None:
                return None

    def read_to_eof(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read(deadline - time.monotonic()) is None:
                break
        return self.text


def task_states(pid):
    """[(tid, state, wchan)] of a process's threads."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open("/proc/%d/task/%s/wchan" % (pid, tid)) as f:
                wchan = f.read().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        out.append((int(tid), state, wchan))
    return out


def wait_threads_blocked(pid, n_threads, timeout=TIMEOUT):
    """Waits until the process has n_threads threads, all asleep in the kernel
    (state S with a wait channel): the fake workers block in one system call
    each once set up.  There is no event for it, so /proc is read every 10 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = task_states(pid)
        if len(t) == n_threads and all(s == "S" and w not in ("", "0") for _, s, w in t):
            return True
        time.sleep(0.01)
    log("threads of %d never all blocked: %s" % (pid, task_states(pid)))
    return False


def catches_sigusr1(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return (int(line.split()[1], 16) >> (signal.SIGUSR1 - 1)) & 1 == 1
    return False


def wait_catches_sigusr1(pid, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if catches_sigusr1(pid):
            return True
        time.sleep(0.01)
    return False


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        items = f.read().split(b"\0")
    env = {}
    for item in items:
        if b"=" in item:
            k, _, v = item.partition(b"=")
            env[k.decode()] = v.decode("utf-8", "replace")
    return env


def sigusr2(p, err, timeout=TIMEOUT):
    """Sends SIGUSR2 to ringmaster; returns the text of the diagnosis it printed
    (from its first line to the end marker), or None."""
    start = len(err.text)
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGUSR2)
    upto = err.wait_for(END_OF_DIAGNOSIS, start, timeout)
    if upto is None:
        log("no diagnosis on stderr; stderr so far:\n" + err.text[-6000:])
        return None, time.monotonic() - t0
    begin = upto.find("======== run ", start)
    return upto[begin if begin >= 0 else start:], time.monotonic() - t0


def rank_section(text, rank):
    """The lines of rank's section of a text diagnosis: its header, then the indented lines."""
    m = re.search(r"---- rank %d \(pid \d+\): diagnosis[^\n]*(\n[^\n]*ringmaster:  [^\n]*)*" % rank, text)
    return m.group(0) if m else ""


def stop(p, err, sig=signal.SIGTERM):
    """Stops ringmaster; returns (exit status, all of its stderr)."""
    p.send_signal(sig)
    text = err.read_to_eof()
    return p.wait(timeout=TIMEOUT), text


def have(tool):
    return shutil.which(tool) is not None


__all__ = [name for name in dir() if not name.startswith("_")] + ["re", "subprocess", "signal", "os", "time"]
