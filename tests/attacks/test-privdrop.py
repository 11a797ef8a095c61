#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Weaker point: a rank that drops privileges (a root-started server that
# setuid()s to a service user) could reach neither the notify socket nor
# its error file, both in ringmaster's private run directory.
import tempfile
from attack import *

need_root("dropping privileges")
uid, gid = other_ids()
worker = (
    "import os, socket, json, sys\n"
    "os.setgroups([]); os.setgid(%d); os.setuid(%d)\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "a = os.environ['NOTIFY_SOCKET']\n"
    "s.sendto(b'READY=1', '\\0' + a[1:] if a.startswith('@') else a)\n"
    "json.dump({'message': {'message': 'dropped privileges and failed', 'extraInfo': "
    "{'py_callstack': 'Traceback: x', 'timestamp': '1'}}}, open(os.environ['TORCHELASTIC_ERROR_FILE'], 'w'))\n"
    "sys.exit(3)\n" % (gid, uid))
# A run directory of its own under a 0711 folder, as ringmaster makes its
# default parent: ringmasters of other versions on this host share the
# default parent and may set its mode back.
parent = tempfile.mkdtemp(prefix="rmtest-")
os.chmod(parent, 0o711)
rid = run_id("privdrop")
res = run(rid, ["--run-dir", os.path.join(parent, "run"), "--ready-timeout", "60", "--",
                sys.executable, "-c", worker], env=clean_env())
check(res.rc == 3, "exit 3, the rank's (got %s)" % res.rc)
check("PermissionError" not in res.stderr, "the rank could reach the socket and its error file")
check("dropped privileges and failed" in res.stderr, "the error file is in the report")
finish()
