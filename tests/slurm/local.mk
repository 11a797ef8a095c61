# tests/slurm: ringmaster under a real srun (Debian's slurmctld, two slurmd
# and munge, started by the test from its own folder; skip 77 where they
# cannot run).  Slurm's environment alone is simulated in tests/multinode.

SLURM_PY_TESTS = tests/slurm/test-srun.py
TESTS += $(SLURM_PY_TESTS)
EXTRA_DIST += tests/slurm/worker.py $(SLURM_PY_TESTS)
