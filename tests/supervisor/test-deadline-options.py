#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The deadline options' usage errors: exit 100, nothing started, a message
# that says what to give.
from rmtest import *

cases = [
    (["--phase-timeout", "nccl-init"], "--phase-timeout: 'nccl-init' is not NAME=SECS"),
    (["--phase-timeout", "nccl init=5"], "is not NAME=SECS"),
    (["--phase-timeout", "=5"], "is not NAME=SECS"),
    (["--phase-timeout", "nccl-init=soon"], "--phase-timeout: 'soon' is not a duration"),
    (["--phase-timeout", "nccl-init=2d"], "is not a duration of at most a day"),
    (["--ready-timeout", "x"], "--ready-timeout: 'x' is not a duration"),
    (["--straggler-timeout", "-1"], "--straggler-timeout: '-1' is not a duration"),
    (["--watchdog", "1 s"], "--watchdog: '1 s' is not a duration"),
]
for args, want in cases:
    rid = run_id("deadline-options")
    res = run(rid, args + ["--", FAKE, "true"], env=clean_env(), report=False)
    check(res.rc == 100, "%s: exit 100" % " ".join(args))
    check(want in res.stderr, "%s: says %r" % (" ".join(args), want))
    check_nothing_left(rid)
res = run(run_id("deadline-help"), ["--help"], report=False)
for opt in ("--ready-timeout", "--phase-timeout", "--straggler-timeout", "--watchdog"):
    check(opt in res.stdout, "--help lists %s" % opt)
finish()
