# SPDX-License-Identifier: MIT
"""Helpers shared by the supervisor's tests (tests/supervisor/test-*.py).

Each test runs the built `ringmaster` with fake workers, then asserts on the
exit status, the text report on stderr, the JSON report, and that nothing is
left behind: no process whose environment carries the run id, no /dev/shm
segment of the run, no run directory.  Waits are for events (FIFOs, pidfds,
process exits) with generous bounds, never fixed sleeps.
"""

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

TOP_BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
RINGMASTER = os.path.join(TOP_BUILDDIR, "supervisor", "ringmaster")
FAKE = os.path.join(TOP_BUILDDIR, "tests", "supervisor", "fake-worker")

# Generous: the suite runs on two busy cores, maybe under sanitizers.
TIMEOUT = 120.0 * float(os.environ.get("RM_TEST_TIMEOUT_SCALE", "1"))

_failures = 0


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    """Records a failed assertion and goes on (the test fails at the end)."""
    global _failures
    if cond:
        log("ok: " + msg)
    else:
        _failures += 1
        log("FAIL: " + msg)
    return cond


def require(cond, msg):
    """An assertion the rest of the test depends on."""
    if not check(cond, msg):
        finish()


def skip(msg):
    log("SKIP: " + msg)
    sys.exit(77)


def finish():
    if _failures:
        log("%d check(s) failed" % _failures)
        sys.exit(1)
    log("all checks passed")
    sys.exit(0)


def run_id(name):
    return "t-%s-%d" % (name, os.getpid())


class Result:
    def __init__(self, rc, out, err, report, elapsed):
        self.rc = rc
        self.out = out          # bytes
        self.err = err          # bytes
        self.report = report    # dict or None
        self.elapsed = elapsed

    @property
    def stdout(self):
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.err.decode("utf-8", "replace")

    def dump(self):
        log("---- exit status %s after %.3f s" % (self.rc, self.elapsed))
        log("---- stdout (%d bytes, first 3000):\n%s" % (len(self.out), self.stdout[:3000]))
        log("---- stderr (%d bytes, first 6000):\n%s" % (len(self.err), self.stderr[:6000]))


def ringmaster_args(rid, args, report_path):
    full = [RINGMASTER, "run", "--run-id", rid]
    if report_path:
        full += ["--report", report_path]
    return full + list(args)


def read_report(path):
    if not path or not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        data = f.read()
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        log("report %s is not valid JSON: %s\n%r" % (path, e, data[:2000]))
        raise


