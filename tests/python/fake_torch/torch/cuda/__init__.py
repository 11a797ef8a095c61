"""Fake torch.cuda: _lazy_init is what every CUDA entry point goes through.
FAKE_TORCH_CUDA=none: no driver, as on a CPU-only machine."""

import os

_initialized = False
LAZY_INIT_CALLS = []


def is_initialized():
    return _initialized


def _lazy_init():
    global _initialized
    LAZY_INIT_CALLS.append(1)
    if _initialized:
        return
    if os.environ.get("FAKE_TORCH_CUDA") == "none":
        raise RuntimeError("Found no NVIDIA driver on your system.")
    _initialized = True


def set_device(device):
    # torch's C++ looks _lazy_init up on the module at call time.
    import torch.cuda
    torch.cuda._lazy_init()


def current_device():
    import torch.cuda
    torch.cuda._lazy_init()
    return 0


from .memory import memory_allocated    # noqa: E402,F401  (binds _lazy_init by name, as torch's do)
