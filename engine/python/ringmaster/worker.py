# SPDX-License-Identifier: MIT
"""Telling ringmaster how a worker is doing: the sd_notify protocol.

Every call sends one datagram of newline-separated KEY=VALUE lines to the
socket named by RINGMASTER_NOTIFY_SOCKET, or else NOTIFY_SOCKET (a path, or
'@name' for the abstract namespace, as systemd has it):

    phase("load-weights")      X_RINGMASTER_PHASE=load-weights
    phase_end("load-weights")  X_RINGMASTER_PHASE_END=load-weights
    progress(3, 10)            X_RINGMASTER_PROGRESS=3/10
    ready()                    READY=1
    heartbeat()                WATCHDOG=1
    status("warming up")       STATUS=warming up
    stopping()                 STOPPING=1
    errno(5)                   ERRNO=5
    extend_timeout(30)         EXTEND_TIMEOUT_USEC=30000000

A call returns True when the datagram was sent, and False when the process
is not under ringmaster (neither variable set: the call costs a dictionary
lookup) or the send failed.  A failed send never raises: it is reported
once on stderr and later failures are silent.  Invalid arguments (a phase
name outside 1..64 of [A-Za-z0-9._-], a newline in a status) raise
ValueError or TypeError whether or not ringmaster listens, so a mistake
shows up outside ringmaster too.

A send waits for room in the receiver's queue, as sd_notify does, but at
most SEND_TIMEOUT seconds (2) for what the next datagram replaces (STATUS,
WATCHDOG=1, progress) and STATE_SEND_TIMEOUT seconds (60) for a state
change (READY, STOPPING, ERRNO, phases): a receiver that stopped reading
costs the worker that long once per call, and the datagram is dropped.  The socket
is opened once, kept, and shared by every thread (one send at a time); a
forked child keeps using it (the receiver tells the processes apart by
their credentials).

READY is the program's to say: ringmaster's start-up hook reports phases
on its own but never READY.
"""

import os
import re
import socket
import sys
import threading

__all__ = [
    "phase", "phase_end", "phase_scope", "progress", "ready", "heartbeat",
    "status", "stopping", "errno", "extend_timeout", "notify", "enabled",
    "notify_socket", "rank", "local_rank", "world_size", "local_world_size",
    "run_id", "run_dir", "announce", "announce_group", "announce_exit",
    "announce_exception", "announce_exec", "captured", "group_key",
    "notify_barrier", "labelled",
]

# The wire contract: engine/rm_notify.h's RM_NOTIFY_* (the C library and
# ringmaster's receiver use those; tests/python/test_notify_contract.py
# checks that these are the same).
# The largest datagram ringmaster takes; notify() refuses a longer one.
DATAGRAM_MAX = 4096
PHASE_NAME_MAX = 64
# A STATUS longer than this is cut (at a character boundary): the
# receiver drops oversized datagrams, and a status is one short line.
STATUS_MAX_BYTES = 1024
# The longest a call waits for room in the receiver's queue before it drops
# the datagram (and returns False): STATUS, WATCHDOG=1 and progress, which
# the next one replaces.
SEND_TIMEOUT = 2.0
# The same for a state change the receiver must not miss (READY, STOPPING,
# ERRNO, phases...): a supervisor stopped for a while (SIGSTOP, a debugger)
# must not make a healthy job fail for a lost READY=1.
STATE_SEND_TIMEOUT = 60.0
KEY_PHASE = "X_RINGMASTER_PHASE"
KEY_PHASE_END = "X_RINGMASTER_PHASE_END"
KEY_PROGRESS = "X_RINGMASTER_PROGRESS"
SOCKET_ENV = "RINGMASTER_NOTIFY_SOCKET"

_PHASE_NAME = re.compile(r"[A-Za-z0-9._-]{1,%d}\Z" % PHASE_NAME_MAX)
_REPLACEABLE = re.compile(r"(STATUS=.*|WATCHDOG=1|%s=.*)\Z" % KEY_PROGRESS)


def _send_timeout(state):
    """SEND_TIMEOUT when every line is one the next datagram replaces, else STATE_SEND_TIMEOUT."""
    if all(_REPLACEABLE.match(line) for line in state.split("\n")):
        return SEND_TIMEOUT
    return STATE_SEND_TIMEOUT


