#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Weaker point: notify datagrams dropped on a successful run were counted
# only in the JSON report.  The text report says it too.
from attack import *

rid = run_id("drops-text")
res = run(rid, ["--", FAKE, "script", "garbage", "exit=0"], env=clean_env())
check(res.rc == 0, "exit 0")
n = sum(res.report["notify"]["dropped"].values()) if res.report and "notify" in res.report else None
log("JSON dropped: %s" % n)
text = report_section(res.stderr)
check("notify datagram" in text and "dropped" in text, "the text report counts the dropped notify datagrams")
finish()
