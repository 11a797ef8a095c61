#!/bin/sh
# The engine's CPU all-reduce through shared memory against gloo's, in the
# same run of this script, on this machine: both under `ringmaster run -n N`,
# both timing an in-place float32 sum, 200 iterations per size after 10
# warm-up ones.  Prints one table (docs/bench-engine.md keeps the figures).
#   tests/engine-ref/bench-allreduce.sh [N] [SIZES]
# Environment as the tests: top_builddir, RM_TORCH_PYTHONPATH.
. "$(dirname "$0")/common.sh"
n=${1:-2}
sizes=${2:-256,4K,64K,256K,1M,4M}
"$ringmaster" run -q --no-preflight --prefix none -n "$n" -- "$engine" --bench-allreduce "$sizes" \
        --allreduce one-shot > "$scratch/one" || fail "ringmaster-engine --bench-allreduce one-shot"
"$ringmaster" run -q --no-preflight --prefix none -n "$n" -- "$engine" --bench-allreduce "$sizes" \
        --allreduce two-shot > "$scratch/two" || fail "ringmaster-engine --bench-allreduce two-shot"
if "$python" -c 'import torch.distributed' 2>/dev/null; then
        OMP_NUM_THREADS=1 "$ringmaster" run -q --no-preflight --prefix none -n "$n" -- "$python" \
                "$here/gloo-allreduce.py" "$sizes" > "$scratch/gloo" || fail "gloo"
else
        echo "(torch not installed: no gloo column)" >&2
        : > "$scratch/gloo"
fi
"$python" - "$scratch/one" "$scratch/two" "$scratch/gloo" "$n" <<'PY'
import sys
def load(p):
    d = {}
    for l in open(p):
        f = l.split()
        if f and f[0].isdigit():
            d[int(f[0])] = float(f[2])
    return d
one, two, gloo = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
print("all-reduce, float32, %s ranks, mean microseconds per call" % sys.argv[4])
print("| bytes | shm one-shot | shm two-shot | gloo | gloo / best shm |")
print("|------:|-------------:|-------------:|-----:|----------------:|")
for b in sorted(one):
    g = gloo.get(b)
    best = min(one[b], two.get(b, one[b]))
    print("| %d | %.2f | %.2f | %s | %s |" % (b, one[b], two.get(b, float("nan")),
          "%.2f" % g if g else "-", "%.1fx" % (g / best) if g else "-"))
PY
