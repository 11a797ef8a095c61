#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Weaker point: -n beyond what RLIMIT_NOFILE allows forked hundreds of
# ranks, then failed.  ringmaster raises the soft limit to the hard one (as
# systemd does), then refuses clearly before forking anything.
import resource
import tempfile
from attack import *

tmp = tempfile.mkdtemp(prefix="rmtest-")


def limited(soft, hard):
    def f():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return f


ready = Fifo(tmp)
rid = run_id("nofile")
p = subprocess.Popen(ringmaster_args(rid, ["-n", "60", "--", FAKE, "--ready", ready.path, "true"], None),
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                     preexec_fn=limited(64, 64))
out, err = p.communicate(timeout=TIMEOUT)
err = err.decode(errors="replace")
log(err[-3000:])
check(p.returncode == 100, "refused: exit 100 (got %s)" % p.returncode)
check("RLIMIT_NOFILE" in err or "ulimit -n" in err, "the message names the limit")
try:
    started = ready.wait_lines(1, timeout=0.5)
except TimeoutError:
    started = []
check(started == [], "no rank was started")
check_nothing_left(rid)

# A low soft limit under a high hard one is raised, and the run goes on.
rid = run_id("nofile-raise")
p = subprocess.Popen(ringmaster_args(rid, ["-n", "60", "--", FAKE, "true"], None),
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                     preexec_fn=limited(64, 4096))
out, err = p.communicate(timeout=TIMEOUT)
check(p.returncode == 0, "soft 64, hard 4096: the soft limit is raised, exit 0 (got %s)" % p.returncode)
check_nothing_left(rid)
finish()
