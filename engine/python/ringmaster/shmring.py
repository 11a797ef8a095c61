# SPDX-License-Identifier: MIT
"""A ctypes binding to libshmring, ringmaster's shared-memory transport.

    from ringmaster import shmring

    seg = shmring.Segment.attach()              # the run's segment, $RINGMASTER_SHM
    with seg.receiver("sched") as rx:           # a broadcast reader
        for request in rx:                      # bytes, until the writer closes
            ...
    with seg.sender("results", index=rank) as tx:
        tx.send(b"...")
    seg.kv_put("kv", "nccl-id", uid)            # key-value table
    uid = seg.kv_get("kv", "nccl-id", timeout=60)

Timeouts are in seconds: None waits for ever, 0 never waits
(BlockingIOError when nothing can be done), a positive number waits that
long (TimeoutError).  Errors are OSError subclasses named for their errno
(BrokenPipeError: every writer closed and every message was read;
RingPeerDied: the peer the call waited on died), with the channel or table
in the message.  Operations on a closed segment or port raise ValueError.

Blocking calls release the GIL and wait in slices of at most WAIT_SLICE
seconds, so that a signal handler (Ctrl-C's KeyboardInterrupt) runs
promptly and a port closed by another thread ends the wait.  A send that
finds a free slot (the rule) keeps the GIL: its C call cannot wait.  A
port's calls take that port's lock only; ports may be used from several
threads, one call at a time per port.  For the least per-message cost,
Receiver.recv_view() returns the message in a buffer the receiver keeps
(pickle.loads() takes it as is).

Receiver.recv() and recv_view() call libshmring through a small C
extension, ringmaster._shmring_fast, where the build found Python.h (a
ctypes call costs about 250 ns more, paid by every reader at every
message); fast_path() names the file, None when everything goes through
ctypes.  It is looked for beside this file, then in the build tree
libshmring was loaded from; $RINGMASTER_SHMRING_CTYPES=1 refuses it.

Handles do not survive fork(): a child process attaches by name itself.
Using a parent's Segment in a forked child raises RuntimeError, and its
garbage collection there leaves the parent's registration alone.

Finding the library, first match wins:
  1. $RINGMASTER_LIBSHMRING (the file, or a folder holding libshmring.so.1);
     when set, nothing else is tried;
  2. the build tree, when this package is used from a source checkout:
     shmring/.libs/libshmring.so.1 beside engine/python/;
  3. the libdir this package was installed with (make install);
  4. libshmring.so.1 through the dynamic linker's search
     (LD_LIBRARY_PATH, ld.so.cache, the default folders);
  5. ctypes.util.find_library("shmring").
"""

import collections
import ctypes
import ctypes.util
import errno as _errno
import os
import re
import threading
import time
import weakref

__all__ = [
    "Segment", "Sender", "Receiver", "Message", "Channel", "Table",
    "RingPeerDied", "LibraryNotFoundError", "BROADCAST", "QUEUE",
    "SPIN_NEVER", "SPIN_FOREVER", "WAIT_SLICE", "WAIT_AUTO", "WAIT_SPIN",
    "WAIT_YIELD", "WAIT_BLOCK", "load_library",
    "library_path", "fast_path", "spec_size", "unlink", "cleanup_stale",
]

SONAME = "libshmring.so.1"
BROADCAST = "broadcast"
QUEUE = "queue"
SPIN_NEVER = -1
SPIN_FOREVER = (1 << 63) - 1
# Wait policies (shmring(3), enum shmring_wait_policy): how a port waits
# before it sleeps on the futex.  AUTO spins while the job has a core per
# process and the machine a core free, yields otherwise.
WAIT_AUTO = "auto"
WAIT_SPIN = "spin"
WAIT_YIELD = "yield"
WAIT_BLOCK = "block"
_WAIT_CODE = {None: 0, WAIT_AUTO: 0, WAIT_SPIN: 1, WAIT_YIELD: 2, WAIT_BLOCK: 3}
# The longest single wait in C: see the module's documentation.
WAIT_SLICE = 0.2

_KIND_CODE = {BROADCAST: 1, QUEUE: 2}
_KIND_NAME = {1: BROADCAST, 2: QUEUE}
_NAME = re.compile(r"[A-Za-z0-9._-]{1,31}\Z")
_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_KEY = re.compile(r"[\x21-\x7e]{1,63}\Z")
_MAX_VALUE = 65536
_INFINITE = -1
_MAX_NS = (1 << 63) - 1


class RingPeerDied(OSError):
    """A peer the call waited on died (EOWNERDEAD): the writer a reader
    waited for, a reader a writer waited for, the queue's reader, or the
    owner of a key."""


class LibraryNotFoundError(OSError):
    """libshmring could not be loaded; the message lists every place tried."""


# ------------------------------------------------------------ C structures

class _ChannelSpec(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int), ("slots", ctypes.c_uint32),
                ("slot_size", ctypes.c_uint32), ("overflow_size", ctypes.c_uint64),
                ("max_ports", ctypes.c_uint32)]


class _TableSpec(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("entries", ctypes.c_uint32), ("value_size", ctypes.c_uint32)]


class _Spec(ctypes.Structure):
    _fields_ = [("run_id", ctypes.c_char_p), ("generation", ctypes.c_uint64), ("max_peers", ctypes.c_uint32),
                ("n_channels", ctypes.c_uint32), ("channels", ctypes.POINTER(_ChannelSpec)),
                ("n_tables", ctypes.c_uint32), ("tables", ctypes.POINTER(_TableSpec))]


class _Info(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint64), ("generation", ctypes.c_uint64), ("creator_pid", ctypes.c_int32),
                ("creator_uid", ctypes.c_uint32), ("max_peers", ctypes.c_uint32), ("n_channels", ctypes.c_uint32),
                ("run_id", ctypes.c_char * 65)]


class _ChannelInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 32), ("kind", ctypes.c_int), ("slots", ctypes.c_uint32),
                ("slot_size", ctypes.c_uint32), ("overflow_size", ctypes.c_uint64),
                ("max_ports", ctypes.c_uint32), ("max_message", ctypes.c_uint64)]


