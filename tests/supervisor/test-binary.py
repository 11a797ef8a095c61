#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A rank writes binary junk (every byte value, invalid UTF-8, NULs, an escape
# sequence): by default the terminal gets only printable text and valid
# UTF-8, the rest as \xNN; with --no-escape the bytes pass unchanged; the
# JSON report stays valid either way.
from rmtest import *

rid = run_id("binary")
res = run(rid, ["-n", "2", "--", FAKE, "binary"], env=clean_env())
check(res.rc == 0, "exit 0")
for name, data in (("stdout", res.out), ("stderr", res.err)):
    bad = sorted({b for b in data if (b < 0x20 and b not in (0x0a, 0x09)) or b == 0x7f})
    check(bad == [], "%s: no control bytes but newline and tab (found %s)" % (name, bad))
    try:
        data.decode("utf-8")
        check(True, "%s is valid UTF-8" % name)
    except UnicodeDecodeError as e:
        check(False, "%s is valid UTF-8 (%s)" % (name, e))
check("[rank 0] \\x00\\x01\\x02\\x03" in res.stdout, "NUL and control bytes shown as \\xNN")
check("\\x1b[31mred" in res.stdout, "ESC escaped, the rest of the sequence kept")
check("\\xff\\xfe\\xc3(\\xe2\\x82\\x00" in res.stdout, "invalid UTF-8 shown byte by byte")
check("[rank 1] after binary" in res.stdout, "text after the junk intact")
check("[rank 0] utf8: caf\u00e9 \u2713" in res.stderr, "valid UTF-8 passes through")
check(res.stdout.count("\n") == res.out.count(b"\n"), "line count consistent")
st = rank_entry(res.report, 0)["stdout"]
check(st["bytes"] == 256 + 16 + 13, "every byte counted (%d)" % st["bytes"])
check(any("after binary" in line for line in st["tail"]), "tail kept in the JSON")
check_nothing_left(rid)

rid = run_id("binary-raw")
res = run(rid, ["--no-escape", "--", FAKE, "binary"], env=clean_env())
check(res.rc == 0, "--no-escape: exit 0")
check(b"\x1b[31mred" in res.out and b"\x00\x01\x02" in res.out, "--no-escape: bytes passed unchanged")
check(res.report is not None and res.report["ranks"][0]["stdout"]["bytes"] == 285,
      "--no-escape: the JSON report is still valid JSON")
check_nothing_left(rid)
finish()
