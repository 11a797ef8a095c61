# SPDX-License-Identifier: MIT
"""ringmaster's start-up hook for Python workers (loaded by the
sitecustomize.py beside it, which `ringmaster run` puts on PYTHONPATH).

Under ringmaster (RINGMASTER_RUN_ID set) it
  - registers faulthandler on SIGUSR1 for all threads, writing to fd 2:
    the supervisor sends SIGUSR1 to a hung rank and finds every thread's
    Python traceback in the rank's captured stderr;
  - when a notify socket is set (RINGMASTER_NOTIFY_SOCKET or
    NOTIFY_SOCKET), reports these phases and their end, without importing
    torch itself (a finder on sys.meta_path patches torch's modules right
    after they are first imported; a program that never imports torch
    pays one dictionary lookup per import):

      torch.distributed.init_process_group   dist-init
      torch.distributed.new_group            dist-new-group
      torch.distributed.barrier              dist-barrier; the first barrier
                                             of an NCCL group: nccl-init
                                             (NCCL creates its communicator
                                             there, unless init_process_group
                                             was given device_id)
      torch.cuda._lazy_init (first time)     cuda-init (set_device,
                                             tensor.cuda(), ... all go
                                             through it)

    A phase starts with X_RINGMASTER_PHASE=NAME and, when the call returns,
    ends with X_RINGMASTER_PHASE_END=NAME.  When it raises, the end comes
    with STATUS=NAME failed: Type: message (one line) in the same datagram:
    the program may catch the exception and go on.  Calls nested inside a hooked call (new_group
    inside init_process_group, say) report nothing of their own.

It never reports READY: that is the program's ringmaster.worker.ready().

SIGUSR1: a program that installs its own SIGUSR1 handler later
(signal.signal) replaces faulthandler's, and ringmaster's hang diagnosis
then gets no Python traceback.  To keep both, register faulthandler again
after installing the handler:
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=True)
(faulthandler then dumps the tracebacks and calls the program's handler).
"""

import os
import sys
import _thread

PHASE_DIST_INIT = "dist-init"
PHASE_NEW_GROUP = "dist-new-group"
PHASE_BARRIER = "dist-barrier"
PHASE_NCCL_INIT = "nccl-init"
PHASE_CUDA_INIT = "cuda-init"

STATUS_MAX = 200

_installed = False
_finder = None
chaining = False


def active():
    """Whether the hook has work to do: the process runs under ringmaster."""
    return bool(os.environ.get("RINGMASTER_RUN_ID"))


def _warn(text):
    try:
        sys.stderr.write("ringmaster hook: %s\n" % text)
        sys.stderr.flush()
    except Exception:
        pass


# ------------------------------------------------------------ notify

def _notify_address():
    return os.environ.get("RINGMASTER_NOTIFY_SOCKET") or os.environ.get("NOTIFY_SOCKET") or None


_worker = None
_worker_missing = False


def _worker_module():
    """ringmaster.worker, the one notify client (and the wire's names),
    imported at the first phase (so that start-up imports no socket module);
    None when it cannot be.  ringmaster run puts the package beside this
    hook on PYTHONPATH."""
    global _worker, _worker_missing
    if _worker is None and not _worker_missing:
        try:
            from ringmaster import worker as _worker
        except ImportError as e:
            _worker_missing = True
            _warn("cannot import ringmaster.worker (%s): phases are not reported" % e)
    return _worker


def _send_phase(key, name, extra=""):
    """One datagram: worker.KEY_PHASE or worker.KEY_PHASE_END (key names
    which) with name, then extra lines."""
    w = _worker_module()
    if w is None:
        return False
    return w.notify("%s=%s%s" % (getattr(w, key), name, extra))


def phase_start(name):
    return _send_phase("KEY_PHASE", name)


def phase_end(name):
    return _send_phase("KEY_PHASE_END", name)


def failure_line(name, exc):
    """'NAME failed: Type: message' on one line of at most STATUS_MAX."""
    try:
        text = "%s: %s" % (type(exc).__name__, exc)
    except Exception:
        text = type(exc).__name__
    line = "%s failed: %s" % (name, " ".join(text.replace("\0", " ").split()))
    if len(line) > STATUS_MAX:
        line = line[:STATUS_MAX - 3] + "..."
    return line


def phase_failed(name, exc):
    """The phase ended by an exception: its end and why, in one datagram
    (the program may catch the exception and go on)."""
    return _send_phase("KEY_PHASE_END", name, "\nSTATUS=" + failure_line(name, exc))


# ------------------------------------------------------------ wrapping

_tls = _thread._local()


def wrap(fn, phase_of):
    """Returns fn wrapped to report the phase phase_of(args, kwargs) names
    (None: report nothing) around the call."""
    if getattr(fn, "_ringmaster_phase_hook", False):
        return fn
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if getattr(_tls, "depth", 0):
            return fn(*args, **kwargs)
        try:
            name = phase_of(args, kwargs)
        except Exception:
            name = None
        if name is None:
            return fn(*args, **kwargs)
        phase_start(name)
        _tls.depth = 1
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            phase_failed(name, e)
            raise
        finally:
            _tls.depth = 0
        phase_end(name)
        return result

    wrapper._ringmaster_phase_hook = True
    return wrapper


def _always(name):
    return lambda args, kwargs: name


def _patch(module, attr, phase_of):
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        return None
    wrapped = wrap(fn, phase_of)
    if wrapped is not fn:
        setattr(module, attr, wrapped)
    return wrapped