def run(rid, args, env=None, report=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=TIMEOUT):
    """Runs ringmaster to completion and returns a Result (stdout may be a file: then read from it)."""
    tmp = tempfile.mkdtemp(prefix="rmtest-")
    report_path = os.path.join(tmp, "report.json") if report else None
    t0 = time.monotonic()
    p = subprocess.Popen(ringmaster_args(rid, args, report_path), stdin=stdin, stdout=stdout,
                         stderr=stderr, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        log("ringmaster did not finish within %.0f s" % timeout)
        Result(None, out, err or b"", None, time.monotonic() - t0).dump()
        sys.exit(1)
    if stdout is not subprocess.PIPE:
        stdout.seek(0)
        out = stdout.read()
    res = Result(p.returncode, out, err or b"", read_report(report_path), time.monotonic() - t0)
    if report_path and os.path.exists(report_path):
        os.unlink(report_path)
    os.rmdir(tmp)
    res.dump()
    return res


def start(rid, args, env=None, report_path=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    """Starts ringmaster in the background; the caller waits for it."""
    return subprocess.Popen(ringmaster_args(rid, args, report_path), stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=stderr, env=env)


class Fifo:
    """A FIFO the workers write "ready RANK PID" lines to (fake-worker --ready)."""

    def __init__(self, directory, name="ready"):
        self.path = os.path.join(directory, name)
        os.mkfifo(self.path)
        # Our own writer keeps reads from seeing EOF between the workers' writes.
        self.rfd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.wfd = os.open(self.path, os.O_WRONLY)
        self.buf = b""

    def wait_lines(self, n, timeout=TIMEOUT):
        """Returns n lines, waiting for each (select, not polling)."""
        deadline = time.monotonic() + timeout
        lines = []
        while len(lines) < n:
            while b"\n" in self.buf and len(lines) < n:
                line, self.buf = self.buf.split(b"\n", 1)
                lines.append(line.decode())
            if len(lines) >= n:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("only %d of %d lines on %s" % (len(lines), n, self.path))
            r, _, _ = select.select([self.rfd], [], [], left)
            if r:
                self.buf += os.read(self.rfd, 4096)
        return lines

    def close(self):
        os.close(self.rfd)
        os.close(self.wfd)


class GoFifo:
    """The FIFO the acting rank waits on (fake-worker --go)."""

    def __init__(self, directory, name="go"):
        self.path = os.path.join(directory, name)
        os.mkfifo(self.path)

    def go(self):
        fd = os.open(self.path, os.O_WRONLY)
        os.write(fd, b"go\n")
        os.close(fd)


def wait_ready(fifo, n):
    """Waits for n workers; returns {rank: pid}."""
    pids = {}
    for line in fifo.wait_lines(n):
        _, rank, pid = line.split()
        pids[int(rank)] = int(pid)
    return pids


def processes_with_run_id(rid):
    """Pids whose environment has TORCHELASTIC_RUN_ID=rid (zombies have none)."""
    needle = ("TORCHELASTIC_RUN_ID=%s" % rid).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            found.append(int(entry))
    return found


def segments_of(rid):
    try:
        return [n for n in os.listdir("/dev/shm") if n.startswith("shmring-%s-" % rid)]
    except FileNotFoundError:
        return []


def run_dir_of(rid):
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "ringmaster", rid)
    return "/tmp/ringmaster-%d/%s" % (os.getuid(), rid)


def check_nothing_left(rid):
    procs = processes_with_run_id(rid)
    check(procs == [], "no process left with TORCHELASTIC_RUN_ID=%s (found %s)" % (rid, procs))
    segs = segments_of(rid)
    check(segs == [], "no /dev/shm segment left for %s (found %s)" % (rid, segs))
    check(not os.path.exists(run_dir_of(rid)), "run directory %s removed" % run_dir_of(rid))


def rank_entry(report, rank):
    return report["ranks"][rank]


def wait_gone(pids, timeout):
    """Waits (pidfds) until every pid has exited; returns the seconds it took, or None on timeout."""
    t0 = time.monotonic()
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            pass
    try:
        pending = list(fds)
        while pending:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select(pending, [], [], left)
            pending = [fd for fd in pending if fd not in r]
        return time.monotonic() - t0
    finally:
        for fd in fds:
            os.close(fd)


_NO_DEVICES = None


def clean_env(**overrides):
    """The test's environment without variables that would change ringmaster's
    defaults, and without the machine's GPUs: ringmaster looks for /dev/nvidiaN
    in an empty folder and for the GPU libraries nowhere, so that a GPU host
    runs these tests as a CPU machine does (a test that wants GPUs says so)."""
    global _NO_DEVICES
    if _NO_DEVICES is None:
        _NO_DEVICES = tempfile.mkdtemp(prefix="rmtest-nodev-")
    env = dict(os.environ)
    for k in ("CUDA_VISIBLE_DEVICES", "JOURNAL_STREAM", "NOTIFY_SOCKET", "OMP_NUM_THREADS",
              "TORCH_NCCL_ASYNC_ERROR_HANDLING", "MASTER_PORT", "MASTER_ADDR", "RANK", "WORLD_SIZE"):
        env.pop(k, None)
    env["RINGMASTER_TEST_DEV_DIR"] = _NO_DEVICES
    env["RINGMASTER_TEST_GPU_LIBDIR"] = "/nonexistent/ringmaster-test-no-gpu-libs"
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def sig_status(sig):
    return 128 + int(sig)


__all__ = [name for name in dir() if not name.startswith("_")] + ["signal"]
