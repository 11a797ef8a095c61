# tests/python: the Python package, the start-up hook and the shmring
# binding, with pytest (tests/python/test-python.sh runs it; skip 77 without
# pytest); and torchrun parity (skip 77 without torch or ringmaster).
TESTS += \
	tests/python/test-python.sh \
	tests/python/test-torchrun-parity.sh \
	tests/python/test-torchrun-cli-parity.sh
EXTRA_DIST += \
	tests/python/test-python.sh \
	tests/python/test-torchrun-parity.sh \
	tests/python/test-torchrun-cli-parity.sh \
	tests/python/conftest.py \
	tests/python/test_worker.py \
	tests/python/test_notify_contract.py \
	tests/python/test_shmring.py \
	tests/python/test_hook.py \
	tests/python/test_workers.py \
	tests/python/shmring_peer.py \
	tests/python/fake_torch/torch/__init__.py \
	tests/python/fake_torch/torch/cuda/__init__.py \
	tests/python/fake_torch/torch/cuda/memory.py \
	tests/python/fake_torch/torch/distributed/__init__.py \
	tests/python/fake_torch/torch/distributed/distributed_c10d.py \
	tests/python/parity/parity.py
