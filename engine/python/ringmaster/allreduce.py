# SPDX-License-Identifier: MIT
"""A ctypes binding to ringmaster's custom all-reduce (librmworker-cuda's
rm_allreduce.h) for PyTorch tensors.

    import torch
    from ringmaster.allreduce import AllReduce

    torch.cuda.set_device(local_rank)
    ar = AllReduce("tp", max_bytes=8 << 20)     # collective: every rank
    ar(x)                                       # in place on x, returns x
    y = ar(x, out=torch.empty_like(x))          # out of place
    with torch.cuda.graph(g):                   # capturable
        ar(x)
    ar.close()                                  # collective too

Each call is one kernel on torch.cuda.current_stream() (or stream=): the
sum over ranks, bit-identical on every rank (fp32 accumulation in rank
order).  dtypes: torch.bfloat16, torch.float16, torch.float32; the tensor
must be contiguous and on the communicator's GPU.  Sizes above max_bytes,
pointers not 16-byte aligned and worlds other than 2, 4, 6, 8 go to NCCL
(created at init), or raise OSError(EOPNOTSUPP) without it.  The rank and
world come from the run (RANK, WORLD_SIZE under `ringmaster run`).
AllReduce.describe() says which paths are available and why.

Finding the library, first match wins: $RINGMASTER_LIBRMWORKER_CUDA (the
file); the build tree (engine/.libs/ beside engine/python/); the libdir
this package was installed with; the dynamic linker's search.
"""

import ctypes
import errno as _errno
import os

__all__ = ["AllReduce", "LibraryNotFoundError", "load_library", "NCCL_AUTO", "NCCL_OFF", "NCCL_REQUIRED",
           "AUTO", "ONE_SHOT", "TWO_SHOT", "NCCL", "COPY"]

SONAME = "librmworker-cuda.so.0"

# enum rm_allreduce_nccl, enum rm_allreduce_algo
NCCL_AUTO, NCCL_OFF, NCCL_REQUIRED = 0, 1, 2
AUTO, ONE_SHOT, TWO_SHOT, NCCL, COPY = 0, 1, 2, 3, 4
_ALGO_NAMES = {AUTO: "auto", ONE_SHOT: "one-shot", TWO_SHOT: "two-shot", NCCL: "nccl", COPY: "copy"}
# enum rm_dtype, by torch dtype name
_DTYPES = {"torch.float32": 12, "torch.float16": 10, "torch.bfloat16": 11}


class LibraryNotFoundError(OSError):
    pass


class _Opts(ctypes.Structure):
    _fields_ = [("max_bytes", ctypes.c_size_t), ("device", ctypes.c_int), ("nranks", ctypes.c_int),
                ("rank", ctypes.c_int), ("nccl", ctypes.c_int), ("nccl_comm", ctypes.c_void_p),
                ("blocks", ctypes.c_int), ("init_timeout_ns", ctypes.c_int64),
                ("call_timeout_ns", ctypes.c_int64)]


_lib = None


def _candidates():
    env = os.environ.get("RINGMASTER_LIBRMWORKER_CUDA")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.normpath(os.path.join(here, os.pardir, os.pardir, os.pardir))
    for build in (top, os.path.join(top, "build")):
        built = os.path.join(build, "engine", ".libs", SONAME)
        if os.path.exists(built):
            yield built
    try:
        from ._build_config import LIBDIR
    except ImportError:
        LIBDIR = None
    if LIBDIR:
        yield os.path.join(LIBDIR, SONAME)
    yield SONAME


