from . import _lazy_init


def memory_allocated(device=None):
    _lazy_init()
    return 0
