#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# stdin reaches the workload as `docker run -i` users expect: rank 0 gets
# ringmaster's stdin (--stdin rank0, the default, as mpirun does), the other
# ranks /dev/null; --stdin all gives it to every rank (as torchrun), --stdin
# none to none.  Side by side with tini in a PID namespace; by default without
# --init too; a bad value is a usage error naming the choices.
import re
from inittest import *

require_namespaces()
DATA = b"line one\nline two\n"


def piped(argv, data=DATA, namespace=True):
    p = subprocess.run(in_namespace(argv) if namespace else argv, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=clean_env(), timeout=TIMEOUT)
    out = p.stdout.decode(errors="replace")
    log("$ %s\n-> %d\n%s%s" % (" ".join(argv), p.returncode, out, p.stderr.decode(errors="replace")[-3000:]))
    return p.returncode, out


rid = run_id("init-stdin")
t = piped(init_command("tini", ["cat"], rid))
m = piped(init_command("ringmaster", ["cat"], rid))
check(t == (0, DATA.decode()), "tini: cat echoes its stdin (%s)" % (t,))
check(m == t, "ringmaster --init: rank 0 gets its stdin, as with tini (%s)" % (m,))
check_nothing_left(rid)

RM = [RINGMASTER, "run", "--run-id", rid, "--no-preflight", "--no-tty", "--prefix", "%r: "]
# The default, without --init: rank 0 reads it, rank 1 sees end-of-file at once.
rc, out = piped(RM + ["-n", "2", "--", "sh", "-c", 'while read -r l; do echo "got $l"; done; echo eof'],
                namespace=False)
check(rc == 0 and "0: got line one" in out and "0: got line two" in out and "1: got" not in out
      and "1: eof" in out, "default (rank0): rank 0 reads stdin, rank 1 reads /dev/null")
# all: the ranks share it (each line is read by one of them).
rc, out = piped(RM + ["--stdin", "all", "-n", "2", "--", "sh", "-c", 'read -r l; echo "got $l"'], namespace=False)
got = sorted(re.findall(r"^(\d): got (.*)$", out, re.M))
check(rc == 0 and len(got) == 2 and sorted(g[1] for g in got) == ["line one", "line two"]
      and {g[0] for g in got} == {"0", "1"}, "--stdin all: both ranks read from it (%s)" % got)
# none: rank 0 too sees end-of-file.
rc, out = piped(RM + ["--stdin", "none", "-n", "1", "--", "sh", "-c", 'cat; echo eof'], namespace=False)
check(rc == 0 and "line" not in out and "0: eof" in out, "--stdin none: /dev/null for every rank")
# The option's value.
rc, out = piped(RM + ["--stdin", "rank1", "-n", "1", "--", "true"], namespace=False)
check(rc == 100, "--stdin rank1: a usage error (%s)" % rc)
p = subprocess.run(RM + ["--stdin", "rank1", "-n", "1", "--", "true"], stdin=subprocess.DEVNULL,
                   capture_output=True, env=clean_env())
check("--stdin" in p.stderr.decode() and "rank0, all or none" in p.stderr.decode(),
      "the error names the choices: %s" % p.stderr.decode().strip())
check_nothing_left(rid)
finish()
