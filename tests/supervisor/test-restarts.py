#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --max-restarts: the whole job restarts after a failure, with
# TORCHELASTIC_RESTART_COUNT incremented and an exponential backoff of at
# least 1 s (1 s, then 2 s); a fresh segment per attempt; the report keeps
# every attempt.  Out of restarts, the last failure's status is the exit.
import re
from rmtest import *


def attempts(res):
    """[(restart_count, monotonic time)] of each attempt, the earliest line any
    rank printed for it.  (Every rank prints before it fails, but the rank that
    fails first gets the others stopped, maybe before they print.)"""
    first = {}
    for m in re.finditer(r"\[rank \d+\] attempt restart_count=(\d+) at ([0-9.]+)", res.stdout):
        count, when = int(m.group(1)), float(m.group(2))
        first[count] = min(when, first.get(count, when))
    return sorted(first.items())


rid = run_id("restarts")
res = run(rid, ["-n", "2", "--max-restarts", "3", "--", FAKE, "fail-until", "2"], env=clean_env())
check(res.rc == 0, "succeeds on the third attempt: exit 0")
a = attempts(res)
check([c for c, _ in a] == [0, 1, 2], "TORCHELASTIC_RESTART_COUNT 0, 1, 2 (%s)" % a)
if len(a) == 3:
    check(a[1][1] - a[0][1] >= 1.0, "first backoff >= 1 s (%.3f)" % (a[1][1] - a[0][1]))
    check(a[2][1] - a[1][1] >= 2.0, "second backoff >= 2 s (%.3f)" % (a[2][1] - a[1][1]))
check("restarting the job in 1.0 s (restart 1 of 3)" in res.stderr, "says when it restarts")
check("restarting the job in 2.0 s (restart 2 of 3)" in res.stderr, "the delay doubles")
r = res.report
check(r["restart_count"] == 2 and r["max_restarts"] == 3 and r["outcome"] == "success", "JSON restart_count 2")
check(len(r["attempts"]) == 3, "JSON: three attempts")
check(r["attempts"][0]["failed_rank"] in (0, 1) and r["attempts"][0]["exit_code"] == 1, "JSON: attempt 1 failed")
check(r["attempts"][2]["failed_rank"] is None, "JSON: attempt 3 did not")
check_nothing_left(rid)

rid = run_id("restarts-out")
res = run(rid, ["--max-restarts", "1", "--", FAKE, "fail-until", "9"], env=clean_env())
check(res.rc == 1, "out of restarts: the last failure's status (1)")
check([c for c, _ in attempts(res)] == [0, 1], "two attempts")
check("attempt 1: rank 0" in res.stderr, "the report lists the earlier attempt")
check(res.report["outcome"] == "failure" and len(res.report["attempts"]) == 2, "JSON: failure, two attempts")
check_nothing_left(rid)
finish()
