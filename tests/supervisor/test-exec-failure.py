#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The command cannot be executed: not found (127) or not executable (126),
# as a shell would say; the report says why.
import tempfile
from rmtest import *

rid = run_id("exec-missing")
res = run(rid, ["-n", "2", "--", "/nonexistent/ringmaster-test-binary", "x"], env=clean_env())
check(res.rc == 127, "missing binary: exit status 127")
check("cannot execute /nonexistent/ringmaster-test-binary: No such file or directory" in res.stderr,
      "missing binary: says it cannot execute it")
check("could not execute the command: No such file or directory (exit status 127)" in res.stderr,
      "missing binary: the report says so")
ff = res.report["first_failure"]
check(ff["exit_code"] == 127 and ff["exec_error"] == "No such file or directory", "missing binary: JSON")
check_nothing_left(rid)

rid = run_id("exec-path")
res = run(rid, ["--", "ringmaster-no-such-command-%d" % os.getpid()], env=clean_env())
check(res.rc == 127 and "not found in PATH" in res.stderr, "not in PATH: 127, says so")
check_nothing_left(rid)

tmp = tempfile.mkdtemp(prefix="rmtest-")
script = os.path.join(tmp, "not-executable")
with open(script, "w") as f:
    f.write("#!/bin/sh\necho hi\n")
os.chmod(script, 0o644)
rid = run_id("exec-noexec")
res = run(rid, ["-n", "2", "--", script], env=clean_env())
if os.geteuid() == 0 and os.access(script, os.X_OK):
    log("root may execute 0644 files here; the 126 case is not testable")
else:
    check(res.rc == 126, "not executable: exit status 126")
    check("Permission denied" in res.stderr, "not executable: Permission denied")
    check(res.report["first_failure"]["exec_error"] == "Permission denied", "not executable: JSON")
check_nothing_left(rid)

# A directory: found, not executable.
rid = run_id("exec-dir")
res = run(rid, ["--", tmp], env=clean_env())
check(res.rc == 126, "a directory: exit status 126")
check_nothing_left(rid)
finish()
