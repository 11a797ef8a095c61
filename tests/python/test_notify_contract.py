# SPDX-License-Identifier: MIT
"""One notify contract: ringmaster.worker's constants are engine/rm_notify.h's
RM_NOTIFY_* and engine/rm_announce.h's RM_ANNOUNCE_* (which the C library
and ringmaster's receiver use), and its phase-name check takes exactly
names.h's [A-Za-z0-9._-] at the same length."""

import os
import re

import pytest

from conftest import TOP_SRCDIR
from ringmaster import worker

HEADER = os.path.join(TOP_SRCDIR, "engine", "rm_notify.h")
ANNOUNCE_HEADER = os.path.join(TOP_SRCDIR, "engine", "rm_announce.h")
# RM_ANNOUNCE_<name> is worker.ANNOUNCE_<name>, but these (C's own, or in other units).
ANNOUNCE_C_ONLY = {"CAPTURE"}
ANNOUNCE_CONVERT = {"ACK_TIMEOUT_MS": ("ANNOUNCE_ACK_TIMEOUT", lambda v: int(v) / 1000.0)}

# RM_NOTIFY_<name> -> (the worker's attribute, how the C value maps to it)
PYTHON_NAME = {
    "DATAGRAM_MAX": ("DATAGRAM_MAX", int),
    "PHASE_NAME_MAX": ("PHASE_NAME_MAX", int),
    "STATUS_MAX": ("STATUS_MAX_BYTES", int),
    "SEND_TIMEOUT_MS": ("SEND_TIMEOUT", lambda v: int(v) / 1000.0),
    "STATE_SEND_TIMEOUT_MS": ("STATE_SEND_TIMEOUT", lambda v: int(v) / 1000.0),
    "KEY_PHASE": ("KEY_PHASE", lambda v: v.strip('"')),
    "KEY_PHASE_END": ("KEY_PHASE_END", lambda v: v.strip('"')),
    "KEY_PROGRESS": ("KEY_PROGRESS", lambda v: v.strip('"')),
    "SOCKET_ENV": ("SOCKET_ENV", lambda v: v.strip('"')),
}


def header_defines():
    defines = {}
    with open(HEADER) as f:
        for line in f:
            m = re.match(r"#define RM_NOTIFY_(\w+)\s+(\S+)\s*$", line)
            if m:
                defines[m.group(1)] = m.group(2)
    return defines


def announce_defines():
    defines = {}
    with open(ANNOUNCE_HEADER) as f:
        for line in f:
            m = re.match(r"#define RM_ANNOUNCE_(\w+)\s+(\S+)", line)
            if m and m.group(1) not in ANNOUNCE_C_ONLY:
                defines[m.group(1)] = m.group(2)
    return defines


def test_announce_header_is_read():
    assert "KEY_WORKER" in announce_defines() and "ACK_TIMEOUT_MS" in announce_defines()


@pytest.mark.parametrize("name", sorted(announce_defines()))
def test_announce_constant_matches_header(name):
    value = announce_defines()[name]
    attr, convert = ANNOUNCE_CONVERT.get(name, ("ANNOUNCE_" + name, lambda v: v.strip('"') if v.startswith('"') else int(v)))
    assert hasattr(worker, attr), "RM_ANNOUNCE_%s is in rm_announce.h but ringmaster.worker has no %s" % (name, attr)
    assert getattr(worker, attr) == convert(value), (
        "ringmaster.worker.%s differs from rm_announce.h's RM_ANNOUNCE_%s" % (attr, name))


def test_header_is_read():
    # A header this test cannot parse must fail it, not pass it.
    assert "PHASE_NAME_MAX" in header_defines()


@pytest.mark.parametrize("name", sorted(header_defines()))
def test_python_constant_matches_header(name):
    assert name in PYTHON_NAME, (
        "RM_NOTIFY_%s is in rm_notify.h but not in ringmaster.worker: add it to both "
        "(and to this test's table)" % name)
    attr, convert = PYTHON_NAME[name]
    assert getattr(worker, attr) == convert(header_defines()[name]), (
        "ringmaster.worker.%s differs from rm_notify.h's RM_NOTIFY_%s" % (attr, name))


def test_phase_name_characters():
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    for code in range(1, 256):
        c = chr(code)
        if c in allowed:
            worker._check_phase(c)
        else:
            with pytest.raises(ValueError):
                worker._check_phase("a" + c)


def test_phase_name_length():
    worker._check_phase("x" * worker.PHASE_NAME_MAX)
    with pytest.raises(ValueError):
        worker._check_phase("x" * (worker.PHASE_NAME_MAX + 1))
    with pytest.raises(ValueError):
        worker._check_phase("")


def test_notify_refuses_what_the_receiver_drops(monkeypatch):
    monkeypatch.delenv("RINGMASTER_NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    head = "STATUS="
    assert worker.notify(head + "x" * (worker.DATAGRAM_MAX - len(head))) is False  # no socket: not sent
    with pytest.raises(ValueError):
        worker.notify(head + "x" * (worker.DATAGRAM_MAX - len(head) + 1))