def load_library():
    """librmworker-cuda, loaded once, with the calls declared."""
    global _lib
    if _lib is not None:
        return _lib
    tried = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    else:
        raise LibraryNotFoundError(_errno.ENOENT, "librmworker-cuda not found (ringmaster built without CUDA?); "
                                   "tried: " + "; ".join(tried) + "; set RINGMASTER_LIBRMWORKER_CUDA")
    vp, i32, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    sig = {
        "rm_worker_open": (i32, [ctypes.POINTER(vp)]),
        "rm_worker_close": (vp, [vp]),
        "rm_last_error": (ctypes.c_char_p, []),
        "rm_allreduce_init": (i32, [vp, ctypes.c_char_p, ctypes.POINTER(_Opts), ctypes.POINTER(vp)]),
        "rm_allreduce_free": (vp, [vp]),
        "rm_allreduce": (i32, [vp, vp, vp, sz, i32, vp]),
        "rm_allreduce_algo": (i32, [vp, vp, vp, sz, i32]),
        "rm_allreduce_force": (i32, [vp, i32]),
        "rm_allreduce_describe": (i32, [vp, ctypes.c_char_p, sz]),
        "rm_allreduce_one_shot_max": (sz, [vp]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    _lib = lib
    return lib


def _fail(r, what):
    msg = (_lib.rm_last_error() or b"").decode(errors="replace")
    return OSError(-r, "%s: %s" % (what, msg or os.strerror(-r)))


class AllReduce:
    """A sum all-reduce communicator over the run's ranks (see the module's doc)."""

    def __init__(self, name="tp", max_bytes=8 << 20, device=None, nccl=NCCL_AUTO, blocks=0,
                 init_timeout=120.0, call_timeout=60.0):
        lib = load_library()
        self._ar = None
        self._w = ctypes.c_void_p()
        if device is None:
            import torch
            device = torch.cuda.current_device()
        self.device = int(device)
        r = lib.rm_worker_open(ctypes.byref(self._w))
        if r < 0:
            raise _fail(r, "rm_worker_open (not started by `ringmaster run`?)")
        o = _Opts(max_bytes=int(max_bytes), device=self.device, nranks=-1, rank=-1, nccl=int(nccl),
                  nccl_comm=None, blocks=int(blocks), init_timeout_ns=int(init_timeout * 1e9),
                  call_timeout_ns=int(call_timeout * 1e9) if call_timeout is not None else -1)
        ar = ctypes.c_void_p()
        r = lib.rm_allreduce_init(self._w, name.encode(), ctypes.byref(o), ctypes.byref(ar))
        if r < 0:
            err = _fail(r, "rm_allreduce_init('%s')" % name)
            lib.rm_worker_close(self._w)
            self._w = None
            raise err
        self._ar = ar
        self.name = name

    def _check(self):
        if self._ar is None:
            raise ValueError("all-reduce '%s' is closed" % getattr(self, "name", "?"))

    @staticmethod
    def _args(x, out):
        dt = _DTYPES.get(str(x.dtype))
        if dt is None:
            raise TypeError("all-reduce of %s: only float32, float16 and bfloat16" % x.dtype)
        if not x.is_cuda or not x.is_contiguous():
            raise ValueError("all-reduce needs a contiguous CUDA tensor")
        if out is not x and (out.dtype != x.dtype or out.numel() != x.numel() or not out.is_contiguous()
                             or not out.is_cuda):
            raise ValueError("out must be a contiguous CUDA tensor of the input's dtype and size")
        return dt

    def __call__(self, x, out=None, stream=None):
        """out = sum over ranks of x (out=None: in place on x); returns out."""
        self._check()
        if out is None:
            out = x
        dt = self._args(x, out)
        if x.numel() == 0:
            return out
        if x.device.index != self.device:
            raise ValueError("tensor on cuda:%s, the communicator on cuda:%d" % (x.device.index, self.device))
        if stream is None:
            import torch
            stream = torch.cuda.current_stream(x.device)
        handle = stream.cuda_stream if hasattr(stream, "cuda_stream") else int(stream)
        r = _lib.rm_allreduce(self._ar, x.data_ptr(), out.data_ptr(), x.numel(), dt, handle)
        if r < 0:
            raise _fail(r, "all-reduce '%s' of %d elements" % (self.name, x.numel()))
        return out

    all_reduce = __call__

    def algo(self, x, out=None):
        """The path a call on x would take: "one-shot", "two-shot", "nccl" or "copy"."""
        self._check()
        out = x if out is None else out
        r = _lib.rm_allreduce_algo(self._ar, x.data_ptr(), out.data_ptr(), x.numel(), self._args(x, out))
        if r < 0:
            raise _fail(r, "all-reduce '%s'" % self.name)
        return _ALGO_NAMES[r]

    def force(self, algo):
        """Forces AUTO, ONE_SHOT, TWO_SHOT or NCCL for later calls (every rank must do the same)."""
        self._check()
        r = _lib.rm_allreduce_force(self._ar, int(algo))
        if r < 0:
            raise _fail(r, "all-reduce '%s'" % self.name)

    @property
    def one_shot_max(self):
        self._check()
        return _lib.rm_allreduce_one_shot_max(self._ar)

    def describe(self):
        self._check()
        buf = ctypes.create_string_buffer(512)
        _lib.rm_allreduce_describe(self._ar, buf, len(buf))
        return buf.value.decode(errors="replace")

    def close(self):
        """Collective: every rank's close waits for the others.  Idempotent."""
        if self._ar is not None:
            _lib.rm_allreduce_free(self._ar)
            self._ar = None
        if self._w:
            _lib.rm_worker_close(self._w)
            self._w = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
