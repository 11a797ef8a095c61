#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# journald: with --journal, or when ringmaster's stderr is the journal
# (JOURNAL_STREAM names its device and inode), each line is a journal entry
# with MESSAGE, PRIORITY, RINGMASTER_RUN, RANK, PID and STREAM.  A fake
# journald listens on /run/systemd/journal/socket in a private mount
# namespace; skipped where that cannot be set up.
import shutil
import socket
import subprocess
import sys
from rmtest import *


def parse_entry(data):
    """The native journal protocol: KEY=VALUE lines, or KEY\\n<le64 length><value>\\n."""
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields[k.decode()] = v.decode("utf-8", "replace")
            i = nl + 1
        else:
            n = int.from_bytes(data[nl + 1:nl + 9], "little")
            fields[line.decode()] = data[nl + 9:nl + 9 + n].decode("utf-8", "replace")
            i = nl + 9 + n + 1
    return fields


def inner():
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/systemd"], check=True)
    os.makedirs("/run/systemd/journal")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/run/systemd/journal/socket")
    sock.setblocking(False)

    def received():
        """Every datagram queued: sd_journal_sendv() has sent them all before ringmaster exits."""
        entries = []
        while True:
            try:
                entries.append(parse_entry(sock.recv(1 << 20)))
            except BlockingIOError:
                return entries

    # 1. --journal: entries, and the terminal still gets the lines.
    rid = run_id("journal")
    res = run(rid, ["-n", "2", "--journal", "--", "sh", "-c", "echo out$RANK; echo err$RANK >&2"],
              env=clean_env())
    check(res.rc == 0, "--journal: exit 0")
    check("[rank 1] out1" in res.stdout, "--journal: the terminal still gets the lines")
    mine = [e for e in received() if e.get("RINGMASTER_RUN") == rid]
    out1 = [e for e in mine if e.get("MESSAGE") == "out1"]
    err0 = [e for e in mine if e.get("MESSAGE") == "err0"]
    check(len(mine) == 4, "--journal: one entry per line (%d)" % len(mine))
    check(len(out1) == 1 and out1[0].get("RANK") == "1" and out1[0].get("STREAM") == "stdout" and
          out1[0].get("PRIORITY") == "6" and out1[0].get("PID", "").isdigit(), "--journal: stdout entry fields")
    check(len(err0) == 1 and err0[0].get("RANK") == "0" and err0[0].get("STREAM") == "stderr" and
          err0[0].get("PRIORITY") == "5" and err0[0].get("SYSLOG_IDENTIFIER") == "sh", "--journal: stderr entry fields")
    check_nothing_left(rid)

    # 2. stderr is "the journal" (JOURNAL_STREAM matches it): entries instead of plain lines.
    rid = run_id("journal-stream")
    with tempfile.TemporaryFile() as errf:
        st = os.fstat(errf.fileno())
        env = clean_env(JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        received()
        res = run(rid, ["--", "sh", "-c", "echo hello; echo bye >&2"], env=env, stderr=errf)
        errf.seek(0)
        text = errf.read().decode()
    check(res.rc == 0, "JOURNAL_STREAM: exit 0")
    check("hello" not in res.stdout and "bye" not in text, "JOURNAL_STREAM: no plain lines")
    msgs = sorted(e.get("MESSAGE") for e in received() if e.get("RINGMASTER_RUN") == rid)
    check(msgs == ["bye", "hello"], "JOURNAL_STREAM: the lines are journal entries (%s)" % msgs)
    check_nothing_left(rid)
    finish()


if len(sys.argv) > 1 and sys.argv[1] == "--inner":
    import tempfile
    inner()

if not shutil.which("unshare") or not os.path.isdir("/run/systemd"):
    skip("no unshare or no /run/systemd")
probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs",
                        "/run/systemd"], capture_output=True)
if probe.returncode != 0:
    skip("cannot mount a tmpfs in a mount namespace: %s" % probe.stderr.decode().strip())
p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, __file__, "--inner"],
                   timeout=TIMEOUT)
sys.exit(p.returncode)
