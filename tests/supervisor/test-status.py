#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The live status table on a terminal (a pseudo-terminal, read through a
# small terminal emulator: \r, \n, cursor up, erase line, erase below):
#   - the table (header with the job's summary, a row per rank: pid, phase,
#     time, progress, READY, last line of output) sits below the workers'
#     lines, which scroll above it, and follows the ranks (phases, READY);
#   - it is redrawn in place (cursor up), never with the same text twice in
#     a row, at most a few times a second, and erased at the end;
#   - more ranks than the screen has rows: the rows that fit, then "... N more";
#   - --no-tty, TERM=dumb, or a pipe: no escape sequence, plain lines for
#     each phase and READY instead.
import fcntl
import pty
import re
import struct
import tempfile
import termios
import threading
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
ESC = "\x1b"


class Screen:
    """Enough of a terminal for ringmaster's table: rows grow downwards (no scrolling off)."""

    def __init__(self, cols):
        self.cols = cols
        self.rows = [""]
        self.row = 0
        self.col = 0

    def _put(self, ch):
        if self.col >= self.cols:
            self._newline()
        line = self.rows[self.row].ljust(self.col)
        self.rows[self.row] = line[:self.col] + ch + line[self.col + 1:]
        self.col += 1

    def _newline(self):
        self.row += 1
        self.col = 0
        while len(self.rows) <= self.row:
            self.rows.append("")

    def feed(self, text):
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == ESC:
                m = re.match(r"\x1b\[([0-9;]*)([A-Za-z])", text[i:])
                if not m:
                    return text[i:]          # an incomplete sequence: wait for the rest
                n = int(m.group(1) or "1") if m.group(1).isdigit() else 1
                if m.group(2) == "A":
                    self.row = max(0, self.row - n)
                elif m.group(2) == "K":
                    self.rows[self.row] = self.rows[self.row][:self.col]
                elif m.group(2) == "J":
                    self.rows[self.row] = self.rows[self.row][:self.col]
                    del self.rows[self.row + 1:]
                i += len(m.group(0))
                continue
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self._newline()
            else:
                self._put(ch)
            i += 1
        return ""

    def text(self):
        return [r.rstrip() for r in self.rows]


class Terminal:
    """ringmaster on a pseudo-terminal of cols x rows; the output read in a thread into a Screen."""

    def __init__(self, args, cols=120, rows=30, term="xterm"):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.screen = Screen(cols)
        self.raw = ""
        self.lock = threading.Condition()
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                  env=clean_env(TERM=term), close_fds=True)
        os.close(slave)
        self.t0 = time.monotonic()
        self.stamps = []          # (time, raw length) as output comes
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        pending = ""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            with self.lock:
                if not data:
                    self.done = True
                    self.lock.notify_all()
                    return
                text = data.decode("utf-8", "replace")
                self.raw += text
                self.stamps.append((time.monotonic() - self.t0, len(self.raw)))
                pending = self.screen.feed(pending + text)
                self.lock.notify_all()

    def wait_screen(self, pred, what, timeout=30):
        """Waits until pred(screen lines) holds (each output wakes it up)."""
        end = time.monotonic() + timeout
        with self.lock:
            while not pred(self.screen.text()):
                left = end - time.monotonic()
                if left <= 0 or getattr(self, "done", False):
                    log("screen now:\n" + "\n".join(self.screen.text()))
                    return check(False, what)
                self.lock.wait(left)
        return check(True, what)

    def finish(self):
        rc = self.p.wait(timeout=TIMEOUT)
        self.thread.join(TIMEOUT)
        os.close(self.master)
        return rc


def table_rows(lines):
    """The table at the bottom of the screen: {rank: row text}, with its header line; ({}, None) when none."""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("RANK PID"):
            rows = {}
            for line in lines[i + 1:]:
                m = re.match(r"(\d+) +", line)
                if m:
                    rows[int(m.group(1))] = line
            return rows, lines[i - 1] if i > 0 else None
    return {}, None


