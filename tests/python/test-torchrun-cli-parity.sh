#!/bin/sh
# torchrun parity through torchrun's own command line: the same programs as
# test-torchrun-parity.sh, with ringmaster started as
# `ringmaster torchrun --nproc-per-node N --master-addr ... script.py`
# (supervisor/torchrun-cli.c).  Skips (77) without torch or ringmaster.
export RM_PARITY_CLI=torchrun
export RM_PARITY_CASES="${RM_PARITY_CASES:-env,all_reduce,barrier,raise}"
exec sh "$(dirname "$0")/test-torchrun-parity.sh" "$@"