class _PortOpts(ctypes.Structure):
    _fields_ = [("index", ctypes.c_int32), ("flags", ctypes.c_uint32), ("spin_ns", ctypes.c_int64),
                ("liveness_ms", ctypes.c_uint32), ("wait", ctypes.c_uint32), ("yield_us", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32 * 3)]


class _Msg(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_size_t), ("seq", ctypes.c_uint64),
                ("sender", ctypes.c_uint32)]


class _KvInfo(ctypes.Structure):
    _fields_ = [("generation", ctypes.c_uint64), ("owner_pid", ctypes.c_int32), ("len", ctypes.c_size_t)]


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_PORT_DROP_DEAD = 1
_ATTACH_OBSERVER = 1

# ------------------------------------------------------------ the library

_lib = None
_lib_path = None
_lib_lock = threading.Lock()


def _candidates():
    """(where, path) pairs to try, in order; a generator, so the slow
    find_library() runs only when everything before it failed."""
    env = os.environ.get("RINGMASTER_LIBSHMRING")
    if env:
        yield "$RINGMASTER_LIBSHMRING", os.path.join(env, SONAME) if os.path.isdir(env) else env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.normpath(os.path.join(here, os.pardir, os.pardir, os.pardir))
    built = os.path.join(top, "shmring", ".libs", SONAME)
    if os.path.isfile(os.path.join(top, "shmring", "shmring.h")) and os.path.exists(built):
        yield "the build tree", built
    try:
        from ._build_config import LIBDIR
    except ImportError:
        LIBDIR = None
    if LIBDIR:
        yield "the installed libdir", os.path.join(LIBDIR, SONAME)
    yield "the dynamic linker's search", SONAME
    found = ctypes.util.find_library("shmring")
    if found:
        yield "ctypes.util.find_library", found