def frames(raw):
    """The table's frames as drawn: (in place?, text of the frame)."""
    out = []
    for m in re.finditer(r"(\r\x1b\[\d+A)?\x1b\[1mringmaster (.*?)\x1b\[J", raw, re.S):
        out.append((m.group(1) is not None, m.group(2)))
    return out


# ---------------------------------------------------------------- the table on a terminal
# A gate per rank: a rank let through first must not take the other's turn too.
gates = [os.path.join(tmp, "gate%d" % r) for r in (0, 1)]
gfds = []
for g in gates:
    os.mkfifo(g)
    gfds.append(os.open(g, os.O_RDWR))


def let_through():
    for fd in gfds:
        os.write(fd, b"x")


told = Fifo(tmp, "told")
rid = run_id("status")
script0 = ["phase=load-weights", "progress=3/8", "stamp=first-of-rank-0", "tell=" + told.path,
           "wait-fifo=" + gates[0], "end=load-weights", "ready", "stamp=serving-rank-0", "tell=" + told.path,
           "wait-fifo=" + gates[0], "exit=0"]
script1 = ["phase=nccl-init", "stamp=first-of-rank-1", "tell=" + told.path, "wait-fifo=" + gates[1], "ready",
           "stamp=serving-rank-1", "tell=" + told.path, "wait-fifo=" + gates[1], "exit=0"]
t = Terminal(ringmaster_args(rid, ["--no-preflight", "-n", "2", "--", FAKE, "--rank", "0", "script"] + script0 +
                             ["--others", "script"] + script1, None))
wait_ready(told, 2)


def starting(lines):
    rows, header = table_rows(lines)
    return (header is not None and "starting: 0/2 ready" in header and
            re.search(r"load-weights +\d+s +3/8 +no +stamp first-of-rank-0", rows.get(0, "")) and
            re.search(r"nccl-init +\d+s +no +stamp first-of-rank-1", rows.get(1, "")))


t.wait_screen(starting, "the table: both ranks starting, their phase, progress, READY and last line")
with t.lock:
    lines = t.screen.text()
    rows, header = table_rows(lines)
    check(header.startswith("ringmaster %s: starting: 0/2 ready" % rid), "the header: run id and summary (%r)" % header)
    check(all(re.match(r"%d +\d+ +" % r, rows[r]) for r in (0, 1)), "each row: the rank and its pid")
    above = [l for l in lines[:lines.index(header)] if l.startswith("[rank ")]
    check(any("stamp first-of-rank-0" in l for l in above) and any("stamp first-of-rank-1" in l for l in above),
          "the workers' lines are above the table")
let_through()
wait_ready(told, 2)


def serving(lines):
    rows, header = table_rows(lines)
    return (header is not None and header.endswith(": 2/2 ready") and
            re.search(r"load-weights done +\d+s +3/8 +yes +stamp serving-rank-0", rows.get(0, "")) and
            re.search(r"nccl-init +\d+s +yes +stamp serving-rank-1", rows.get(1, "")))


t.wait_screen(serving, "the table follows: both ready, the new last lines")
# Idle for 2.5 s: only the clock changes the table (whole seconds).
with t.lock:
    idle_from = len(t.raw)
time.sleep(2.5)
with t.lock:
    idle = frames(t.raw[idle_from:])
check(1 <= len(idle) <= 7, "idle for 2.5 s: redrawn only as the seconds change (%d times)" % len(idle))
let_through()
rc = t.finish()
check(rc == 0, "exit status 0")
raw = t.raw
check(ESC + "[J" in raw and re.search(r"\x1b\[\d+A", raw), "cursor movement and erase sequences are used")
fr = frames(raw)
check(len(fr) >= 3, "the table was drawn several times (%d)" % len(fr))
check(all(b != a for (_, a), (inplace, b) in zip(fr, fr[1:]) if inplace),
      "never redrawn in place with the same text")
