# SPDX-License-Identifier: MIT
"""A fake service manager for tests/supervisor/test-systemd-*.py: the
NOTIFY_SOCKET end (an AF_UNIX datagram socket with SO_PASSCRED), which
records each datagram with its sender's pid and the time it came."""

import os
import re
import select
import socket
import struct
import time

from rmtest import TIMEOUT, log


class Datagram:
    def __init__(self, text, pid, t):
        self.text = text
        self.pid = pid
        self.t = t

    def __repr__(self):
        return "%.3f pid %s %r" % (self.t, self.pid, self.text)


def normalized(text):
    """The datagram with its clock-made parts as placeholders: "12 s" -> "N s", the extension."""
    text = re.sub(r"\b\d+ (s|min|h)\b", r"N \1", text)
    return re.sub(r"EXTEND_TIMEOUT_USEC=\d+", "EXTEND_TIMEOUT_USEC=N", text)


class NotifyReceiver:
    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.t0 = time.monotonic()
        self.all = []

    def recv(self, timeout):
        """The next datagram, or None after timeout seconds."""
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return None
        data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        d = Datagram(data.decode("utf-8", "replace"), pid, time.monotonic() - self.t0)
        self.all.append(d)
        log("datagram: %r" % d)
        return d

    def drain(self, until_exit_of=None, timeout=TIMEOUT):
        """Everything until the process exits (and its last datagrams are read)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.recv(0.1) is None and until_exit_of is not None and until_exit_of.poll() is not None:
                while self.recv(0.05) is not None:
                    pass
                return

    def close(self):
        self.sock.close()
        os.unlink(self.path)
