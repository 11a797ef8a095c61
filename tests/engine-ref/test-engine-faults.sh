#!/bin/sh
# The engine's fault switches under ringmaster: a rank that crashes, exits
# or hangs at a chosen phase is the one ringmaster's report names, with its
# phase; a hang is ended by the supervisor's deadline (straggler during
# start-up, watchdog while serving), not by waiting.  And bad input: a
# request that cannot run is answered with an error (exit 65), a missing
# checkpoint is named.
. "$(dirname "$0")/common.sh"
need_torch

dir=$scratch/ck
"$python" "$here/make-checkpoint.py" "$dir" --requests "$dir.req" --n 6 --max-new-tokens 40 >/dev/null 2>&1 ||
        fail "make-checkpoint.py failed"

# expect STATUS KEY=VALUE... -- ringmaster and engine arguments: the report's fields must match.
expect() {
        want=$1
        shift
        checks=
        while [ "$1" != "--" ]; do
                checks="$checks $1"
                shift
        done
        shift
        rm -f "$scratch/report.json"
        "$ringmaster" run -q --report "$scratch/report.json" "$@" >"$scratch/out" 2>&1
        got=$?
        if [ "$got" != "$want" ]; then
                cat "$scratch/out"
                fail "'$*' exited $got, want $want"
        fi
        "$python" - "$scratch/report.json" $checks <<'PY' || { cat "$scratch/out"; fail "report of '$*'"; }
import json, sys
rep = json.load(open(sys.argv[1]))
for check in sys.argv[2:]:
    path, want = check.split("=", 1)
    v = rep
    for k in path.split("."):
        v = v[int(k)] if isinstance(v, list) else v.get(k) if v is not None else None
    if (json.dumps(v, separators=(",", ":")) if isinstance(v, list) else str(v)) != want:
        sys.exit("report: %s is %r, want %s" % (path, v, want))
PY
        echo "ok: $want $checks"
}

eng="$engine --model $dir --requests $dir.req --output /dev/null --quiet"

# shellcheck disable=SC2086
expect 139 first_failure.rank=1 first_failure.signal_name=SIGSEGV first_failure.phase=load-weights -- \
        -n 2 -- $eng --fail-rank 1 --fail-at load-weights --fail-how crash
# shellcheck disable=SC2086
expect 3 first_failure.rank=1 first_failure.exit_code=3 first_failure.phase=warmup -- \
        -n 2 -- $eng --fail-rank 1 --fail-at warmup --fail-how exit
# shellcheck disable=SC2086
expect 3 first_failure.rank=0 first_failure.exit_code=3 -- \
        -n 2 -- $eng --fail-rank 0 --fail-at serve --fail-how exit --fail-step 3
# A hang in start-up: the other rank goes on to allreduce-init, the straggler deadline names rank 1.
# (In allreduce-init, rank 0 waits for every rank to attach to the step channel: it is late too.)
# shellcheck disable=SC2086
expect 124 deadline.kind=straggler-timeout deadline.ranks.0=1 deadline.phase=load-weights -- \
        -n 2 --straggler-timeout 2 -- $eng --fail-rank 1 --fail-at load-weights --fail-how hang
# shellcheck disable=SC2086
expect 124 deadline.kind=straggler-timeout deadline.ranks=[0,1] deadline.phase=allreduce-init -- \
        -n 4 --no-preflight --straggler-timeout 2 -- $eng --fail-rank 1 --fail-at allreduce-init --fail-how hang
# A hang while serving: rank 0 waits in the all-reduce but keeps sending WATCHDOG=1; rank 1 does not.
# shellcheck disable=SC2086
expect 124 deadline.kind=watchdog deadline.ranks.0=1 -- \
        -n 2 --watchdog 3 -- $eng --fail-rank 1 --fail-at serve --fail-how hang --fail-step 2

# Bad input: the bad request is answered with an error, the others are served; exit 65.
{ head -n 2 "$dir.req"; echo '{"id": "bad", "prompt": [1, 99999]}'; echo 'not json'; } > "$scratch/mixed.req"
"$ringmaster" run -q -n 2 -- "$engine" --model "$dir" --requests "$scratch/mixed.req" --output "$scratch/mixed.out" \
        --quiet 2>"$scratch/err"
rc=$?
[ $rc = 65 ] || { cat "$scratch/err"; fail "a rejected request gave exit $rc, want 65"; }
"$python" - "$scratch/mixed.out" <<'PY' || fail "the answers to the mixed requests"
import json, sys
ans = {d["id"]: d for d in map(json.loads, open(sys.argv[1]))}
assert len(ans) == 4, ans.keys()
assert "tokens" in ans["r0"] and "tokens" in ans["r1"]
assert "not a token id" in ans["bad"]["error"], ans["bad"]
assert "not a JSON object" in ans["4"]["error"], ans["4"]
PY
grep -q "request bad (line 3): prompt\[1\] is not a token id" "$scratch/err" || { cat "$scratch/err"; fail "no message for the bad request"; }
echo "ok: rejected requests answered with errors"

"$engine" --model "$scratch/nowhere" --requests /dev/null 2>"$scratch/err"
rc=$?
[ $rc = 1 ] && grep -q "nowhere/config.json: no such file" "$scratch/err" ||
        { cat "$scratch/err"; fail "a missing checkpoint: exit $rc"; }
"$ringmaster" run -q --no-preflight -n 3 -- "$engine" --model "$dir" --requests /dev/null 2>"$scratch/err"
grep -q "tensor parallelism 3 does not divide num_attention_heads 8" "$scratch/err" ||
        { cat "$scratch/err"; fail "TP=3 on 8 heads was not refused with a reason"; }
echo "ok: a missing checkpoint and an impossible split are named"
echo "test-engine-faults: PASS"
