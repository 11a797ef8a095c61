"""Fake torch.distributed.distributed_c10d.  FAKE_TORCH_INIT selects how
init_process_group behaves: "ok" (default), "raise" or "hang"."""

import os
import time

__all__ = ["init_process_group", "new_group", "barrier", "get_backend", "GroupMember"]

CALLS = []
_default_backend = None


class _Group:
    def __init__(self, backend):
        self.backend = backend


class GroupMember:
    WORLD = None


def init_process_group(backend="gloo", init_method=None, **kwargs):
    global _default_backend
    CALLS.append(("init_process_group", backend))
    mode = os.environ.get("FAKE_TORCH_INIT", "ok")
    if mode == "raise":
        raise RuntimeError("fake init failed: connection refused\nsecond line of the message")
    if mode == "hang":
        print("fake-torch: hanging in init_process_group", flush=True)
        while True:
            time.sleep(3600)
    _default_backend = backend
    GroupMember.WORLD = _Group(backend)
    # As torch does, the default group is made through an internal call
    # that must not report a phase of its own.
    new_group()


def new_group(ranks=None, backend=None, **kwargs):
    CALLS.append(("new_group", backend))
    return _Group(backend or _default_backend)


def barrier(group=None, async_op=False, device_ids=None):
    CALLS.append(("barrier", getattr(group, "backend", None)))


def get_backend(group=None):
    if group is None:
        if GroupMember.WORLD is None:
            raise ValueError("Default process group has not been initialized")
        group = GroupMember.WORLD
    return group.backend