span = t.stamps[-1][0] if t.stamps else 1.0
check(len(fr) <= 4 * span + 8, "a few redraws per second at most (%d in %.1f s)" % (len(fr), span))
final = [l for l in t.screen.text() if l]
log("final screen:\n" + "\n".join(final))
check(not any(l.startswith("RANK PID") for l in final), "the table is gone at the end")
order = [l for l in final if "stamp" in l]
check(len(order) == 4 and order.index(next(l for l in order if "first-of-rank-0" in l)) <
      order.index(next(l for l in order if "serving-rank-0" in l)), "every worker line is on the screen, in order")
check_nothing_left(rid)
told.close()
for fd in gfds:
    os.close(fd)

# ---------------------------------------------------------------- more ranks than rows
told = Fifo(tmp, "told-many")
rid = run_id("status-many")
t = Terminal(ringmaster_args(rid, ["--no-preflight", "-n", "10", "--", FAKE, "--rank", "3", "script",
                                   "phase=nccl-init", "tell=" + told.path, "hang", "--others", "script", "ready",
                                   "tell=" + told.path, "hang"], None), cols=100, rows=9)
wait_ready(told, 10)


def crowded(lines):
    rows, header = table_rows(lines)
    return header is not None and "9/10 ready" in header and 3 in rows and \
        any(l.startswith("... 5 more ranks (5 of them ready)") for l in lines[-3:])


t.wait_screen(crowded, "9 rows: the header, the names, rank 3 (not ready) first, 4 more, then '... 5 more ranks'")
with t.lock:
    rows, header = table_rows(t.screen.text())
    check(len(rows) == 5, "5 ranks shown on a 9-row terminal (%s)" % sorted(rows))
t.p.send_signal(signal.SIGTERM)
check(t.finish() == 143, "stopped by SIGTERM")
check_nothing_left(rid)
told.close()

# ---------------------------------------------------------------- plain lines: --no-tty, TERM=dumb, a pipe
script = ["phase=cuda-init", "end=cuda-init", "phase=warmup", "ready", "exit=0"]
for how in ("--no-tty", "TERM=dumb"):
    rid = run_id("status-plain")
    t = Terminal(ringmaster_args(rid, ["--no-preflight"] + (["--no-tty"] if how == "--no-tty" else []) +
                                 ["-n", "1", "--", FAKE, "script"] + script, None),
                 term="dumb" if how == "TERM=dumb" else "xterm")
    rc = t.finish()
    check(rc == 0, "%s: exit status 0" % how)
    check(ESC not in t.raw, "%s: no escape sequence" % how)
    lines = [l for l in t.screen.text() if l.startswith("ringmaster: rank 0")]
    check([re.sub(r" (\(|after ).*", "", l) for l in lines] ==
          ["ringmaster: rank 0: phase cuda-init", "ringmaster: rank 0: phase cuda-init ended",
           "ringmaster: rank 0: phase warmup", "ringmaster: rank 0: ready"],
          "%s: a line per phase, its end, and READY (%s)" % (how, lines))
    check_nothing_left(rid)

rid = run_id("status-pipe")
res = run(rid, ["--no-preflight", "-n", "1", "--", FAKE, "script"] + script, env=clean_env(TERM="xterm"))
check(res.rc == 0 and ESC not in res.stderr, "a pipe: no escape sequence")
check("ringmaster: rank 0: phase warmup (" in res.stderr and "ringmaster: rank 0: ready (" in res.stderr,
      "a pipe: plain lines")
res = run(rid, ["--no-preflight", "-v", "-n", "1", "--", FAKE, "script"] + script, env=clean_env(TERM="xterm"))
check(res.stderr.count("rank 0: phase warmup") == 1, "-v: the phase said once (by -v's own line)")
res = run(rid, ["--no-preflight", "-q", "-n", "1", "--", FAKE, "script"] + script, env=clean_env(TERM="xterm"))
check("phase" not in res.stderr, "-q: no progress lines")
check_nothing_left(rid)

finish()
