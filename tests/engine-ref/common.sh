# Sourced by the engine's tests: paths, torch, and a scratch folder.
#   $engine, $ringmaster     the programs under test
#   $python                  python3 with torch + transformers (RM_TORCH_PYTHONPATH)
#   $scratch                 a fresh folder, removed at exit
#   need_torch               skip (77) when torch/transformers are missing
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
here=$top_srcdir/tests/engine-ref
engine=${RINGMASTER_ENGINE_BIN:-$top_builddir/engine/ref/ringmaster-engine}
ringmaster=${RINGMASTER_BIN:-$top_builddir/supervisor/ringmaster}
python=${PYTHON3:-python3}
if [ -n "${RM_TORCH_PYTHONPATH:-}" ]; then
        PYTHONPATH="$RM_TORCH_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}"
        export PYTHONPATH
fi
# transformers on a machine without network: never try the Hub.
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE TRANSFORMERS_OFFLINE TOKENIZERS_PARALLELISM
scratch=$(mktemp -d "${TMPDIR:-/tmp}/engine-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

for p in "$engine" "$ringmaster"; do
        if [ ! -x "$p" ]; then
                echo "$(basename "$0"): no $p: skipped"
                exit 77
        fi
done

need_torch() {
        if ! "$python" -c 'import torch, transformers, safetensors' 2>/dev/null; then
                echo "$(basename "$0"): torch, transformers and safetensors are not installed for $python" \
                     "(RM_TORCH_PYTHONPATH names a folder holding them): skipped"
                exit 77
        fi
}

fail() {
        echo "$(basename "$0"): FAIL: $*"
        exit 1
}
