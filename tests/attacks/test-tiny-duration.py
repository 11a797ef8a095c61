#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Weaker point: a duration below 0.5 us rounded to 0, which means "off":
# --ready-timeout 0.0000001 disabled the deadline.  It is either refused
# (exit 100, naming the option) or rounded up to 1 us (the deadline passes).
from attack import *

# The watchdog counts from the first heartbeat: that worker sends one, then hangs.
for opt, worker in (("--ready-timeout", ["hang"]), ("--watchdog", ["script", "ready", "watchdog", "hang"])):
    rid = run_id("tiny-" + opt.strip("-"))
    res = run(rid, [opt, "0.0000001", "--", FAKE] + worker, env=clean_env(), timeout=60)
    if res.rc == 100:
        check(opt in res.stderr, "%s 0.0000001: refused, naming the option" % opt)
    else:
        check(res.rc == 124, "%s 0.0000001: not off: the deadline passes (exit 124, got %s)" % (opt, res.rc))
    check_nothing_left(rid)
finish()