def _declare(lib):
    vp, i32, u32, i64, u64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint64
    pvp = ctypes.POINTER(ctypes.c_void_p)
    sig = {
        "shmring_spec_size": (i32, [ctypes.POINTER(_Spec), ctypes.POINTER(u64)]),
        "shmring_create": (i32, [ctypes.POINTER(_Spec), pvp]),
        "shmring_attach": (i32, [ctypes.c_char_p, ctypes.c_uint, pvp]),
        "shmring_close": (vp, [vp]),
        "shmring_unlink": (i32, [vp]),
        "shmring_unlink_name": (i32, [ctypes.c_char_p]),
        "shmring_cleanup_stale": (i32, [ctypes.c_char_p]),
        "shmring_mark_dead": (i32, [vp, ctypes.c_int]),
        "shmring_name": (ctypes.c_char_p, [vp]),
        "shmring_get_info": (i32, [vp, ctypes.POINTER(_Info)]),
        "shmring_channel_info": (i32, [vp, u32, ctypes.POINTER(_ChannelInfo)]),
        "shmring_tx_open": (i32, [vp, ctypes.c_char_p, ctypes.POINTER(_PortOpts), pvp]),
        "shmring_rx_open": (i32, [vp, ctypes.c_char_p, ctypes.POINTER(_PortOpts), pvp]),
        "shmring_tx_close": (vp, [vp]),
        "shmring_rx_close": (vp, [vp]),
        "shmring_tx_index": (i32, [vp]),
        "shmring_rx_index": (i32, [vp]),
        "shmring_send": (i32, [vp, vp, ctypes.c_size_t, i64]),
        "shmring_sendv": (i32, [vp, ctypes.POINTER(_Iovec), i32, i64]),
        "shmring_send_reserve": (i32, [vp, ctypes.c_size_t, pvp, i64]),
        "shmring_send_commit": (i32, [vp]),
        "shmring_recv": (ctypes.c_ssize_t, [vp, vp, ctypes.c_size_t, i64]),
        "shmring_recv_zc": (i32, [vp, ctypes.POINTER(_Msg), i64]),
        "shmring_recv_done": (i32, [vp]),
        "shmring_tx_drop_dead": (i32, [vp]),
        "shmring_tx_wait_readers": (i32, [vp, u32, i64]),
        "shmring_kv_put": (i64, [vp, ctypes.c_char_p, ctypes.c_char_p, vp, ctypes.c_size_t]),
        "shmring_kv_get": (ctypes.c_ssize_t, [vp, ctypes.c_char_p, ctypes.c_char_p, u64, vp, ctypes.c_size_t,
                                              ctypes.POINTER(_KvInfo), i64]),
        "shmring_kv_del": (i32, [vp, ctypes.c_char_p, ctypes.c_char_p]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def load_library():
    """Loads libshmring (see the module's documentation for where it is
    looked for) and returns the ctypes.CDLL.  Raises LibraryNotFoundError."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        tried = []
        for where, path in _candidates():
            try:
                lib = ctypes.CDLL(path)
                _declare(lib)
            except (OSError, AttributeError) as e:
                tried.append("%s (%s): %s" % (path, where, e))
                continue
            _lib_path = path
            _lib = lib
            return lib
        raise LibraryNotFoundError(
            _errno.ENOENT, "cannot load libshmring; set RINGMASTER_LIBSHMRING to its path. Tried:\n  " +
            "\n  ".join(tried))


_rawlib = None


def _load_rawlib():
    """libshmring a third time, with no argtypes declared: a call whose
    arguments are ctypes objects already (kept by the caller) skips the
    conversion of each argument, about 250 ns of a receive's 600 (the
    latency path of recv(); see Receiver._recv()).  Only restype is set,
    and only for the functions called this way."""
    global _rawlib
    if _rawlib is None:
        lib = ctypes.CDLL(library_path())
        lib.shmring_recv.restype = ctypes.c_ssize_t
        _rawlib = lib
    return _rawlib


_fast = None
_fast_path = None
_FAST_NAME = "_shmring_fast"


def _fast_candidates():
    """Where ringmaster._shmring_fast may be: beside this file (installed),
    or in the build tree that libshmring was loaded from
    (X/shmring/.libs/libshmring.so.1 -> X/engine/python/ringmaster/.libs)."""
    import importlib.machinery
    here = os.path.dirname(os.path.abspath(__file__))
    folders = [here]
    libdir = os.path.dirname(os.path.abspath(library_path()))
    if os.path.basename(libdir) == ".libs" and os.path.basename(os.path.dirname(libdir)) == "shmring":
        top = os.path.dirname(os.path.dirname(libdir))
        folders.append(os.path.join(top, "engine", "python", "ringmaster", ".libs"))
    for folder in folders:
        # Only this interpreter's own suffix (.cpython-311-...so): the module is
        # built for one Python's ABI, and a bare .so could be another's.
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if suffix.startswith(".cpython-"):
                yield os.path.join(folder, _FAST_NAME + suffix)


def _load_fast():
    """ringmaster._shmring_fast (_shmring_fast.c), the receive without
    ctypes, or None where it was not built (configure found no Python.h),
    does not load, or $RINGMASTER_SHMRING_CTYPES is set (to compare)."""
    global _fast, _fast_path
    if _fast is None:
        _fast = False
        if not os.environ.get("RINGMASTER_SHMRING_CTYPES"):
            import importlib.util
            for path in _fast_candidates():
                if not os.path.isfile(path):
                    continue
                try:
                    spec = importlib.util.spec_from_file_location(__package__ + "." + _FAST_NAME, path)
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    recv = module.recv
                except (ImportError, OSError, AttributeError):
                    continue
                _fast, _fast_path = recv, path
                break
    return _fast or None


def fast_path():
    """The file of the C extension the binding receives through, or None
    when it calls libshmring through ctypes alone."""
    load_library()
    _load_fast()
    return _fast_path


_pylib = None


def _load_pylib():
    """libshmring again through ctypes.PyDLL: its calls keep the GIL, which
    saves a release and retake on calls that never wait (timeout 0)."""
    global _pylib
    if _pylib is None:
        lib = ctypes.PyDLL(library_path())
        _declare(lib)
        _pylib = lib
    return _pylib


def library_path():
    """The path libshmring was loaded from (loading it if needed)."""
    load_library()
    return _lib_path


# ------------------------------------------------------------ helpers

# Bumped in a forked child: handles made before are the parent's.
_fork_generation = 0


def _after_fork():
    global _fork_generation
    _fork_generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# What the errnos that matter mean here, in words better than strerror's.
_MEANING = {
    _errno.ETIMEDOUT: "timed out",
    _errno.EAGAIN: "nothing ready and timeout 0",
    _errno.EPIPE: "every writer closed and every message was read",
    _errno.EOWNERDEAD: "the peer it waited on died",
    _errno.ESTALE: "this reader was dropped as dead and its message overwritten",
    _errno.EBUSY: "held by a live process, or a reservation or held message is outstanding",
    _errno.EUSERS: "the segment's max_peers processes are attached already",
    _errno.ENOSPC: "no space: /dev/shm too small for the segment, or the table is full",
}


def _error(r, what):
    e = -r
    message = "%s: %s" % (what, _MEANING.get(e) or os.strerror(e))
    if e == _errno.EOWNERDEAD:
        return RingPeerDied(e, message)
    return OSError(e, message)


def _timeout_ns(timeout):
    if timeout is None:
        return _INFINITE
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds or None, not %s" % type(timeout).__name__)
    if not timeout >= 0:
        raise ValueError("timeout must be >= 0 or None: %r" % timeout)
    if timeout == 0:
        return 0
    ns = timeout * 1000000000
    if ns >= _MAX_NS:
        return _INFINITE
    return max(int(ns), 1)


_SLICE_NS = int(WAIT_SLICE * 1000000000)
_SLICE_NS_C = ctypes.c_int64(_SLICE_NS)
_EINTR = -_errno.EINTR
_ETIMEDOUT = -_errno.ETIMEDOUT
_EAGAIN = -_errno.EAGAIN
_string_at = ctypes.string_at


def _wait(call, timeout_ns, check):
    """Runs call(slice_ns) until it returns something other than -EINTR or
    a slice's -ETIMEDOUT, within timeout_ns overall.  Between slices the
    interpreter runs pending signal handlers (which may raise) and
    check() raises when the port or segment is being closed."""
    if timeout_ns == 0:
        return call(0)
    # The first slice at once, with no clock read: the message is usually
    # there or microseconds away, and this is the latency path.
    if timeout_ns < 0 or timeout_ns <= _SLICE_NS:
        r = call(_SLICE_NS if timeout_ns < 0 else timeout_ns)
        if r != _EINTR and (r != _ETIMEDOUT or timeout_ns > 0):
            return r
    deadline = None if timeout_ns < 0 else time.monotonic_ns() + timeout_ns
    while True:
        check()
        if deadline is None:
            piece = _SLICE_NS
        else:
            left = deadline - time.monotonic_ns()
            if left <= 0:
                return -_errno.ETIMEDOUT
            piece = left if left < _SLICE_NS else _SLICE_NS
        r = call(piece)
        if r != _EINTR and r != _ETIMEDOUT:
            return r


def _encode_name(what, name, pattern=_NAME, limit=31):
    if not isinstance(name, str):
        raise TypeError("%s must be a str, not %s" % (what, type(name).__name__))
    if not pattern.match(name):
        raise ValueError("%s must be 1..%d of [A-Za-z0-9._-]: %r" % (what, limit, name))
    return name.encode("ascii")


def _encode_key(key):
    if not isinstance(key, str):
        raise TypeError("key must be a str, not %s" % type(key).__name__)
    if not _KEY.match(key):
        raise ValueError("key must be 1..63 printable ASCII characters without spaces: %r" % key)
    return key.encode("ascii")


# Passed for empty buffers instead of NULL: libshmring before main's
# 077c26b accepted NULL with a zero length but handed it to memcpy().
_EMPTY = ctypes.create_string_buffer(1)
# recv()'s buffer per receiver: its first size, and the most it grows to.
_RECV_BUFFER = 4096
_RECV_BUFFER_MAX = 1 << 20


def _read_buffer(data):
    """(pointer argument, length, keep-alive) for any C-contiguous buffer."""
    if isinstance(data, bytes):
        return data, len(data), data
    view = memoryview(data)
    if not view.c_contiguous:
        raise ValueError("the buffer is not C-contiguous")
    if view.nbytes == 0:
        return _EMPTY, 0, _EMPTY
    if view.readonly:
        copy = view.tobytes()
        return copy, len(copy), copy
    view = view.cast("B")
    array = (ctypes.c_char * view.nbytes).from_buffer(view)
    return array, view.nbytes, array


try:
    _memory_view = ctypes.pythonapi.PyMemoryView_FromMemory
    _memory_view.restype = ctypes.py_object
    _memory_view.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
except AttributeError:          # not CPython
    _memory_view = None
_PYBUF_READ, _PYBUF_WRITE = 0x100, 0x200


def _view(address, length, writable):
    if length == 0 or not address:
        return memoryview(bytearray() if writable else b"")
    if _memory_view is not None:
        return _memory_view(address, length, _PYBUF_WRITE if writable else _PYBUF_READ)
    view = memoryview((ctypes.c_ubyte * length).from_address(address)).cast("B")
    return view if writable else view.toreadonly()


# ------------------------------------------------------------ specs

class Channel:
    """A channel of a segment to create: kind BROADCAST (one writer,
    max_ports readers) or QUEUE (max_ports writers, one reader); slots a
    power of two; slot_size the bytes a message may have inline;
    overflow_size the bytes (per writer) for larger messages, 0: none."""

    __slots__ = ("name", "kind", "slots", "slot_size", "overflow_size", "max_ports")

    def __init__(self, name, kind, slots=64, slot_size=1024, overflow_size=0, max_ports=8):
        if kind not in _KIND_CODE:
            raise ValueError("kind must be %r or %r: %r" % (BROADCAST, QUEUE, kind))
        _encode_name("channel name", name)
        self.name, self.kind, self.slots, self.slot_size = name, kind, slots, slot_size
        self.overflow_size, self.max_ports = overflow_size, max_ports

    def __repr__(self):
        return "Channel(%r, %r, slots=%d, slot_size=%d, overflow_size=%d, max_ports=%d)" % (
            self.name, self.kind, self.slots, self.slot_size, self.overflow_size, self.max_ports)


class Table:
    """A key-value table of a segment to create: up to `entries` keys of
    values up to value_size bytes (1..65536)."""

    __slots__ = ("name", "entries", "value_size")

    def __init__(self, name, entries=64, value_size=1024):
        _encode_name("table name", name)
        self.name, self.entries, self.value_size = name, entries, value_size

    def __repr__(self):
        return "Table(%r, entries=%d, value_size=%d)" % (self.name, self.entries, self.value_size)


SegmentInfo = collections.namedtuple(
    "SegmentInfo", "name size generation creator_pid creator_uid max_peers n_channels run_id")
ChannelInfo = collections.namedtuple(
    "ChannelInfo", "name kind slots slot_size overflow_size max_ports max_message")
KvEntry = collections.namedtuple("KvEntry", "value generation owner_pid")


def _as_spec(run_id, channels, tables, generation, max_peers):
    run = _encode_name("run id", run_id, _RUN_ID, 64)
    channels = [c if isinstance(c, Channel) else Channel(**c) for c in channels]
    tables = [t if isinstance(t, Table) else Table(**t) for t in tables]
    c_array = (_ChannelSpec * max(len(channels), 1))()
    for i, c in enumerate(channels):
        c_array[i] = _ChannelSpec(c.name.encode("ascii"), _KIND_CODE[c.kind], c.slots, c.slot_size,
                                  c.overflow_size, c.max_ports)
    t_array = (_TableSpec * max(len(tables), 1))()
    for i, t in enumerate(tables):
        t_array[i] = _TableSpec(t.name.encode("ascii"), t.entries, t.value_size)
    spec = _Spec(run, generation, max_peers, len(channels), c_array, len(tables), t_array)
    spec._keep = (c_array, t_array)
    return spec


def spec_size(run_id, channels=(), tables=(), generation=0, max_peers=0):
    """Bytes of /dev/shm that Segment.create() with these arguments reserves."""
    lib = load_library()
    spec = _as_spec(run_id, channels, tables, generation, max_peers)
    size = ctypes.c_uint64()
    r = lib.shmring_spec_size(ctypes.byref(spec), ctypes.byref(size))
    if r < 0:
        raise _error(r, "segment spec for run %r" % run_id)
    return size.value


def unlink(name):
    """Removes a segment's name (processes attached keep their mapping)."""
    r = load_library().shmring_unlink_name(_segment_name(name))
    if r < 0:
        raise _error(r, "unlink segment %r" % name)


def cleanup_stale(run_id=None):
    """Removes this user's segments whose creator died (of run_id, or all);
    returns how many."""
    arg = None if run_id is None else _encode_name("run id", run_id, _RUN_ID, 64)
    r = load_library().shmring_cleanup_stale(arg)
    if r < 0:
        raise _error(r, "cleanup of stale segments")
    return r


def _segment_name(name):
    if not isinstance(name, str) or not name:
        raise ValueError("a segment name must be a non-empty str: %r" % (name,))
    if not name.startswith("/"):
        name = "/" + name
    return os.fsencode(name)


# ------------------------------------------------------------ segments

class _Closing:
    """close() on leaving a with block and when garbage-collected."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Segment(_Closing):
    """An attached segment.  Use Segment.attach() or Segment.create()."""

    def __init__(self, handle, created):
        self._h = handle
        self._fork_generation = _fork_generation
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._users = 0
        self._closing = False
        self._ports = weakref.WeakSet()
        self.created = created
        self.name = os.fsdecode(load_library().shmring_name(handle))

    # --- making one

    @classmethod
    def attach(cls, name=None, observer=False):
        """Attaches to the segment `name`, by default the run's
        ($RINGMASTER_SHM).  An observer maps and validates only."""
        if name is None:
            name = os.environ.get("RINGMASTER_SHM")
            if not name:
                raise RuntimeError("RINGMASTER_SHM is not set: not running under `ringmaster run` "
                                   "(pass the segment's name to Segment.attach())")
        lib = load_library()
        handle = ctypes.c_void_p()
        r = lib.shmring_attach(_segment_name(name), _ATTACH_OBSERVER if observer else 0, ctypes.byref(handle))
        if r < 0:
            raise _error(r, "attach segment %r" % name)
        return cls(handle.value, False)

    @classmethod
    def create(cls, run_id, channels=(), tables=(), generation=0, max_peers=0):
        """Creates a segment (for tests and Python schedulers): channels is
        a list of Channel (or dicts of its arguments), tables of Table.
        The caller unlinks it when done (unlink())."""
        lib = load_library()
        spec = _as_spec(run_id, channels, tables, generation, max_peers)
        handle = ctypes.c_void_p()
        r = lib.shmring_create(ctypes.byref(spec), ctypes.byref(handle))
        if r < 0:
            raise _error(r, "create segment for run %r" % run_id)
        return cls(handle.value, True)

    # --- life cycle

    def _foreign(self):
        return self._fork_generation != _fork_generation

    def _enter(self):
        """Counts a call in progress; raises when closed or forked."""
        # Before the lock: another thread of the parent may have held it at fork time.
        if self._foreign():
            raise RuntimeError("segment %s was attached by the parent process: a forked child "
                               "must attach again (Segment.attach(name))" % self.name)
        with self._lock:
            if self._h is None or self._closing:
                raise ValueError("segment %s is closed" % self.name)
            self._users += 1
        return self._h

    def _leave(self):
        with self._lock:
            self._users -= 1
            # Only close() waits for the count to drop (with _closing set, under
            # the lock): a busy port pays no notify.
            if self._users == 0 and self._closing:
                self._idle.notify_all()

    def _check_open(self):
        if self._closing:
            raise ValueError("segment %s was closed while waiting" % self.name)

    @property
    def closed(self):
        return self._h is None

    def close(self):
        """Closes every port opened here, deregisters and unmaps; never
        unlinks.  Waits (up to WAIT_SLICE) for calls other threads have in
        progress to notice.  Zero-copy views still held are released."""
        if self._h is None:
            return
        if self._foreign():
            self._h = None              # the parent's: leave it to the parent
            return
        with self._lock:
            if self._h is None or self._closing:
                return
            self._closing = True
            while self._users:
                self._idle.wait()
        # Each port's calls hold its lock, not the segment's count: flag every
        # port closing (a wait in progress ends within a slice), then take each
        # lock in turn, so that no call runs on the segment once it is unmapped.
        ports = list(self._ports)
        for port in ports:
            port._closing = True
        for port in ports:
            with port._lock:
                port._forget()
        load_library().shmring_close(self._h)
        self._h = None

    def unlink(self):
        """Removes the segment's name; attached processes keep it."""
        h = self._enter()
        try:
            r = load_library().shmring_unlink(h)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "unlink segment %s" % self.name)

    def __repr__(self):
        return "<ringmaster.shmring.Segment %s%s>" % (self.name, " closed" if self._h is None else "")

    # --- information

    def info(self):
        h = self._enter()
        try:
            info = _Info()
            r = load_library().shmring_get_info(h, ctypes.byref(info))
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "info of segment %s" % self.name)
        return SegmentInfo(self.name, info.size, info.generation, info.creator_pid, info.creator_uid,
                           info.max_peers, info.n_channels, info.run_id.decode("ascii"))

    def channels(self):
        """ChannelInfo of every channel, in the order they were created."""
        h = self._enter()
        try:
            result, lib, index = [], load_library(), 0
            while True:
                ci = _ChannelInfo()
                r = lib.shmring_channel_info(h, index, ctypes.byref(ci))
                if r == -_errno.ENOENT:
                    return result
                if r < 0:
                    raise _error(r, "channel %d of segment %s" % (index, self.name))
                result.append(ChannelInfo(ci.name.decode("ascii"), _KIND_NAME.get(ci.kind, ci.kind), ci.slots,
                                          ci.slot_size, ci.overflow_size, ci.max_ports, ci.max_message))
                index += 1
        finally:
            self._leave()

    def channel(self, name):
        for c in self.channels():
            if c.name == name:
                return c
        raise KeyError("segment %s has no channel %r" % (self.name, name))

    def mark_dead(self, pid):
        """Declares every peer with this pid dead and wakes every waiter;
        returns how many peers were marked."""
        h = self._enter()
        try:
            r = load_library().shmring_mark_dead(h, pid)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "mark pid %d dead in segment %s" % (pid, self.name))
        return r

    # --- ports

    def _opts(self, index, spin_ns, liveness_ms, flags, wait, yield_us):
        if wait not in _WAIT_CODE:
            raise ValueError("wait must be one of %s or None, not %r"
                             % (", ".join(repr(w) for w in (WAIT_AUTO, WAIT_SPIN, WAIT_YIELD, WAIT_BLOCK)), wait))
        if yield_us is not None and (isinstance(yield_us, bool) or not isinstance(yield_us, int)
                                     or not 0 <= yield_us < (1 << 32)):
            raise ValueError("yield_us must be an int in [0, 2**32) or None, not %r" % (yield_us,))
        opts = _PortOpts()
        opts.index = -1 if index is None else index
        opts.flags = flags
        opts.spin_ns = spin_ns or 0
        opts.liveness_ms = liveness_ms or 0
        opts.wait = _WAIT_CODE[wait]
        opts.yield_us = yield_us or 0
        return opts

    def _open(self, cls, fn, channel, opts, what):
        name = _encode_name("channel name", channel)
        h = self._enter()
        try:
            port = ctypes.c_void_p()
            r = getattr(load_library(), fn)(h, name, ctypes.byref(opts), ctypes.byref(port))
            if r < 0:
                raise _error(r, "open %s of channel %r" % (what, channel))
            obj = cls(self, port.value, channel)
            self._ports.add(obj)
            return obj
        finally:
            self._leave()

    def sender(self, channel, index=None, spin_ns=None, liveness_ms=None, drop_dead=False, wait=None,
               yield_us=None):
        """Opens the sending end of a channel: the broadcast writer, or a
        queue writer (index: the ring to take, e.g. the rank; None: any).
        spin_ns: busy-wait budget before yielding or sleeping (None: the
        library's default; SPIN_NEVER, SPIN_FOREVER).  wait: the wait
        policy, WAIT_AUTO (None: $SHMRING_WAIT, else auto), WAIT_SPIN,
        WAIT_YIELD or WAIT_BLOCK; yield_us: the yield phase's budget (None:
        the default).  drop_dead: a broadcast writer forgets readers that
        died instead of failing."""
        opts = self._opts(index, spin_ns, liveness_ms, _PORT_DROP_DEAD if drop_dead else 0, wait, yield_us)
        return self._open(Sender, "shmring_tx_open", channel, opts, "sender")

    def receiver(self, channel, index=None, spin_ns=None, liveness_ms=None, wait=None, yield_us=None):
        """Opens the receiving end: a broadcast reader (it sees messages
        sent from now on), or the queue's reader.  The wait options are
        sender()'s."""
        opts = self._opts(index, spin_ns, liveness_ms, 0, wait, yield_us)
        return self._open(Receiver, "shmring_rx_open", channel, opts, "receiver")

    # --- tables

    def kv_put(self, table, key, value):
        """Publishes value (bytes-like) under key, replacing any earlier
        value; this process becomes the key's owner.  Returns the put's
        generation."""
        t, k = _encode_name("table name", table), _encode_key(key)
        ptr, n, keep = _read_buffer(value)
        h = self._enter()
        try:
            r = load_library().shmring_kv_put(h, t, k, ptr, n)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "kv_put %r in table %r" % (key, table))
        return r

    def kv_lookup(self, table, key, timeout=None, min_generation=0):
        """Returns KvEntry(value, generation, owner_pid) for key, waiting
        up to timeout for it to appear (or, with min_generation, for a put
        at least that new).  KeyError when timeout is 0 and the key is not
        there; TimeoutError; RingPeerDied when the key's owner died."""
        t, k = _encode_name("table name", table), _encode_key(key)
        timeout_ns = _timeout_ns(timeout)
        deadline = None if timeout_ns <= 0 else time.monotonic_ns() + timeout_ns
        lib = load_library()
        h = self._enter()
        try:
            info = _KvInfo()
            for size in (4096, _MAX_VALUE):
                buf = ctypes.create_string_buffer(size)
                if deadline is not None:
                    timeout_ns = max(deadline - time.monotonic_ns(), 1)

                def call(ns, buf=buf, size=size):
                    return lib.shmring_kv_get(h, t, k, min_generation, buf, size, ctypes.byref(info), ns)

                r = _wait(call, timeout_ns, self._check_open)
                if r != -_errno.EMSGSIZE:
                    break
        finally:
            self._leave()
        if r == -_errno.EAGAIN:
            raise KeyError("table %r has no key %r%s" % (
                table, key, " of generation >= %d" % min_generation if min_generation else ""))
        if r < 0:
            raise _error(r, "kv_get %r from table %r" % (key, table))
        return KvEntry(buf.raw[:r], info.generation, info.owner_pid)

    def kv_get(self, table, key, timeout=None, min_generation=0):
        """The value (bytes) of key: kv_lookup() without the details."""
        return self.kv_lookup(table, key, timeout, min_generation).value

    def kv_del(self, table, key):
        """Removes key (KeyError when the table has no such key)."""
        t, k = _encode_name("table name", table), _encode_key(key)
        h = self._enter()
        try:
            r = load_library().shmring_kv_del(h, t, k)
        finally:
            self._leave()
        if r == -_errno.ENOENT:
            raise KeyError("no key %r in table %r (or no such table)" % (key, table))
        if r < 0:
            raise _error(r, "kv_del %r from table %r" % (key, table))


