#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Weaker point: a full --log-dir (ENOSPC) lost log data with one stderr
# line.  The report (text and JSON) says that log data was lost, how much,
# and why.
import tempfile
from attack import *

if not private_mounts([__file__]):
    skip("no private mount namespace for a small tmpfs")
need_root("mounting a small tmpfs")
logs = tempfile.mkdtemp(prefix="rmtest-")
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", logs]).returncode != 0:
    skip("cannot mount a tmpfs")
rid = run_id("log-dir-full")
res = run(rid, ["--log-dir", logs, "--", FAKE, "lines", "4000", "100"], env=clean_env())
subprocess.run(["umount", logs])
text = report_section(res.stderr)
check("--log-dir" in text and "No space left on device" in text,
      "the text report says the log files are incomplete and why")
j = res.report or {}
check(j.get("log_dir_lost_bytes", 0) > 0, "JSON: log_dir_lost_bytes > 0 (%s)" % j.get("log_dir_lost_bytes"))
check(j.get("log_dir_error") == "No space left on device", "JSON: log_dir_error (%s)" % j.get("log_dir_error"))
finish()
