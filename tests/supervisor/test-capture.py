#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Output capture: prefix formats; several ranks writing lines in pieces
# concurrently interleave only at line boundaries; partial last lines, lone
# carriage returns, over-long lines and the report's tail.
import re
import tempfile
from rmtest import *

# Prefix formats.
for fmt, want in (("rank", "[rank 1] hello"), ("torchrun", "[default1]:hello"), ("none", "hello"),
                  ("<%n:%r/%l:%s> ", "<default:1/1:out> hello")):
    rid = run_id("capture-prefix")
    res = run(rid, ["-n", "2", "--prefix", fmt, "--", "sh", "-c", 'echo hello; echo oops >&2'],
              env=clean_env(), report=False)
    check(want in res.stdout.splitlines(), "--prefix %s: %r" % (fmt, want))
    if fmt.startswith("<"):
        check("<default:1/1:err> oops" in res.stderr.splitlines(), "--prefix %%s says err on stderr")
    check_nothing_left(rid)
rid = run_id("capture-prefix-pid")
res = run(rid, ["--prefix", "%p|", "--", "sh", "-c", 'echo $$'], env=clean_env(), report=False)
m = re.match(r"(\d+)\|(\d+)$", res.stdout.strip())
check(m and m.group(1) == m.group(2), "%p is the worker's pid")

# Interleaving: 4 ranks, each line written in three pieces with yields between.
# ringmaster's stdout is a file, so that no line is dropped for a slow reader.
N, LINES, LEN = 4, int(os.environ.get("RM_CAPTURE_LINES", "3000")), 300
rid = run_id("capture-interleave")
with tempfile.TemporaryFile() as f:
    res = run(rid, ["-n", str(N), "--", FAKE, "lines", str(LINES), str(LEN)], env=clean_env(), stdout=f)
check(res.rc == 0, "interleave: exit 0")
seen = {r: 0 for r in range(N)}
bad = 0
for line in res.stdout.splitlines():
    m = re.match(r"\[rank (\d)\] r(\d)-(\d+)-([a-z]*)$", line)
    if not m or m.group(1) != m.group(2):
        bad += 1
        if bad < 5:
            log("torn line: %r" % line[:120])
        continue
    r, i, body = int(m.group(1)), int(m.group(3)), m.group(4)
    head = len("r%d-%d-" % (r, i))
    good = body == "".join(chr(ord("a") + (k + r) % 26) for k in range(head, LEN))
    if i != seen[r] or not good:
        bad += 1
        if bad < 5:
            log("out of order or corrupt: %r" % line[:120])
    seen[r] = i + 1
check(bad == 0, "interleave: every line whole, in order, under its own prefix (%d bad)" % bad)
check(all(seen[r] == LINES for r in range(N)), "interleave: every line of every rank (%s)" % seen)
check_nothing_left(rid)

# A last line without a newline; lone and paired carriage returns; over-long lines; the tail.
rid = run_id("capture-edges")
script = 'printf "a\\rb\\r\\nc\\n"; printf "%0250d\\n" 0; for i in 1 2 3 4 5; do echo t$i >&2; done; printf "no newline"'
res = run(rid, ["--max-line", "100", "--tail-lines", "3", "--", "sh", "-c", script], env=clean_env())
lines = res.stdout.splitlines()
check(lines[:3] == ["[rank 0] a", "[rank 0] b", "[rank 0] c"], "\\r and \\r\\n end lines (%s)" % lines[:3])
check(lines[3:6] == ["[rank 0] " + "0" * 100, "[rank 0] " + "0" * 100, "[rank 0] " + "0" * 50],
      "a 250-byte line is cut at --max-line 100")
check(lines[-1] == "[rank 0] no newline" and res.stdout.endswith("no newline\n"),
      "the unterminated last line is emitted, with a newline")
st = rank_entry(res.report, 0)
check(st["stdout"]["unterminated"] and st["stdout"]["cut_lines"] == 2, "JSON: unterminated, 2 cut lines")
check(st["stderr"]["tail"] == ["t3", "t4", "t5"], "--tail-lines 3 keeps the last 3 (%s)" % st["stderr"]["tail"])
check_nothing_left(rid)
finish()