def notify_socket():
    """The notify socket's address as configured: RINGMASTER_NOTIFY_SOCKET,
    else NOTIFY_SOCKET, else None."""
    return os.environ.get(SOCKET_ENV) or os.environ.get("NOTIFY_SOCKET") or None


def enabled():
    """Whether the calls here send anything (a notify socket is set)."""
    return notify_socket() is not None


class _Notifier:
    """One datagram socket, connected to the notify socket on first use and
    kept.  Connected, so that a send waits for room in the receiver's queue
    (net.unix.max_dgram_qlen datagrams, 10 by the kernel's default) rather
    than failing at once, and at most SEND_TIMEOUT seconds."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sock = None
        self._address = None
        self._warned = False

    def _reset_after_fork(self):
        # The lock may have been held by another thread at fork time.
        self._lock = threading.Lock()

    def _warn(self, text):
        if self._warned:
            return
        self._warned = True
        try:
            sys.stderr.write("ringmaster.worker: %s; further notify failures are not reported\n" % text)
            sys.stderr.flush()
        except Exception:
            pass

    def _connect(self, address):
        if address[0] == "@":
            target = b"\0" + os.fsencode(address[1:])
        elif address[0] == "/":
            target = os.fsencode(address)
        else:
            raise OSError("neither an absolute path nor '@abstract'")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.settimeout(SEND_TIMEOUT)
            sock.connect(target)
        except BaseException:
            sock.close()
            raise
        return sock

    def send(self, state, fds=None, quiet=False, timeout=None):
        """Sends state; with fds (a list of descriptors), attaches them
        (SCM_RIGHTS).  True when the datagram went out.  quiet: a failure
        is not reported on stderr.  timeout: the longest wait for room in
        the queue (default: _send_timeout(state))."""
        address = notify_socket()
        if address is None:
            return False
        data = state.encode("utf-8", "surrogateescape")
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._sock is None or self._address != address:
                        self._close()
                        self._sock = self._connect(address)
                        self._address = address
                    self._sock.settimeout(_send_timeout(state) if timeout is None else timeout)
                    if fds:
                        import array
                        self._sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
                    else:
                        self._sock.send(data)
                    return True
                except socket.timeout as e:
                    # The receiver does not read: drop this one, keep the socket.
                    if quiet:
                        return False
                    self._warn("notify socket %s did not take a datagram within %s s (%s)" % (
                        address, _send_timeout(state), e))
                    return False
                except OSError as e:
                    # Reconnect once: the receiver may have been replaced.
                    self._close()
                    if attempt == 2:
                        if quiet:
                            return False
                        self._warn("cannot send to notify socket %s: %s" % (address, e))
                        return False

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._address = None


_notifier = _Notifier()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_notifier._reset_after_fork)


def _check_line(what, value):
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))
    if "\n" in value or "\0" in value:
        raise ValueError("%s must be one line without NUL: %r" % (what, value))


def notify(state):
    """Sends state as it is: one or more KEY=VALUE lines joined by '\\n'
    (sd_notify(3)).  Each line must hold a '=' after a non-empty key."""
    if not isinstance(state, str):
        raise TypeError("state must be a str, not %s" % type(state).__name__)
    if "\0" in state:
        raise ValueError("state must not contain NUL")
    for line in state.split("\n"):
        if line.find("=") < 1:
            raise ValueError("not a KEY=VALUE line: %r" % line)
    if len(state.encode("utf-8", "surrogateescape")) > DATAGRAM_MAX:
        raise ValueError("state is longer than %d bytes (ringmaster would drop it): send less" % DATAGRAM_MAX)
    return _notifier.send(state)


def _check_phase(name):
    if not isinstance(name, str):
        raise TypeError("phase name must be a str, not %s" % type(name).__name__)
    if not _PHASE_NAME.match(name):
        raise ValueError("phase name must be 1..%d of [A-Za-z0-9._-]: %r" % (PHASE_NAME_MAX, name))


def phase(name):
    """Reports that the worker entered phase `name` (cuda-init, nccl-init,
    load-weights, warmup, or any name of 1..64 of [A-Za-z0-9._-])."""
    _check_phase(name)
    return _notifier.send(KEY_PHASE + "=" + name)


def phase_end(name):
    """Reports that phase `name` is over: the worker is between phases, and
    no phase deadline runs for it until the next phase()."""
    _check_phase(name)
    return _notifier.send(KEY_PHASE_END + "=" + name)


class phase_scope:
    """with phase_scope("load-weights"): ...  reports the phase on entry and
    its end on exit.  When the block raises, the end comes with
    STATUS=NAME failed: Type: message (one line) in the same datagram, and
    the exception goes on."""

    def __init__(self, name):
        _check_phase(name)
        self.name = name

    def __enter__(self):
        _notifier.send(KEY_PHASE + "=" + self.name)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            _notifier.send(KEY_PHASE_END + "=" + self.name)
        else:
            _notifier.send("%s=%s\nSTATUS=%s" % (KEY_PHASE_END, self.name, _failure_line(self.name, exc_type, exc)))
        return False


def _failure_line(name, exc_type, exc):
    try:
        text = "%s: %s" % (exc_type.__name__, exc)
    except Exception:
        text = exc_type.__name__
    line = "%s failed: %s" % (name, " ".join(text.replace("\0", " ").split()))
    return line if len(line) <= 200 else line[:197] + "..."


def _check_int(what, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    if value < minimum:
        raise ValueError("%s must be >= %d: %d" % (what, minimum, value))


def progress(done, total):
    """Reports progress within the current phase: done of total
    (0 <= done <= total, total >= 1)."""
    _check_int("total", total, 1)
    _check_int("done", done, 0)
    if done > total:
        raise ValueError("done (%d) exceeds total (%d)" % (done, total))
    return _notifier.send("%s=%d/%d" % (KEY_PROGRESS, done, total))


def ready(status=None):
    """Reports READY=1: the worker serves.  With status, adds STATUS=."""
    if status is None:
        return _notifier.send("READY=1")
    _check_line("status", status)
    return _notifier.send("READY=1\nSTATUS=" + _cut_status(status))


def heartbeat():
    """Reports WATCHDOG=1: the worker is alive (see ringmaster's --watchdog)."""
    return _notifier.send("WATCHDOG=1")


def _cut_status(text):
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= STATUS_MAX_BYTES:
        return text
    return data[:STATUS_MAX_BYTES].decode("utf-8", "ignore")


def status(text):
    """Reports STATUS=text, one line (cut to STATUS_MAX_BYTES bytes)."""
    _check_line("status", text)
    return _notifier.send("STATUS=" + _cut_status(text))


def stopping():
    """Reports STOPPING=1: the worker is shutting down on purpose."""
    return _notifier.send("STOPPING=1")


def errno(n):
    """Reports ERRNO=n, the error the worker fails with."""
    _check_int("errno", n, 0)
    return _notifier.send("ERRNO=%d" % n)


def extend_timeout(seconds):
    """Reports EXTEND_TIMEOUT_USEC: asks for `seconds` more before the
    current deadline (ready, phase or watchdog) counts as missed."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError("seconds must be a number, not %s" % type(seconds).__name__)
    if not (0 < seconds < float("inf")):
        raise ValueError("seconds must be positive and finite: %r" % seconds)
    usec = int(round(seconds * 1000000))
    return _notifier.send("EXTEND_TIMEOUT_USEC=%d" % max(usec, 1))


# ------------------------------------------------------------ environment

def _env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError("%s is not an integer: %r" % (name, value)) from None


def rank():
    """This worker's rank ($RANK; 0 when unset)."""
    return _env_int("RANK", 0)


def local_rank():
    """This worker's rank on its host ($LOCAL_RANK; 0 when unset)."""
    return _env_int("LOCAL_RANK", 0)


def world_size():
    """How many workers the job has ($WORLD_SIZE; 1 when unset)."""
    return _env_int("WORLD_SIZE", 1)


def local_world_size():
    """How many workers run on this host ($LOCAL_WORLD_SIZE; 1 when unset)."""
    return _env_int("LOCAL_WORLD_SIZE", 1)


def run_id():
    """The ringmaster run's id ($RINGMASTER_RUN_ID), or None outside ringmaster."""
    return os.environ.get("RINGMASTER_RUN_ID") or None


def run_dir():
    """The run's private directory ($RINGMASTER_RUN_DIR), or None."""
    return os.environ.get("RINGMASTER_RUN_DIR") or None


# ------------------------------------------------------------ workers an engine spawns
#
# A process that an engine starts itself (a multiprocessing worker, a
# subprocess) announces itself, so that the supervisor names it, captures
# its output apart from its parent's, times it and diagnoses it
# (docs/spawned-workers.md has the protocol).  ringmaster's start-up hook
# calls these for every Python process of the job; a program has no need to.

# The wire: engine/rm_announce.h's RM_ANNOUNCE_* (tests/python/test_notify_contract.py).
ANNOUNCE_ARGV_MAX = 256                 # bytes of the command line's summary
ANNOUNCE_NAME_MAX = 64
ANNOUNCE_GROUP_KEY_MAX = 128
ANNOUNCE_EXCEPTION_MAX = 1024           # what the supervisor takes; the hook sends EXCEPTION_SENT_MAX
ANNOUNCE_GROUP_WORLD_MAX = 65536
ANNOUNCE_ACK_TIMEOUT = 2.0              # how long a capture request waits for the supervisor's yes or no
ANNOUNCE_KEY_WORKER = "X_RINGMASTER_WORKER"
ANNOUNCE_KEY_PPID = "X_RINGMASTER_WORKER_PPID"
ANNOUNCE_KEY_ARGV = "X_RINGMASTER_WORKER_ARGV"
ANNOUNCE_KEY_NAME = "X_RINGMASTER_WORKER_NAME"
ANNOUNCE_KEY_INDEX = "X_RINGMASTER_WORKER_INDEX"
ANNOUNCE_KEY_CAPTURE = "X_RINGMASTER_CAPTURE"
ANNOUNCE_KEY_GROUP = "X_RINGMASTER_GROUP"
ANNOUNCE_KEY_GROUP_RANK = "X_RINGMASTER_GROUP_RANK"
ANNOUNCE_KEY_GROUP_WORLD = "X_RINGMASTER_GROUP_WORLD"
ANNOUNCE_KEY_EXIT = "X_RINGMASTER_WORKER_EXIT"
ANNOUNCE_KEY_EXCEPTION = "X_RINGMASTER_WORKER_EXCEPTION"
ANNOUNCE_KEY_EXEC = "X_RINGMASTER_WORKER_EXEC"
ANNOUNCE_CAPTURE_ENV = "RINGMASTER_WORKER_CAPTURE"
ANNOUNCE_CAPTURED_ENV = "RINGMASTER_WORKER_CAPTURED"
# The one line an exception is said in (its traceback goes to the error file).
EXCEPTION_SENT_MAX = 200

_captured_pid = None


def _printable(text, limit):
    """One line of printable characters (others as '?'), cut to limit bytes."""
    text = "".join(c if (c >= " " and c != "\x7f") else "?" for c in str(text))
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8")
    return data[:limit].decode("utf-8", "ignore")


def _argv_summary(argv):
    return _printable(" ".join(str(a) for a in argv), ANNOUNCE_ARGV_MAX)


def captured():
    """Whether this process's fds 1 and 2 are its own pipes to the supervisor."""
    return _captured_pid == os.getpid() or os.environ.get(ANNOUNCE_CAPTURED_ENV) == str(os.getpid())


def _capture_wanted():
    return os.environ.get(ANNOUNCE_CAPTURE_ENV) == "1" and not captured()


def _above_stdio(fd):
    """fd itself when it is 3 or more, else a close-on-exec copy that is
    (a process started with fd 1 or 2 closed gets them from pipe())."""
    if fd > 2:
        return fd
    import fcntl
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return high


def _close_all(*fds):
    for fd in fds:
        if fd is not None and fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _announce_with_capture(state, flush=True):
    """Sends state with new pipes' read ends and an acknowledgement pipe's
    write end; on the supervisor's 'Y', makes the write ends fds 1 and 2
    (flushing sys.stdout and sys.stderr first when flush).  Returns (sent,
    captured)."""
    global _captured_pid
    out_r = out_w = err_r = err_w = ack_r = ack_w = None
    sent = False
    try:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ack_r, ack_w = os.pipe()
        out_w = _above_stdio(out_w)
        err_w = _above_stdio(err_w)
        # At most ANNOUNCE_ACK_TIMEOUT for room in the queue too: this may be a
        # child right after fork(), which must not wait a state change's 60 s.
        sent = _notifier.send(state + "\n%s=1" % ANNOUNCE_KEY_CAPTURE, fds=[out_r, err_r, ack_w], quiet=True,
                              timeout=ANNOUNCE_ACK_TIMEOUT)
        _close_all(out_r, err_r, ack_w)
        out_r = err_r = ack_w = None
        if not sent:
            return False, False
        answer = b""
        import select
        ready, _, _ = select.select([ack_r], [], [], ANNOUNCE_ACK_TIMEOUT)
        if ready:
            answer = os.read(ack_r, 1)
        if answer != b"Y":
            return True, False
        if flush:
            _flush_std_streams()
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        _captured_pid = os.getpid()
        os.environ[ANNOUNCE_CAPTURED_ENV] = str(_captured_pid)
        return True, True
    except OSError:
        return sent, False
    finally:
        _close_all(out_r, out_w, err_r, err_w, ack_r, ack_w)


def notify_barrier(timeout=None):
    """sd_notify_barrier(3): returns once the supervisor has taken every
    datagram this process sent before (it closes the descriptor that comes
    with "BARRIER=1"), or after timeout seconds (default
    ANNOUNCE_ACK_TIMEOUT).  True when it had; False outside ringmaster too."""
    r = w = None
    if timeout is None:
        timeout = ANNOUNCE_ACK_TIMEOUT
    try:
        r, w = os.pipe()
        if not _notifier.send("BARRIER=1", fds=[w], quiet=True, timeout=timeout):
            return False
        os.close(w)
        w = None
        import select
        p = select.poll()
        p.register(r, 0)                # POLLHUP is always reported
        return bool(p.poll(int(timeout * 1000)))
    except OSError:
        return False
    finally:
        _close_all(r, w)


def labelled(sent):
    """After a datagram that may change how this process's lines are
    labelled (its index, its group rank): when its output is its own
    pipes, waits until the supervisor took it, so that the lines it prints
    next carry the new label (the pipes and the socket are read apart)."""
    if sent and captured():
        notify_barrier()
    return sent


def announce(name=None, index=None, capture=True, argv=None, kind="python", flush=True):
    """Announces this process to the supervisor as a worker: its parent's
    pid, its command line (argv, else sys.argv), and optionally its name
    (1..64 printable bytes, e.g. multiprocessing's process name) and index
    among its siblings (an int >= 0).  With capture, and when the
    supervisor offers it (RINGMASTER_WORKER_CAPTURE=1) and this process is
    not captured yet, its stdout and stderr become pipes of their own to the
    supervisor, once the supervisor said yes; flush: sys.stdout and
    sys.stderr are flushed into the old fds first (a child right after
    fork() passes False: what its buffers hold is its parent's, and another
    thread of the parent may have held their locks).  True when the announcement
    went out; False outside ringmaster or when it could not be sent."""
    if kind not in ("python", "native"):
        raise ValueError("kind must be 'python' or 'native': %r" % (kind,))
    if name is not None:
        if not isinstance(name, str):
            raise TypeError("name must be a str, not %s" % type(name).__name__)
        if not name:
            raise ValueError("name must not be empty")
    if index is not None:
        _check_int("index", index, 0)
    if notify_socket() is None:
        return False
    if argv is None:
        argv = list(getattr(sys, "orig_argv", None) or [sys.executable] + list(sys.argv))
    lines = [
        "%s=%s" % (ANNOUNCE_KEY_WORKER, kind),
        "%s=%d" % (ANNOUNCE_KEY_PPID, os.getppid()),
        "%s=%s" % (ANNOUNCE_KEY_ARGV, _argv_summary(argv)),
    ]
    if name is not None:
        lines.append("%s=%s" % (ANNOUNCE_KEY_NAME, _printable(name, ANNOUNCE_NAME_MAX)))
    if index is not None:
        lines.append("%s=%d" % (ANNOUNCE_KEY_INDEX, index))
    state = "\n".join(lines)
    if capture and _capture_wanted():
        sent, _ = _announce_with_capture(state, flush=flush)
        if sent:
            # Announced, captured or not (the supervisor said no, or did
            # not answer in time: the output stays where it was).
            return True
    # Taken before it goes on (the capture's answer says the same): the
    # supervisor reads /proc/PID, gone once this process ended and was
    # reaped; a fork child that crashes at once is still named.
    sent = _notifier.send(state, quiet=True)
    if sent:
        notify_barrier()
    return sent


def group_key(init_method=None, store=None):
    """The name of the rendezvous a process group is made through, as the
    supervisor groups workers: init_method, else an explicit store's
    address, else env://MASTER_ADDR:MASTER_PORT."""
    if store is not None:
        host = getattr(store, "host", None)
        port = getattr(store, "port", None)
        if host is not None and port is not None:
            key = "store://%s:%s" % (host, port)
        else:
            key = "store:" + type(store).__name__
    elif init_method and str(init_method) != "env://":
        key = str(init_method)
    else:
        key = "env://%s:%s" % (os.environ.get("MASTER_ADDR", ""), os.environ.get("MASTER_PORT", ""))
    return _printable(key, ANNOUNCE_GROUP_KEY_MAX)


def group_fields(key, rank, world):
    """The group lines of a datagram (X_RINGMASTER_GROUP, _RANK, _WORLD)."""
    if not isinstance(key, str) or not key:
        raise ValueError("group key must be a non-empty str: %r" % (key,))
    _check_int("world", world, 1)
    if world > ANNOUNCE_GROUP_WORLD_MAX:
        raise ValueError("world (%d) exceeds %d" % (world, ANNOUNCE_GROUP_WORLD_MAX))
    _check_int("rank", rank, 0)
    if rank >= world:
        raise ValueError("rank (%d) must be below world (%d)" % (rank, world))
    return "%s=%s\n%s=%d\n%s=%d" % (ANNOUNCE_KEY_GROUP, _printable(key, ANNOUNCE_GROUP_KEY_MAX),
                                   ANNOUNCE_KEY_GROUP_RANK, rank, ANNOUNCE_KEY_GROUP_WORLD, world)


def announce_group(key, rank, world):
    """Announces that this worker is member `rank` of the process group of
    `world` members made through rendezvous `key` (see group_key())."""
    return labelled(_notifier.send(group_fields(key, rank, world)))


def _exit_code(code):
    if code is None:
        return 0
    if isinstance(code, bool) or not isinstance(code, int):
        return 1
    return code & 0xff


def announce_exit(code):
    """Announces the exit status this process is about to exit with
    (sys.exit's argument: None is 0, an int is taken modulo 256, anything
    else is 1)."""
    return _notifier.send("%s=%d" % (ANNOUNCE_KEY_EXIT, _exit_code(code)), quiet=True)


def announce_exec():
    """Announces that this process is about to exec another program."""
    return _notifier.send(ANNOUNCE_KEY_EXEC + "=1", quiet=True)


def _error_file_path():
    directory = run_dir()
    if not directory:
        return None
    return os.path.join(directory, "worker-%d.error.json" % os.getpid())


def announce_exception(exc, traceback_text=None):
    """Announces that exc ended this worker's work: one line (Type:
    message) in the datagram, and the traceback in
    $RINGMASTER_RUN_DIR/worker-PID.error.json (torchelastic's error-file
    format), which the supervisor reads into its report."""
    try:
        text = "%s: %s" % (type(exc).__name__, exc)
    except Exception:
        text = type(exc).__name__
    line = " ".join(text.replace("\0", " ").split())
    if notify_socket() is None:
        return False
    path = _error_file_path()
    if path is not None:
        try:
            import json
            import time
            body = json.dumps({"message": {"message": text, "extraInfo": {
                "py_callstack": traceback_text or "", "timestamp": str(int(time.time()))}}})
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "w") as f:
                f.write(body)
            os.rename(tmp, path)
        except Exception:
            pass
    return _notifier.send("%s=%s" % (ANNOUNCE_KEY_EXCEPTION, _printable(line, EXCEPTION_SENT_MAX)))