# ------------------------------------------------------------ ports

class _Port(_Closing):
    """A port's calls take the port's own lock and nothing else: the
    segment's close() takes every port's lock (after flagging it closing,
    which ends a wait in progress within WAIT_SLICE) before it unmaps, so a
    call holding the lock always runs on a mapped segment."""

    _close_fn = None
    _index_fn = None
    _what = None

    def __init__(self, segment, handle, channel):
        self._seg = segment
        self._gen = segment._fork_generation
        self._h = handle
        self._lock = threading.Lock()
        self._closing = False
        self.channel = channel

    @property
    def closed(self):
        return self._h is None

    def _unusable(self):
        """The error for a call on a port of the parent process, or closed."""
        if self._gen != _fork_generation:
            return RuntimeError("segment %s was attached by the parent process: a forked child "
                                "must attach again (Segment.attach(name))" % self._seg.name)
        return ValueError("%s of channel %r is closed" % (self._what, self.channel))

    def _enter(self):
        """Takes the port's lock; returns the C handle.  Raises when the port
        is closed or closing, or belongs to the parent process."""
        # The fork check before the lock: another thread of the parent may
        # have held it at fork time.
        if self._gen != _fork_generation:
            raise self._unusable()
        self._lock.acquire()
        h = self._h
        if h is None or self._closing:
            self._lock.release()
            raise self._unusable()
        return h

    def _leave(self):
        self._lock.release()

    def _check_open(self):
        if self._closing:
            raise ValueError("%s of channel %r was closed while waiting" % (self._what, self.channel))
        self._seg._check_open()

    def _forget(self):
        """The segment closes the C port itself (shmring_close); called
        with the port's lock held."""
        self._release_views()
        self._h = None

    def _release_views(self):
        pass

    def close(self):
        """Closes the port (a sender's close tells readers no more
        messages come).  A call another thread has in progress ends within
        WAIT_SLICE with ValueError."""
        if self._h is None or self._gen != _fork_generation:
            self._h = None
            return
        self._closing = True
        with self._lock:
            if self._h is None:
                return
            self._release_views()
            # Under the port's lock the segment is still mapped (Segment.close()
            # takes this lock before it unmaps, and then finds _h None).
            getattr(load_library(), self._close_fn)(self._h)
            self._h = None

    @property
    def index(self):
        """The port slot taken: a queue writer's ring, a broadcast reader's line."""
        h = self._enter()
        try:
            return getattr(load_library(), self._index_fn)(h)
        finally:
            self._leave()


