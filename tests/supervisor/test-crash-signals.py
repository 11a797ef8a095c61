#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A rank dies of SIGSEGV, or of abort(): ringmaster exits 128 + the signal and
# names the signal; the other ranks are torn down.
import re
from rmtest import *

for action, sig, name in (("segv", signal.SIGSEGV, "SIGSEGV"), ("abort", signal.SIGABRT, "SIGABRT")):
    rid = run_id(action)
    res = run(rid, ["-n", "3", "--", FAKE, "--rank", "1", action, "--others", "hang"], env=clean_env())
    check(res.rc == 128 + sig, "%s: exit status %d" % (action, 128 + sig))
    check(re.search(r"first failure: rank 1 \(pid \d+, host [^,]+\) killed by %s" % name, res.stderr),
          "%s: report names rank 1 and %s" % (action, name))
    ff = res.report["first_failure"]
    check(ff["rank"] == 1 and ff["signal"] == sig and ff["signal_name"] == name and ff["exit_code"] is None,
          "%s: JSON first_failure" % action)
    check(res.report["exit_status"] == 128 + sig, "%s: JSON exit_status" % action)
    for k in (0, 2):
        check(rank_entry(res.report, k)["state"] == "signalled", "%s: rank %d torn down" % (action, k))
    check_nothing_left(rid)
finish()