def _barrier_phase(module):
    seen = set()

    def phase_of(args, kwargs):
        group = kwargs.get("group", args[0] if args else None)
        member = getattr(module, "GroupMember", None)
        if group is None or (member is not None and group is getattr(member, "WORLD", None)):
            key = "world"
        else:
            key = id(group)
        backend = ""
        get_backend = getattr(module, "get_backend", None)
        if get_backend is not None:
            try:
                backend = str(get_backend(group) if group is not None else get_backend()).lower()
            except Exception:
                backend = ""
        if "nccl" in backend and key not in seen:
            seen.add(key)
            return PHASE_NCCL_INIT
        return PHASE_BARRIER

    return phase_of


def patch_distributed(module):
    """Wraps init_process_group, new_group and barrier of module
    (torch.distributed.distributed_c10d, then torch.distributed)."""
    _patch(module, "init_process_group", _always(PHASE_DIST_INIT))
    _patch(module, "new_group", _always(PHASE_NEW_GROUP))
    _patch(module, "barrier", _barrier_phase(module))


def patch_cuda(module):
    """Wraps torch.cuda._lazy_init, and rebinds it where torch's modules
    imported it by name before."""
    original = getattr(module, "_lazy_init", None)
    if original is None or getattr(original, "_ringmaster_phase_hook", False):
        return
    done = []

    def phase_of(args, kwargs):
        if done:
            return None
        is_initialized = getattr(module, "is_initialized", None)
        if is_initialized is not None and is_initialized():
            done.append(True)
            return None
        done.append(True)
        return PHASE_CUDA_INIT

    wrapped = wrap(original, phase_of)
    module._lazy_init = wrapped
    for name, other in list(sys.modules.items()):
        if other is None or other is module or not name.startswith("torch"):
            continue
        try:
            if getattr(other, "_lazy_init", None) is original:
                other._lazy_init = wrapped
        except Exception:
            pass


# ------------------------------------------------------------ import hook

class _ChainedLoader:
    """Runs the real loader, then the post-import hook.  Puts the real
    loader back on the module, so introspection sees nothing of this."""

    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        try:
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self._loader
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self._loader
        except Exception:
            pass
        self._loader.exec_module(module)
        try:
            self._hook(module)
        except Exception as e:
            _warn("patching %s failed: %s: %s" % (getattr(module, "__name__", "?"), type(e).__name__, e))


class PostImportFinder:
    """A sys.meta_path finder that finds nothing itself: for the modules it
    watches it asks the finders after it, and chains the hook to the
    loader they return."""

    def __init__(self, hooks):
        self.hooks = hooks
        self._busy = _thread._local()

    def find_spec(self, fullname, path=None, target=None):
        hook = self.hooks.get(fullname)
        if hook is None:
            return None
        busy = getattr(self._busy, "names", None)
        if busy is None:
            busy = self._busy.names = set()
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = None
            for finder in sys.meta_path:
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _ChainedLoader(spec.loader, hook)
        return spec

    def invalidate_caches(self):
        pass


HOOKS = {
    "torch.distributed.distributed_c10d": patch_distributed,
    "torch.distributed": patch_distributed,
    "torch.cuda": patch_cuda,
}


# ------------------------------------------------------------ faulthandler

def register_faulthandler():
    """faulthandler on SIGUSR1, all threads, to fd 2 (the captured stderr,
    whatever sys.stderr becomes later)."""
    try:
        import faulthandler
        import _signal
        faulthandler.register(_signal.SIGUSR1, file=2, all_threads=True, chain=False)
        return True
    except Exception as e:
        _warn("cannot register faulthandler on SIGUSR1: %s" % e)
        return False


def install():
    """Installs the hook once; returns whether it is active."""
    global _installed, _finder
    if _installed:
        return True
    if not active():
        return False
    _installed = True
    register_faulthandler()
    if _notify_address() is None:
        return True
    _finder = PostImportFinder(dict(HOOKS))
    sys.meta_path.insert(0, _finder)
    # Modules imported before the hook (by a .pth file, say): patch now.
    for name in ("torch.distributed.distributed_c10d", "torch.distributed", "torch.cuda"):
        module = sys.modules.get(name)
        if module is not None:
            try:
                HOOKS[name](module)
            except Exception as e:
                _warn("patching %s failed: %s" % (name, e))
    return True


# ------------------------------------------------------------ sitecustomize

def _same_dir(entry, here):
    try:
        return os.path.realpath(entry or os.curdir) == here
    except (TypeError, ValueError, OSError):
        return False


def chain_sitecustomize(here):
    """Imports the next sitecustomize on sys.path (the one ringmaster's
    hides), as site.py would have: with our folder taken off sys.path for
    the time, and its errors reported on stderr, not raised."""
    global chaining
    if chaining:
        return                          # found ourselves again under another name
    chaining = True
    here = os.path.realpath(here)
    removed = [(i, p) for i, p in enumerate(sys.path) if isinstance(p, str) and _same_dir(p, here)]
    ours = sys.modules.pop("sitecustomize", None)
    for i, _ in reversed(removed):
        del sys.path[i]
    try:
        __import__("sitecustomize")
    except ImportError as e:
        if getattr(e, "name", None) != "sitecustomize":
            _warn_chained(e)
    except Exception as e:
        _warn_chained(e)
    finally:
        if sys.modules.get("sitecustomize") is None:
            if ours is not None:
                sys.modules["sitecustomize"] = ours
        for i, p in removed:
            sys.path.insert(min(i, len(sys.path)), p)
        chaining = False


def _warn_chained(e):
    if sys.flags.verbose:
        sys.excepthook(*sys.exc_info())
    else:
        _warn("Error in the sitecustomize it chains; set PYTHONVERBOSE for traceback:\n%s: %s"
              % (type(e).__name__, e))
