#!/bin/sh
# The CPU all-reduce through shared memory, at 2 and 3 ranks: one-shot,
# two-shot (an uneven split at 3 ranks) and messages larger than a chunk;
# ringmaster-engine --bench-allreduce checks every element of every sum.
. "$(dirname "$0")/common.sh"

for n in 2 3; do
        for algo in one-shot two-shot auto; do
                "$ringmaster" run -q --no-preflight --prefix none -n $n -- "$engine" --bench-allreduce 4,1000,300K,5M \
                        --bench-iters 3 --allreduce $algo > "$scratch/out" 2>&1 ||
                        { cat "$scratch/out"; fail "the $algo all-reduce at $n ranks"; }
                lines=$(grep -c '^[0-9]' "$scratch/out")
                [ "$lines" = 4 ] || { cat "$scratch/out"; fail "$algo at $n ranks: $lines sizes timed, want 4"; }
        done
        echo "ok: $n ranks"
done
"$ringmaster" run -q -n 2 -- "$engine" --bench-allreduce 4K --allreduce three-shot > "$scratch/out" 2>&1 &&
        fail "an unknown --allreduce was accepted"
grep -q "one-shot or two-shot, not 'three-shot'" "$scratch/out" || { cat "$scratch/out"; fail "no reason given"; }
echo "test-engine-allreduce: PASS"
