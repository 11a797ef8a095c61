#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A rank floods 1 GiB to stderr, in lines and without any newline.  The
# supervisor's peak RSS (VmHWM, from the JSON report) stays bounded, the
# worker finishes, and when ringmaster's own stderr is a pipe nobody reads
# (a stuck terminal) it drops and counts lines instead of blocking the worker.
# RM_FLOOD_BYTES changes the size (default 1 GiB).
import subprocess
import time
from rmtest import *

FLOOD = int(os.environ.get("RM_FLOOD_BYTES", str(1 << 30)))
# fake-worker writes 100-byte lines; the last may be short and unterminated.
LINES = FLOOD // 100 + (1 if FLOOD % 100 else 0)

# The baseline: a run that does nothing (sanitizer builds start higher).
rid = run_id("flood-base")
base = run(rid, ["--", FAKE, "true"], env=clean_env()).report["supervisor"]["peak_rss_kib"]
limit = max(64 * 1024, base + 32 * 1024)
log("baseline peak RSS %d KiB; limit %d KiB" % (base, limit))

# 1. Lines, ringmaster's stderr to /dev/null.
rid = run_id("flood-nl")
res = run(rid, ["--", FAKE, "flood", str(FLOOD), "nl"], env=clean_env(), stderr=subprocess.DEVNULL)
check(res.rc == 0, "lines: exit 0")
check(("flood done %d" % FLOOD) in res.stdout, "lines: the worker finished")
st = rank_entry(res.report, 0)["stderr"]
check(st["bytes"] == FLOOD and st["lines"] == LINES, "lines: every byte and line seen")
rss = res.report["supervisor"]["peak_rss_kib"]
check(rss <= limit, "lines: peak RSS %d KiB <= %d KiB" % (rss, limit))
check_nothing_left(rid)

# 2. No newline at all: cut at --max-line, still bounded.
rid = run_id("flood-nonl")
res = run(rid, ["--", FAKE, "flood", str(FLOOD), "nonl"], env=clean_env(), stderr=subprocess.DEVNULL)
check(res.rc == 0 and ("flood done %d" % FLOOD) in res.stdout, "no newline: exit 0, the worker finished")
st = rank_entry(res.report, 0)["stderr"]
check(st["bytes"] == FLOOD, "no newline: every byte seen")
check(st["cut_lines"] >= FLOOD // (16 * 1024) - 1, "no newline: cut into --max-line pieces (%d)" % st["cut_lines"])
check(st["unterminated"], "no newline: the last piece is reported unterminated")
rss = res.report["supervisor"]["peak_rss_kib"]
check(rss <= limit, "no newline: peak RSS %d KiB <= %d KiB" % (rss, limit))
check_nothing_left(rid)

# 3. ringmaster's stderr is a pipe that nobody reads: drops, counted; the worker is not blocked.
rid = run_id("flood-stuck")
rfd, wfd = os.pipe()
res = run(rid, ["--", FAKE, "flood", str(FLOOD), "nl"], env=clean_env(), stderr=wfd)
os.close(wfd)
os.close(rfd)
check(res.rc == 0 and ("flood done %d" % FLOOD) in res.stdout, "stuck stderr: the worker finished, exit 0")
st = rank_entry(res.report, 0)["stderr"]
check(st["dropped_lines"] > 0 and st["dropped_bytes"] > 0, "stuck stderr: drops counted (%d lines)" % st["dropped_lines"])
check(st["lines"] == LINES, "stuck stderr: every line still seen (tail, counts)")
rss = res.report["supervisor"]["peak_rss_kib"]
check(rss <= limit, "stuck stderr: peak RSS %d KiB <= %d KiB" % (rss, limit))
check_nothing_left(rid)
finish()