class Sender(_Port):
    """The sending end of a channel (Segment.sender())."""

    _close_fn = "shmring_tx_close"
    _index_fn = "shmring_tx_index"
    _what = "sender"

    def __init__(self, segment, handle, channel):
        super().__init__(segment, handle, channel)
        self._reserved = None
        self._send_fn = load_library().shmring_send
        self._send_now = _load_pylib().shmring_send

    def _release_views(self):
        if self._reserved is not None:
            self._reserved.release()
            self._reserved = None

    def send(self, data, timeout=None):
        """Sends one message: bytes or any C-contiguous buffer (copied into
        the ring).  Waits only when the slowest reader is a ring behind or
        the overflow area is full."""
        # The latency path: kept to one lock and one C call that does not wait.
        if type(data) is bytes:
            ptr = data
            n = len(data)
        else:
            ptr, n, keep = _read_buffer(data)
        timeout_ns = _INFINITE if timeout is None else _timeout_ns(timeout)
        if self._gen != _fork_generation:
            raise self._unusable()
        lock = self._lock
        lock.acquire()
        try:
            h = self._h
            if h is None or self._closing:
                raise self._unusable()
            # A free slot is the rule: a call that never waits, holding the GIL
            # (no release and retake); else the wait loop, which releases it.
            r = self._send_now(h, ptr, n, 0)
            if r == _EAGAIN and timeout_ns != 0:
                fn = self._send_fn
                r = _wait(lambda ns: fn(h, ptr, n, ns), timeout_ns, self._check_open)
        finally:
            lock.release()
        if r < 0:
            raise _error(r, "send on channel %r" % self.channel)

    def sendv(self, buffers, timeout=None):
        """Sends the concatenation of buffers as one message, without
        joining them first."""
        parts = [_read_buffer(b) for b in buffers]
        iov = (_Iovec * max(len(parts), 1))()
        for i, (ptr, n, keep) in enumerate(parts):
            iov[i].iov_base = ctypes.cast(ptr, ctypes.c_void_p)
            iov[i].iov_len = n
        timeout_ns = _timeout_ns(timeout)
        lib = load_library()
        h = self._enter()
        try:
            r = _wait(lambda ns: lib.shmring_sendv(h, iov, len(parts), ns), timeout_ns, self._check_open)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "send on channel %r" % self.channel)

    def reserve(self, length, timeout=None):
        """Zero-copy send: returns a writable memoryview of `length` bytes
        inside the ring; fill it, then commit().  As a context manager,
        `with tx.reserve(n) as buf:` commits on a normal exit.  A
        reservation cannot be taken back: when the block raises, it stays
        outstanding (further sends fail with EBUSY) until commit() or
        close()."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError("length must be an int >= 0: %r" % (length,))
        timeout_ns = _timeout_ns(timeout)
        lib = load_library()
        h = self._enter()
        try:
            ptr = ctypes.c_void_p()
            r = _wait(lambda ns: lib.shmring_send_reserve(h, length, ctypes.byref(ptr), ns), timeout_ns,
                      self._check_open)
            if r < 0:
                raise _error(r, "reserve %d bytes on channel %r" % (length, self.channel))
            self._reserved = _view(ptr.value, length, True)
            return _Reservation(self, self._reserved)
        finally:
            self._leave()

    def commit(self):
        """Publishes the reserved message."""
        h = self._enter()
        try:
            self._release_views()
            r = load_library().shmring_send_commit(h)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "commit on channel %r" % self.channel)

    def wait_readers(self, n, timeout=None):
        """Broadcast: waits until at least n readers are attached; returns
        how many are."""
        timeout_ns = _timeout_ns(timeout)
        lib = load_library()
        h = self._enter()
        try:
            r = _wait(lambda ns: lib.shmring_tx_wait_readers(h, n, ns), timeout_ns, self._check_open)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "wait for %d readers of channel %r" % (n, self.channel))
        return r

    def drop_dead(self):
        """Broadcast: forgets readers that died; returns how many."""
        h = self._enter()
        try:
            r = load_library().shmring_tx_drop_dead(h)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "drop dead readers of channel %r" % self.channel)
        return r


class _Reservation:
    __slots__ = ("_tx", "view")

    def __init__(self, tx, view):
        self._tx, self.view = tx, view

    def __enter__(self):
        return self.view

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._tx.commit()
        return False

    # Used without `with`: behave like the view.
    def __getitem__(self, i):
        return self.view[i]

    def __setitem__(self, i, v):
        self.view[i] = v

    def __len__(self):
        return len(self.view)

    def __buffer__(self, flags):        # Python >= 3.12
        return self.view.__buffer__(flags)


class Message:
    """A message received in place (Receiver.recv_zc()).  `data` is a
    read-only memoryview of the segment, valid until done(): the writer
    cannot reuse the space before, and after done() the view is released
    (views sliced from it are not: do not use them after done()).  As a
    context manager, done() runs on exit."""

    __slots__ = ("_rx", "data", "seq", "sender")

    def __init__(self, rx, data, seq, sender):
        self._rx, self.data, self.seq, self.sender = rx, data, seq, sender

    def __len__(self):
        return self.data.nbytes if self._rx is not None else 0

    def tobytes(self):
        return self.data.tobytes()

    def done(self):
        """Frees the message's space for the writer.  Raises OSError
        (ESTALE) when the message was overwritten meanwhile: this reader
        had been dropped as dead."""
        rx, self._rx = self._rx, None
        if rx is None:
            return
        try:
            self.data.release()
        except BufferError:
            pass
        rx._done(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.done()
        return False

    def __repr__(self):
        return "<ringmaster.shmring.Message seq=%d sender=%d %s>" % (
            self.seq, self.sender, "%d bytes" % self.data.nbytes if self._rx is not None else "done")


class Receiver(_Port):
    """The receiving end of a channel (Segment.receiver()).  Iterating
    yields messages (bytes) until every writer closed (BrokenPipeError
    ends the iteration)."""

    _close_fn = "shmring_rx_close"
    _index_fn = "shmring_rx_index"
    _what = "receiver"

    def __init__(self, segment, handle, channel):
        super().__init__(segment, handle, channel)
        self._held = None
        self._recv_fn = load_library().shmring_recv
        self._recv_raw = _load_rawlib().shmring_recv
        self._hv = ctypes.c_void_p(handle)
        # The C extension, where built: (function, address of shmring_recv).
        self._fast = _load_fast()
        self._fast_fn = ctypes.cast(self._recv_raw, ctypes.c_void_p).value
        self._set_buffer(_RECV_BUFFER)

    def _set_buffer(self, size):
        self._buf = ctypes.create_string_buffer(size)
        self._buf_addr = ctypes.addressof(self._buf)
        self._buf_size = size
        self._buf_size_c = ctypes.c_size_t(size)
        self._buf_view = memoryview(self._buf).cast("B").toreadonly()    # recv_view()'s slices

    def _release_views(self):
        held, self._held = self._held, None
        if held is not None:
            held._rx = None
            try:
                held.data.release()
            except BufferError:
                pass

    def _next(self, timeout, what):
        msg = _Msg()
        timeout_ns = _timeout_ns(timeout)
        lib = load_library()
        h = self._enter()
        try:
            r = _wait(lambda ns: lib.shmring_recv_zc(h, ctypes.byref(msg), ns), timeout_ns, self._check_open)
            if r < 0:
                raise _error(r, "%s on channel %r" % (what, self.channel))
            return h, lib, msg
        except BaseException:
            self._leave()
            raise

    def recv_from(self, timeout=None):
        """Receives the next message: (bytes, sender), sender being a
        queue writer's index (0 on a broadcast channel)."""
        h, lib, msg = self._next(timeout, "receive")
        try:
            data = ctypes.string_at(msg.data, msg.len) if msg.len else b""
            r = lib.shmring_recv_done(h)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "receive on channel %r" % self.channel)
        return data, msg.sender

    def recv(self, timeout=None):
        """Receives the next message as bytes (one copy)."""
        return self._recv(timeout, True)

    def recv_view(self, timeout=None):
        """Receives the next message into a buffer this receiver keeps and
        returns a read-only memoryview of it, valid until the next recv(),
        recv_view() or close() (e.g. for pickle.loads(), which copies what it
        keeps).  Saves recv()'s copy to bytes."""
        return self._recv(timeout, False)

    def _recv(self, timeout, copy):
        # One C call into the kept buffer (shmring_recv copies the message out
        # and frees its slot); a message larger than the buffer takes the
        # zero-copy path, and the buffer grows to it for next time.
        if self._gen != _fork_generation:
            raise self._unusable()
        lock = self._lock
        lock.acquire()
        try:
            if self._h is None or self._closing:
                raise self._unusable()
            # Waiting for ever (the usual receive) or for less than a slice: the
            # first call without the wait loop's bookkeeping, which is in the
            # latency path, through the C extension where built (_load_fast(),
            # 80 ns a call), else with its arguments as ctypes objects already
            # (_load_rawlib(), 330); the loop takes over after a signal or a slice.
            fast = self._fast
            if timeout is None:
                if fast:
                    r = fast(self._fast_fn, self._h, self._buf_addr, self._buf_size, _SLICE_NS)
                else:
                    r = self._recv_raw(self._hv, self._buf, self._buf_size_c, _SLICE_NS_C)
                if r == _EINTR or r == _ETIMEDOUT:
                    r = self._recv_wait(_INFINITE)
            else:
                timeout_ns = _timeout_ns(timeout)
                if timeout_ns <= _SLICE_NS:
                    if fast:
                        r = fast(self._fast_fn, self._h, self._buf_addr, self._buf_size, timeout_ns)
                    else:
                        r = self._recv_raw(self._hv, self._buf, self._buf_size_c, ctypes.c_int64(timeout_ns))
                    if r == _EINTR:
                        r = self._recv_wait(timeout_ns)
                else:
                    r = self._recv_wait(timeout_ns)
            if r >= 0:
                view = self._buf_view[:r]
                return view.tobytes() if copy else view
        finally:
            lock.release()
        if r == -_errno.EMSGSIZE:
            data = self.recv_from(timeout)[0]
            if len(data) <= _RECV_BUFFER_MAX:
                self._set_buffer(len(data))
            return data if copy else memoryview(data)
        raise _error(r, "receive on channel %r" % self.channel)

    def _recv_wait(self, timeout_ns):
        h, buf, size, fn, fast = self._h, self._buf, self._buf_size, self._recv_fn, self._fast
        if fast:
            addr, fast_fn = self._buf_addr, self._fast_fn
            return _wait(lambda ns: fast(fast_fn, h, addr, size, ns), timeout_ns, self._check_open)
        return _wait(lambda ns: fn(h, buf, size, ns), timeout_ns, self._check_open)

    def recv_into(self, buffer, timeout=None):
        """Receives the next message into a writable buffer and returns its
        length; OSError (EMSGSIZE) leaves a larger message in place."""
        view = memoryview(buffer).cast("B")
        if view.readonly:
            raise TypeError("recv_into needs a writable buffer")
        array = (ctypes.c_char * view.nbytes).from_buffer(view) if view.nbytes else _EMPTY
        timeout_ns = _timeout_ns(timeout)
        lib = load_library()
        h = self._enter()
        try:
            r = _wait(lambda ns: lib.shmring_recv(h, array, view.nbytes, ns), timeout_ns, self._check_open)
        finally:
            self._leave()
            del array
            view.release()
        if r < 0:
            raise _error(r, "receive on channel %r" % self.channel)
        return r

    def recv_zc(self, timeout=None):
        """Receives the next message in place: a Message whose .data is a
        memoryview of the segment, valid until its done().  One message
        may be held at a time."""
        if self._held is not None:
            raise RuntimeError("receiver of channel %r still holds message seq %d: call its done() first" % (
                self.channel, self._held.seq))
        h, lib, msg = self._next(timeout, "receive")
        try:
            self._held = Message(self, _view(msg.data, msg.len, False), msg.seq, msg.sender)
            return self._held
        finally:
            self._leave()

    def _done(self, message):
        if self._held is not message:
            return
        self._held = None
        h = self._enter()
        try:
            r = load_library().shmring_recv_done(h)
        finally:
            self._leave()
        if r < 0:
            raise _error(r, "done with message %d on channel %r" % (message.seq, self.channel))

    def __iter__(self):
        while True:
            try:
                yield self.recv()
            except BrokenPipeError:
                return
