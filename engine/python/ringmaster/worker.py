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
most SEND_TIMEOUT seconds (2): a receiver that stopped reading costs the
worker that long once per call, and the datagram is dropped.  The socket
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
    "run_id", "run_dir",
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
# the datagram (and returns False).
SEND_TIMEOUT = 2.0
KEY_PHASE = "X_RINGMASTER_PHASE"
KEY_PHASE_END = "X_RINGMASTER_PHASE_END"
KEY_PROGRESS = "X_RINGMASTER_PROGRESS"
SOCKET_ENV = "RINGMASTER_NOTIFY_SOCKET"

_PHASE_NAME = re.compile(r"[A-Za-z0-9._-]{1,%d}\Z" % PHASE_NAME_MAX)


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

    def send(self, state):
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
                    self._sock.send(data)
                    return True
                except socket.timeout as e:
                    # The receiver does not read: drop this one, keep the socket.
                    self._warn("notify socket %s did not take a datagram within %s s (%s)" % (
                        address, SEND_TIMEOUT, e))
                    return False
                except OSError as e:
                    # Reconnect once: the receiver may have been replaced.
                    self._close()
                    if attempt == 2:
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
