# SPDX-License-Identifier: MIT
"""Helpers for the tests of ringmaster as a container's init, side by side with
tini (tests/supervisor/test-init*.py): a PID namespace of its own (unshare
--pid --fork --mount-proc), as a container runtime gives PID 1, and the two
ways to start either init."""

import re
import select
import shutil

from rmtest import *

TINI = shutil.which("tini") or "/usr/bin/tini"
UNSHARE = shutil.which("unshare")
SETSID = shutil.which("setsid")


def in_namespace(argv):
    return [UNSHARE, "--pid", "--fork", "--mount-proc", "--"] + list(argv)


def require_namespaces():
    """Skips where unshare, tini or PID namespaces are missing."""
    if not UNSHARE or not os.path.exists(TINI):
        skip("unshare or tini is not installed")
    probe = subprocess.run(in_namespace(["true"]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if probe.returncode != 0:
        skip("no PID namespace here: %s" % probe.stderr.decode(errors="replace").strip())


def init_command(tool, cmd, rid, extra=()):
    """tini -- CMD, or ringmaster run --init -n 1 --prefix none -- CMD (as a container entrypoint)."""
    if tool == "tini":
        return [TINI, "--"] + list(cmd)
    return [RINGMASTER, "run", "--run-id", rid, "--init", "--no-preflight", "--no-tty", "-n", "1", "--prefix",
            "none"] + list(extra) + ["--"] + list(cmd)


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def init_pid(unshare_pid):
    """The namespace's PID 1, as the host sees it: unshare's child."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        c = children(unshare_pid)
        if c:
            return c[0]
        time.sleep(0.01)
    return None


def sig_ignored(pid, sig):
    """Whether pid ignores sig (SigIgn in /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    return None


class Terminal:
    """argv on a new pseudo-terminal (its controlling terminal, as a terminal
    emulator or `docker run -t` gives), driven as a user would: expect(), type()."""

    def __init__(self, argv, env=None):
        import pty
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(argv[0], argv, env if env is not None else os.environ)
            finally:
                os._exit(127)
        self.buf = b""
        self.mark = 0
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            return None
        self.buf += chunk
        return True

    def expect(self, pattern, timeout=30):
        """Waits for pattern (bytes regex) after what the last expect() matched; True when it came."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.compile(pattern).search(self.buf, self.mark)
            if m:
                self.mark = m.end()
                return True
            if self._read(deadline - time.monotonic()) is not True:
                log("---- the terminal, waiting for %r:\n%s" % (pattern, self.buf.decode(errors="replace")))
                return False

    def type(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=TIMEOUT):
        """Reads to the end; returns the exit status (None when it had to be killed)."""
        deadline = time.monotonic() + timeout
        eof = False
        while not eof and time.monotonic() < deadline:
            eof = self._read(deadline - time.monotonic()) is None
        if not eof:
            os.kill(self.pid, signal.SIGKILL)
        status = os.waitpid(self.pid, 0)[1]
        self.status = os.waitstatus_to_exitcode(status) if eof else None
        os.close(self.fd)
        log("---- the terminal (exit status %s):\n%s" % (self.status, self.buf.decode(errors="replace")))
        return self.status


__all__ = [name for name in dir() if not name.startswith("_")] + ["subprocess", "signal", "os", "time", "sys", "re"]
