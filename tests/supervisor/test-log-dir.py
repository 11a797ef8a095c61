#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --log-dir DIR: each rank's output, raw and complete, in DIR/<run-id>/rank-N.out
# and rank-N.err, whatever the terminal got (escaped, or dropped).
import tempfile
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
logs = os.path.join(tmp, "logs", "nested")
rid = run_id("log-dir")
res = run(rid, ["-n", "2", "--log-dir", logs, "--", FAKE, "binary"], env=clean_env())
check(res.rc == 0, "exit 0")
junk = bytes(range(256)) + b"\xff\xfe\xc3(\xe2\x82\0\x1b[31mred\n"
d = os.path.join(logs, rid)
for r in range(2):
    with open(os.path.join(d, "rank-%d.out" % r), "rb") as f:
        check(f.read() == junk + b"after binary\n", "rank-%d.out holds the exact bytes" % r)
    with open(os.path.join(d, "rank-%d.err" % r), "rb") as f:
        check(f.read() == junk + "utf8: caf\u00e9 \u2713\n".encode(), "rank-%d.err holds the exact bytes" % r)
check(res.report["log_dir"] == d, "JSON log_dir")
check_nothing_left(rid)

# With restarts, the files grow, one marker line per restart.
rid = run_id("log-dir-restart")
res = run(rid, ["--log-dir", logs, "--max-restarts", "1", "--", FAKE, "fail-until", "1"], env=clean_env())
check(res.rc == 0, "restart: exit 0")
with open(os.path.join(logs, rid, "rank-0.out")) as f:
    text = f.read()
check(text.count("attempt restart_count=") == 2, "restart: both attempts' output kept")
check("==== ringmaster: restart 1 (TORCHELASTIC_RESTART_COUNT=1) ====" in text, "restart: marker line")
check_nothing_left(rid)
finish()
