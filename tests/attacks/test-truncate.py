#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Attack 4: a rank ftruncate()s the job's segment, then exits.  ringmaster
# marks the dead rank in the segment: it must not die of SIGBUS; it writes
# its report and removes the segment as on any failure.
import tempfile
from attack import *

rid = run_id("truncate")
res = run(rid, ["-n", "2", "--", "sh", "-c",
                'if [ "$RANK" = 0 ]; then truncate -s 0 "/dev/shm/$RINGMASTER_SHM" || exit 9; exit 3; fi; exec sleep 60'],
          env=clean_env())
check(res.rc == 3, "exit status 3, rank 0's (not 135, ringmaster's SIGBUS; got %s)" % res.rc)
check(res.report is not None and res.report.get("exit_status_rank") == 0, "the JSON report was written")
check("first failure: rank 0" in res.stderr, "the text report was written")
check_nothing_left(rid)
finish()
