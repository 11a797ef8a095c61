#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The options of `ringmaster run` and `check` as --help prints them (made
# from options.c's table of descriptors) are those of ringmaster(1)'s
# OPTIONS, with the same short names and argument names: an option added
# to one and not the other fails here.
import os
import re
import subprocess
from rmtest import *

TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAN = os.path.join(TOP_SRCDIR, "man", "ringmaster.1")


def help_options(command):
    p = subprocess.run([RINGMASTER, command, "--help"], stdin=subprocess.DEVNULL, capture_output=True,
                       env=clean_env(), timeout=TIMEOUT)
    require(p.returncode == 0, "ringmaster %s --help exits 0" % command)
    options = {}
    for line in p.stdout.decode().splitlines():
        m = re.match(r"  (?:-(\w), |    )--([a-z][a-z0-9-]*)(?: (\S+))?(?:  |$)", line)
        if m:
            options[m.group(2)] = (m.group(1), m.group(3))
    return options


def man_options():
    """--name -> (short name, argument name) of every .TP entry of OPTIONS."""
    with open(MAN) as f:
        lines = f.read().splitlines()
    start = lines.index(".SH OPTIONS")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(".SH "))
    options = {}
    for i in range(start, end - 1):
        if lines[i] != ".TP":
            continue
        entry = lines[i + 1]
        text = entry.replace("\\-", "-").replace("\\fI", "").replace("\\fR", "").replace("\\fB", "")
        # .B --name | .BI --name= ARG [= ARG] | .BR -n ", " --name [=ARG]
        m = re.match(r'\.(?:B|BI|BR) (?:-(\w) ", " )?--([a-z][a-z0-9-]*)(=?)(.*)$', text)
        if m is None:
            check(False, "man page OPTIONS: cannot read the entry %r" % entry)
            continue
        arg = re.sub(r"[\s\"]", "", m.group(4)).lstrip("=") or None
        options[m.group(2)] = (m.group(1), arg)
    return options


run = help_options("run")
check_only = {k: v for k, v in help_options("check").items() if k not in run}
helped = dict(run)
helped.update(check_only)
helped.pop("help", None)
man = man_options()

check(len(helped) > 40 and len(man) > 40, "both lists read (%d in --help, %d in the man page)" % (len(helped), len(man)))
check(set(helped) == set(man) and all(man[k] == helped[k] for k in man),
      "every option's short name and argument agree between --help and the man page")
for name in sorted(set(helped) - set(man)):
    check(False, "--%s is in --help but not in man/ringmaster.1's OPTIONS: document it there" % name)
for name in sorted(set(man) - set(helped)):
    check(False, "--%s is in man/ringmaster.1's OPTIONS but not in --help: add it to options.c's table" % name)
for name in sorted(set(man) & set(helped)):
    if man[name] != helped[name]:
        check(False, "--%s: --help says (short, argument) %r, the man page %r" % (name, helped[name], man[name]))
finish()
