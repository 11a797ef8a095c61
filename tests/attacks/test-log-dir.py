#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Attack 3: --log-dir in a place others can write to, with a predictable
# run id.  Another user who creates DIR/<run-id>/ first, or plants
# DIR/<run-id>/rank-0.out as a symlink, must not get ringmaster (root) to
# write through it: the rank files are opened O_NOFOLLOW, the run folder
# is ringmaster's own (created by it, or already its own and private).
import tempfile
from attack import *

need_root("planting files as another user")
uid, gid = other_ids()
logs = tempfile.mkdtemp(prefix="rmtest-")
os.chmod(logs, 0o1777)
victim = os.path.join(logs, "victim")
with open(victim, "w") as f:
    f.write("precious\n")

# a. The run folder, made first by another user: refused, nothing started.
rid = run_id("logdir-foreign")
d = os.path.join(logs, rid)
os.mkdir(d, 0o777)
os.chown(d, uid, gid)
os.chmod(d, 0o777)
res = run(rid, ["--log-dir", logs, "--", FAKE, "binary"], env=clean_env())
check(res.rc == 100, "a run folder owned by another user is refused: exit 100 (got %s)" % res.rc)
check(d in res.stderr and "--log-dir" in res.stderr, "the message names the option and the folder")
check(os.listdir(d) == [], "nothing was written into it")

# b. Our own run folder (a rerun of a unit's %i) holding a planted symlink.
rid = run_id("logdir-link")
d = os.path.join(logs, rid)
os.mkdir(d, 0o700)
os.symlink(victim, os.path.join(d, "rank-0.out"))
res = run(rid, ["--log-dir", logs, "--", FAKE, "binary"], env=clean_env())
with open(victim, "rb") as f:
    check(f.read() == b"precious\n", "a symlinked rank file is not written through")
check(res.rc != 0 or not os.path.islink(os.path.join(d, "rank-0.out")),
      "either refused, or the link was replaced by the real file")
check("rank-0.out" in res.stderr, "the message names the rank file")

# c. Our own run folder, but opened to others (0777): refused.
rid = run_id("logdir-open")
d = os.path.join(logs, rid)
os.mkdir(d)
os.chmod(d, 0o777)
res = run(rid, ["--log-dir", logs, "--", FAKE, "true"], env=clean_env())
check(res.rc == 100, "a run folder others can write to is refused: exit 100 (got %s)" % res.rc)

# d. A fresh run folder is private to us.
rid = run_id("logdir-fresh")
res = run(rid, ["--log-dir", logs, "--", FAKE, "true"], env=clean_env())
st = os.stat(os.path.join(logs, rid))
check(res.rc == 0 and st.st_uid == os.geteuid() and (st.st_mode & 0o022) == 0,
      "a run folder ringmaster makes is its own and not writable by others (mode %o)" % (st.st_mode & 0o7777))
finish()
