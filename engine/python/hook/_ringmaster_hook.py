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


def phase_start(name, extra=None):
    """The phase's start; extra: more lines for the same datagram (a group,
    which names this worker's lines: taken before it goes on)."""
    sent = _send_phase("KEY_PHASE", name, "\n" + extra if extra else "")
    if sent and extra:
        _worker.labelled(sent)
    return sent


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


def wrap(fn, phase_of, extra_of=None):
    """Returns fn wrapped to report the phase phase_of(args, kwargs) names
    (None: report nothing) around the call; extra_of(args, kwargs) gives
    more lines for the phase's first datagram (None: none)."""
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
        extra = None
        if extra_of is not None:
            try:
                extra = extra_of(args, kwargs)
            except Exception:
                extra = None
        phase_start(name, extra)
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


def _patch(module, attr, phase_of, extra_of=None):
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        return None
    wrapped = wrap(fn, phase_of, extra_of)
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


def _int_or(value, default):
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def group_of(args, kwargs):
    """The group lines of init_process_group's call (its rendezvous, the
    caller's rank and the world size: the arguments, else $RANK and
    $WORLD_SIZE), or None when they are not known."""
    def arg(name, position, default=None):
        if name in kwargs:
            return kwargs[name]
        return args[position] if len(args) > position else default

    world = _int_or(arg("world_size", 3, -1), -1)
    if world < 0:
        world = _int_or(os.environ.get("WORLD_SIZE"), -1)
    rank = _int_or(arg("rank", 4, -1), -1)
    if rank < 0:
        rank = _int_or(os.environ.get("RANK"), -1)
    if world < 1 or not 0 <= rank < world:
        return None
    worker = _worker_module()
    if worker is None:
        return None
    key = worker.group_key(init_method=arg("init_method", 1), store=arg("store", 5))
    return worker.group_fields(key, rank, world)


def patch_distributed(module):
    """Wraps init_process_group, new_group and barrier of module
    (torch.distributed.distributed_c10d, then torch.distributed)."""
    _patch(module, "init_process_group", _always(PHASE_DIST_INIT), group_of)
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


# ------------------------------------------------------------ workers
#
# Every Python process of the job announces itself (docs/spawned-workers.md):
# at start-up, in the child after os.fork(), and when a multiprocessing
# child starts its work (BaseProcess._bootstrap, every start method); each
# of the three also asks for the process's own output pipes (once per pid).  How it ends is said too:
# sys.exit/os._exit's status, multiprocessing's exit code, an exception
# that leaves the worker's function, or 0 at a normal interpreter exit.

# (pid, what) of this process: the fork child must not take its parent's.
_exit_status = None           # (pid, sys.exit's argument)
_exit_sent = None             # pid that sent its EXIT
_exception_pid = None         # pid whose work ended by an exception


def _mine(entry):
    return entry is not None and entry[0] == os.getpid()


def send_exit(code):
    """X_RINGMASTER_WORKER_EXIT once per process."""
    global _exit_sent
    if _exit_sent == os.getpid():
        return False
    worker = _worker_module()
    if worker is None:
        return False
    _exit_sent = os.getpid()
    try:
        return worker.announce_exit(code)
    except Exception:
        return False


def report_exception(exc, tb=None):
    """The exception that ends this worker's work: one line and its traceback."""
    global _exception_pid
    if _exception_pid == os.getpid():
        return
    _exception_pid = os.getpid()
    worker = _worker_module()
    if worker is None:
        return
    try:
        import traceback
        text = "".join(traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__))
        worker.announce_exception(exc, text)
    except Exception:
        pass


