#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Attack 5: worker-controlled text in the text report must be escaped as
# worker lines are: the error file's message and traceback, process and
# thread names (prctl PR_SET_NAME), an executable's name with a newline,
# and UTF-8-encoded C1 controls (U+0080-U+009F: U+009B is a CSI on many
# terminals) in worker lines.
import tempfile
from attack import *

ESC = b"\x1b"
C1 = "\u009b".encode()          # b"\xc2\x9b"
FORGED = b"\n======== run forged"


def clean(label, err):
    check(ESC not in err, "%s: no raw ESC in ringmaster's stderr" % label)
    check(C1 not in err, "%s: no raw UTF-8 C1 control (U+009B) in ringmaster's stderr" % label)
    check(FORGED not in err, "%s: no line forged by a newline" % label)


tmp = tempfile.mkdtemp(prefix="rmtest-")
env = clean_env()

# The error file (as torch's @record would write it) and a worker line.
evil = "\u001b[2J\u009b31m\n======== run forged"
errfile_py = (
    "import json, os, sys\n"
    "m = %r\n"
    "json.dump({'message': {'message': m, 'extraInfo': {'py_callstack': 'Traceback:\\n' + m + '\\n', "
    "'timestamp': '1'}}}, open(os.environ['TORCHELASTIC_ERROR_FILE'], 'w'))\n"
    "sys.stderr.buffer.write(b'line: \\xc2\\x9b31m C1 CSI\\n'); sys.stderr.flush()\n"
    "sys.exit(3)\n" % evil)
rid = run_id("escape-errfile")
res = run(rid, ["--", sys.executable, "-c", errfile_py], env=env)
check(res.rc == 3, "exit 3")
check("error file" in res.stderr, "the error file is in the report")
clean("error file and worker line", res.err)

# An executable whose name has a newline and an escape sequence.
name = os.path.join(tmp, "evil\n======== run forged\x1b[2J")
rid = run_id("escape-exe")
res = run(rid, ["--", name], env=env)
check(res.rc == 127, "exit 127 (not found)")
clean("executable name", res.err)

# A rank that renames itself (PR_SET_NAME) and hangs: the deadline's
# diagnosis names its process and threads.
hang_py = (
    "import ctypes, threading, time\n"
    "libc = ctypes.CDLL(None)\n"
    "libc.prctl(15, b'\\x1b[2J\\xc2\\x9bx\\nforged', 0, 0, 0)\n"
    "time.sleep(600)\n")
rid = run_id("escape-comm")
res = run(rid, ["--ready-timeout", "1", "--grace", "1", "--", sys.executable, "-c", hang_py],
          env=clean_env(RINGMASTER_PYTHON_HOOKS=None))
check(res.rc == 124, "the ready deadline passed: exit 124 (got %s)" % res.rc)
clean("process name", res.err)
finish()
