# SPDX-License-Identifier: MIT
"""ringmaster's Python side.

ringmaster.worker   tell the supervisor the worker's phase, progress,
                    readiness and liveness (the sd_notify protocol)
ringmaster.shmring  a ctypes binding to libshmring: the run's shared-memory
                    broadcast rings, queues and key-value tables
ringmaster.allreduce  the custom GPU all-reduce (librmworker-cuda) on torch
                    tensors

Standard library only.  `import ringmaster` loads the worker module;
ringmaster.shmring and ringmaster.allreduce (and their libraries) load on
first use.
"""

from . import worker

__all__ = ["worker", "shmring", "allreduce"]
__version__ = "0.1.0"


def __getattr__(name):
    if name in ("shmring", "allreduce"):
        import importlib
        return importlib.import_module(__name__ + ".shmring")
    raise AttributeError("module 'ringmaster' has no attribute %r" % name)
