#!/bin/sh
# SPDX-License-Identifier: MIT
# contrib/systemd/ringmaster@.service.in passes `systemd-analyze verify`
# without a single warning, with ExecStart pointing at the build's
# ringmaster, as the template and as an instance.  Two broken copies (a
# misspelt directive, a missing binary) must fail the same check, so that
# the check can fail at all.  Skipped (77) without systemd-analyze.
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
unit_in="$top_srcdir/contrib/systemd/ringmaster@.service.in"
ringmaster="$top_builddir/supervisor/ringmaster"

if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "SKIP: systemd-analyze is not installed"
        exit 77
fi
[ -f "$unit_in" ] || { echo "ERROR: $unit_in is missing"; exit 99; }
[ -x "$ringmaster" ] || { echo "ERROR: $ringmaster is not built"; exit 99; }

tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
failures=0

# verify FILE: passes when systemd-analyze exits 0 and says nothing at all.
verify() {
        out=$(systemd-analyze verify --man=no "$1" 2>&1)
        rc=$?
        [ -n "$out" ] && printf '%s\n' "$out"
        [ $rc -eq 0 ] && [ -z "$out" ]
}

expect() {   # expect pass|fail FILE WHAT
        if verify "$2"; then got=pass; else got=fail; fi
        if [ "$got" = "$1" ]; then
                echo "ok: $3 ($got)"
        else
                echo "FAIL: $3: expected $1, got $got"
                failures=$((failures + 1))
        fi
}

sed -e "s|@bindir@|$top_builddir/supervisor|g" "$unit_in" > "$tmp/ringmaster@.service" || exit 99
if grep -q '@[a-z]*@' "$tmp/ringmaster@.service"; then
        echo "FAIL: a placeholder is left in the unit:"
        grep -n '@[a-z]*@' "$tmp/ringmaster@.service"
        failures=$((failures + 1))
fi
cp "$tmp/ringmaster@.service" "$tmp/ringmaster@llama.service"
expect pass "$tmp/ringmaster@.service" "the template verifies cleanly"
expect pass "$tmp/ringmaster@llama.service" "an instance verifies cleanly"

# What the unit must say (the ringmaster side depends on these).
for line in 'Type=notify' 'NotifyAccess=main' 'KillMode=mixed' 'EnvironmentFile=/etc/ringmaster/%i.env' \
            'LimitMEMLOCK=infinity' 'SuccessExitStatus=143' 'RestartPreventExitStatus=100'; do
        if grep -qx "$line" "$tmp/ringmaster@.service"; then
                echo "ok: $line"
        else
                echo "FAIL: the unit lacks $line"
                failures=$((failures + 1))
        fi
done
for key in WatchdogSec TimeoutStartSec TimeoutStopSec; do
        if grep -q "^$key=" "$tmp/ringmaster@.service"; then
                echo "ok: $key= set"
        else
                echo "FAIL: the unit lacks $key="
                failures=$((failures + 1))
        fi
done

# The controls: the same check fails on broken copies.
sed -e 's/^KillMode=mixed/KilMode=mixed/' "$tmp/ringmaster@.service" > "$tmp/ringmaster-typo@llama.service"
expect fail "$tmp/ringmaster-typo@llama.service" "a misspelt directive is caught"
sed -e "s|^ExecStart=$top_builddir/supervisor/|ExecStart=$tmp/nowhere/|" "$tmp/ringmaster@.service" \
        > "$tmp/ringmaster-missing@llama.service"
expect fail "$tmp/ringmaster-missing@llama.service" "a missing ringmaster binary is caught"

# The drop-in example parses as part of the unit.
mkdir -p "$tmp/ringmaster@llama.service.d"
cp "$top_srcdir/contrib/systemd/ringmaster@.service.d/example.conf" "$tmp/ringmaster@llama.service.d/"
expect pass "$tmp/ringmaster@llama.service" "the instance with the example drop-in verifies cleanly"

if [ $failures -ne 0 ]; then
        echo "$failures check(s) failed"
        exit 1
fi
echo "all checks passed"