def reporting_exceptions(fn):
    """fn, reporting an Exception that leaves it (then raising it on)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            report_exception(e)
            raise
    return wrapper


def announce_self(name=None, index=None, capture=True, flush=True):
    worker = _worker_module()
    if worker is None:
        return False
    try:
        return worker.announce(name=name, index=index, capture=capture, flush=flush)
    except Exception as e:
        _warn("cannot announce this process: %s: %s" % (type(e).__name__, e))
        return False


# A plain os.fork() child asks for its own output pipes, as multiprocessing's
# children do, for the first FORK_CAPTURE_MAX children of a process; later
# ones (a pre-forking server's) only announce themselves and keep writing
# into their parent's pipes.  (A multiprocessing child past the limit still
# asks in _bootstrap.)
FORK_CAPTURE_MAX = 64
_forks = 0                    # children this process forked


def _after_fork_parent():
    global _forks
    _forks += 1


def _after_fork_child():
    global _forks
    capture = _forks < FORK_CAPTURE_MAX
    _forks = 0
    # No flush: the buffers hold the parent's output (and a thread of the
    # parent may have held their locks at fork()).
    announce_self(capture=capture, flush=False)


def _at_exit():
    if _exception_pid == os.getpid():
        send_exit(1)
    elif _mine(_exit_status):
        send_exit(_exit_status[1])
    else:
        send_exit(0)


def _wrap_sys_exit(real):
    def exit(status=None):
        global _exit_status
        _exit_status = (os.getpid(), status)
        return real(status)
    exit._ringmaster_hook = True
    exit.__doc__ = real.__doc__
    return exit


def _wrap_os_exit(real):
    def _exit(n):
        send_exit(n)
        return real(n)
    _exit._ringmaster_hook = True
    _exit.__doc__ = real.__doc__
    return _exit


def _wrap_exec(real):
    def exec_(*args, **kwargs):
        worker = _worker_module()
        if worker is not None:
            worker.announce_exec()
        try:
            return real(*args, **kwargs)
        except BaseException:
            announce_self(capture=False)        # still this program
            raise
    exec_._ringmaster_hook = True
    exec_.__name__ = real.__name__
    exec_.__doc__ = real.__doc__
    return exec_


def _wrap_excepthook(previous):
    def excepthook(exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, Exception):
            report_exception(exc, tb)
        return previous(exc_type, exc, tb)
    excepthook._ringmaster_hook = True
    return excepthook


def _torch_spawn_index(process):
    """torch.multiprocessing.spawn's process index, when process runs its _wrap."""
    target = getattr(process, "_target", None)
    args = getattr(process, "_args", ())
    if (getattr(target, "__name__", None) == "_wrap" and
            getattr(target, "__module__", None) == "torch.multiprocessing.spawn" and
            isinstance(args, tuple) and len(args) >= 2 and isinstance(args[1], int) and
            not isinstance(args[1], bool) and args[1] >= 0):
        return args[1]
    return None


def mp_child_start(process):
    """In a multiprocessing child, before its work: exceptions of the work
    reported, then the announce with the process's name (and index)."""
    index = _torch_spawn_index(process)
    if index is not None:
        # _wrap catches the function's exception itself: wrap the function.
        args = process._args
        process._args = (reporting_exceptions(args[0]),) + tuple(args[1:])
    else:
        process.run = reporting_exceptions(process.run)
    announce_self(name=getattr(process, "name", None) or None, index=index, capture=True)


def patch_multiprocessing(module):
    """Wraps multiprocessing.process.BaseProcess._bootstrap (the child's
    side of every start method)."""
    cls = getattr(module, "BaseProcess", None)
    original = getattr(cls, "_bootstrap", None) if cls is not None else None
    if original is None or getattr(original, "_ringmaster_hook", False):
        return

    def _bootstrap(self, *args, **kwargs):
        try:
            mp_child_start(self)
        except Exception as e:
            _warn("cannot announce the multiprocessing child: %s: %s" % (type(e).__name__, e))
        code = original(self, *args, **kwargs)
        send_exit(code)
        return code

    _bootstrap._ringmaster_hook = True
    cls._bootstrap = _bootstrap


def install_workers():
    """Announces this process (asking for its own output pipes) and hooks
    the ways it can fork, exec and end."""
    import atexit
    announce_self(capture=True)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)
    atexit.register(_at_exit)
    if not getattr(sys.exit, "_ringmaster_hook", False):
        sys.exit = _wrap_sys_exit(sys.exit)
    if not getattr(os._exit, "_ringmaster_hook", False):
        os._exit = _wrap_os_exit(os._exit)
    # os.execl, execlp, execvp, ... all end in execv or execve.
    for name in ("execv", "execve"):
        real = getattr(os, name, None)
        if real is not None and not getattr(real, "_ringmaster_hook", False):
            setattr(os, name, _wrap_exec(real))
    if not getattr(sys.excepthook, "_ringmaster_hook", False):
        sys.excepthook = _wrap_excepthook(sys.excepthook)


HOOKS = {
    "torch.distributed.distributed_c10d": patch_distributed,
    "torch.distributed": patch_distributed,
    "torch.cuda": patch_cuda,
    "multiprocessing.process": patch_multiprocessing,
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
    if os.environ.get("RINGMASTER_WORKER_ANNOUNCE", "1") != "0":
        try:
            install_workers()
        except Exception as e:
            _warn("cannot install the worker announcements: %s: %s" % (type(e).__name__, e))
    _finder = PostImportFinder(dict(HOOKS))
    sys.meta_path.insert(0, _finder)
    # Modules imported before the hook (by a .pth file, say): patch now.
    for name in HOOKS:
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
