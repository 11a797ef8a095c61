# SPDX-License-Identifier: MIT
"""ringmaster.shmring end to end: a segment created here, peers in other
processes attached by name, broadcast and queue traffic checksummed,
timeouts, the end of a stream, dead peers, zero-copy, key-value tables,
signals and closing under a waiting thread."""

import ctypes
import errno
import gc
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import HERE, clean_env, run_python
from ringmaster import shmring
from ringmaster.shmring import BROADCAST, QUEUE, Channel, Segment, Table

PEER = os.path.join(HERE, "shmring_peer.py")
MESSAGES = int(os.environ.get("RM_PY_SHMRING_MESSAGES", "2000"))


@pytest.fixture
def seg(run_id):
    s = Segment.create(run_id, [
        Channel("sched", BROADCAST, slots=16, slot_size=256, overflow_size=1 << 16, max_ports=4),
        Channel("results", QUEUE, slots=16, slot_size=256, overflow_size=1 << 16, max_ports=4),
        Channel("small", BROADCAST, slots=2, slot_size=64, max_ports=2),
    ], [Table("kv", entries=8, value_size=8192)])
    yield s
    try:
        s.unlink()
    except (OSError, ValueError):
        pass
    s.close()


class Peer:
    """A shmring_peer.py process; reads its output line by line."""

    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([sys.executable, PEER] + [str(a) for a in args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env or clean_env())

    def line(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            pytest.fail("peer ended (status %s): %s" % (self.proc.returncode, self.proc.stderr.read()))
        return line.split()

    def expect(self, word):
        words = self.line()
        assert words[0] == word, words
        return words[1:]

    def finish(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def peers():
    started = []

    def start(*args, **kwargs):
        p = Peer(*args, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def test_create_and_describe(seg, run_id):
    info = seg.info()
    assert info.run_id == run_id and info.creator_pid == os.getpid() and info.n_channels == 3
    assert info.name == seg.name and seg.name.startswith("/shmring-%s-" % run_id)
    assert info.size == shmring.spec_size(run_id, [
        Channel("sched", BROADCAST, slots=16, slot_size=256, overflow_size=1 << 16, max_ports=4),
        Channel("results", QUEUE, slots=16, slot_size=256, overflow_size=1 << 16, max_ports=4),
        Channel("small", BROADCAST, slots=2, slot_size=64, max_ports=2),
    ], [Table("kv", entries=8, value_size=8192)])
    names = [(c.name, c.kind, c.slots, c.max_ports) for c in seg.channels()]
    assert names == [("sched", BROADCAST, 16, 4), ("results", QUEUE, 16, 4), ("small", BROADCAST, 2, 2)]
    assert seg.channel("sched").max_message >= 1 << 16
    assert seg.channel("small").max_message >= 64
    with pytest.raises(KeyError):
        seg.channel("nope")
    assert os.path.exists("/dev/shm" + seg.name)


def test_create_with_dicts_and_bad_specs(run_id):
    with Segment.create(run_id, [dict(name="q", kind=QUEUE)], [dict(name="t")]) as s:
        s.unlink()
        assert s.channel("q").kind == QUEUE
    with pytest.raises(ValueError):
        Channel("bad name", BROADCAST)
    with pytest.raises(ValueError):
        Channel("x", "fanout")
    with pytest.raises(OSError) as e:
        Segment.create(run_id, [Channel("x", BROADCAST, slots=3)])     # not a power of two
    assert e.value.errno == errno.EINVAL
    with pytest.raises(FileExistsError):
        Segment.create(run_id, [Channel("x", BROADCAST), Channel("x", QUEUE)])
    with pytest.raises(ValueError):
        Segment.create("run id with spaces")


def test_broadcast_to_reader_processes(seg, peers):
    """One writer here, three reader processes: every reader gets every
    message, in order, bytes for bytes (sha256 over the stream)."""
    readers = [peers("bcast-reader", seg.name, "sched") for _ in range(3)]
    for r in readers:
        r.expect("attached")
    rnd = random.Random(1)
    digest = hashlib.sha256()
    with seg.sender("sched") as tx:
        assert tx.wait_readers(3, timeout=30) == 3
        for seq in range(MESSAGES):
            size = rnd.choice((0, 1, 100, 248, 249, 256, 1000, 4000, 30000))
            msg = seq.to_bytes(8, "little") + os.urandom(size)
            if seq % 3 == 0:
                tx.send(msg, timeout=60)
            elif seq % 3 == 1:
                tx.sendv([msg[:5], memoryview(msg)[5:9], bytearray(msg[9:])], timeout=60)
            else:
                with tx.reserve(len(msg), timeout=60) as buf:
                    buf[:] = msg
            digest.update(msg)
    for r in readers:
        assert r.expect("done") == [str(MESSAGES), digest.hexdigest()]
        r.finish()


def test_queue_from_writer_processes(seg, peers):
    """Three writer processes on a queue, one reader here: each writer's
    messages arrive in its order, from the right sender, intact."""
    n = MESSAGES // 2
    writers = [peers("queue-writer", seg.name, "results", i, n, i) for i in range(3)]
    with seg.receiver("results") as rx:
        for i in range(3):
            seg.kv_get("kv", "ready-%d" % i, timeout=30)
        seg.kv_put("kv", "go", b"1")
        digests = [hashlib.sha256() for _ in range(3)]
        counts = [0, 0, 0]
        while True:
            try:
                data, sender = rx.recv_from(timeout=60)
            except BrokenPipeError:
                break
            index = int.from_bytes(data[:4], "little")
            number = int.from_bytes(data[4:8], "little")
            assert index == sender
            assert number == counts[index]
            counts[index] += 1
            digests[index].update(data)
    assert counts == [n] * 3
    for i, w in enumerate(writers):
        assert w.expect("done") == [str(n), digests[i].hexdigest()]
        w.finish()


def test_timeouts(seg):
    with seg.sender("small") as tx, seg.receiver("small") as rx:
        with pytest.raises(BlockingIOError, match="'small'"):
            rx.recv(timeout=0)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="receive on channel 'small': timed out"):
            rx.recv(timeout=0.3)
        assert 0.29 <= time.monotonic() - start < 3
        # A ring of 2 slots and a reader that does not read: the third send waits.
        tx.send(b"1")
        tx.send(b"2")
        with pytest.raises(BlockingIOError):
            tx.send(b"3", timeout=0)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="send on channel 'small'"):
            tx.send(b"3", timeout=0.3)
        assert 0.29 <= time.monotonic() - start < 3
        assert rx.recv() == b"1"
        tx.send(b"3", timeout=0)
        assert [rx.recv(), rx.recv()] == [b"2", b"3"]
        # A timeout longer than a wait slice still ends on time.
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            rx.recv(timeout=shmring.WAIT_SLICE * 2.5)
        assert shmring.WAIT_SLICE * 2.5 <= time.monotonic() - start < shmring.WAIT_SLICE * 2.5 + 2
    with pytest.raises(ValueError):
        seg.receiver("small").recv(timeout=-1)
    with pytest.raises(TypeError):
        seg.receiver("small").recv(timeout="1")


@pytest.fixture(params=["extension", "ctypes"])
def receive_path(request, monkeypatch):
    """Receivers opened under it take the C extension's receive
    (ringmaster._shmring_fast) or ctypes alone; "extension" is skipped where
    the extension was not built."""
    if request.param == "ctypes":
        monkeypatch.setattr(shmring, "_fast", False)
    elif shmring.fast_path() is None:
        pytest.skip("ringmaster._shmring_fast not built (no Python.h at configure)")
    return request.param


def test_receive_paths(seg, peers, receive_path):
    """recv() and recv_view() through either path: inline and overflow
    messages (one larger than the kept buffer, which then grows), timeouts
    of 0, under a slice and over one, the end of a stream, and a dead
    writer noticed while waiting."""
    with seg.receiver("sched") as rx:
        assert bool(rx._fast) == (receive_path == "extension")
        tx = seg.sender("sched")
        big = bytes(random.Random(7).getrandbits(8) for _ in range(shmring._RECV_BUFFER + 1000))
        for m in (b"", b"a", b"b" * 200, big, b"after"):
            tx.send(m)
        assert [rx.recv(), rx.recv(timeout=0), bytes(rx.recv_view(timeout=5))] == [b"", b"a", b"b" * 200]
        assert rx.recv(timeout=0.01) == big
        assert rx._buf_size == len(big)             # grown for next time
        assert rx.recv() == b"after"
        with pytest.raises(BlockingIOError):
            rx.recv(timeout=0)
        for timeout in (0.05, shmring.WAIT_SLICE * 1.5):
            start = time.monotonic()
            with pytest.raises(TimeoutError, match="receive on channel 'sched': timed out"):
                rx.recv_view(timeout=timeout)
            assert timeout <= time.monotonic() - start < timeout + 2
        tx.close()
        with pytest.raises(BrokenPipeError):
            rx.recv()
    with seg.receiver("sched") as rx:
        w = peers("bcast-writer-then-sleep", seg.name, "sched")
        assert w.expect("sent") == []
        assert rx.recv() == b"before-death"
        w.proc.kill()
        start = time.monotonic()
        with pytest.raises(shmring.RingPeerDied):
            rx.recv()
        assert time.monotonic() - start < 5


def test_extension_is_found_and_can_be_refused():
    """The build tree's extension is found from the build tree's libshmring
    (and used); RINGMASTER_SHMRING_CTYPES=1 refuses it."""
    builddir = os.environ.get("top_builddir")
    import importlib.machinery
    built = builddir and os.path.join(os.path.realpath(builddir), "engine", "python", "ringmaster", ".libs",
                                      "_shmring_fast" + importlib.machinery.EXTENSION_SUFFIXES[0])
    if not built or not os.path.isfile(built):
        pytest.skip("ringmaster._shmring_fast not built here")
    code = "from ringmaster import shmring\nprint(shmring.fast_path())"
    lib = os.path.join(os.path.realpath(builddir), "shmring", ".libs", shmring.SONAME)
    r = run_python(code, clean_env(RINGMASTER_LIBSHMRING=lib))
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(r.stdout.strip()) == os.path.realpath(built)
    r = run_python(code, clean_env(RINGMASTER_LIBSHMRING=lib, RINGMASTER_SHMRING_CTYPES="1"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"


def test_end_of_stream_after_close(seg):
    with seg.receiver("sched") as rx:
        tx = seg.sender("sched")
        tx.send(b"a")
        tx.send(b"b" * 5000)
        tx.close()
        assert rx.recv() == b"a"
        assert rx.recv() == b"b" * 5000
        with pytest.raises(BrokenPipeError, match="'sched'"):
            rx.recv(timeout=5)
        # Iteration ends there too.
        assert list(rx) == []
        with pytest.raises(ValueError):
            tx.send(b"c")                   # a closed port


def test_writer_killed(seg, peers):
    """A reader waiting on a writer that was SIGKILLed gets RingPeerDied
    promptly, after what the writer published."""
    with seg.receiver("sched") as rx:
        w = peers("bcast-writer-then-sleep", seg.name, "sched")
        assert w.expect("sent") == []
        assert rx.recv(timeout=10) == b"before-death"
        w.proc.kill()
        start = time.monotonic()
        with pytest.raises(shmring.RingPeerDied, match="receive on channel 'sched'") as e:
            rx.recv(timeout=30)
        assert e.value.errno == errno.EOWNERDEAD
        assert isinstance(e.value, OSError)
        assert time.monotonic() - start < 5


def test_reader_killed(seg, peers):
    """A writer blocked on a reader that was SIGKILLed gets RingPeerDied;
    with drop_dead it goes on."""
    r = peers("bcast-reader-then-sleep", seg.name, "small")
    r.expect("attached")
    with seg.sender("small") as tx:
        tx.send(b"1")
        tx.send(b"2")
        r.proc.kill()
        start = time.monotonic()
        with pytest.raises(shmring.RingPeerDied, match="send on channel 'small'"):
            tx.send(b"3", timeout=30)
        assert time.monotonic() - start < 5
        assert tx.drop_dead() == 1
        tx.send(b"3", timeout=5)


def test_mark_dead_wakes_at_once(seg, peers):
    w = peers("bcast-writer-then-sleep", seg.name, "sched")
    with seg.receiver("sched", liveness_ms=60000) as rx:   # it would not notice on its own for a minute
        assert w.expect("sent") == []
        assert rx.recv(timeout=10) == b"before-death"
        t = threading.Timer(0.3, lambda: seg.mark_dead(w.proc.pid))
        t.start()
        start = time.monotonic()
        with pytest.raises(shmring.RingPeerDied):
            rx.recv(timeout=30)
        assert time.monotonic() - start < 5
        t.join()


def test_zero_copy_receive(seg):
    with seg.sender("small") as tx, seg.receiver("small") as rx:
        tx.send(b"first message")
        tx.send(b"second")
        msg = rx.recv_zc(timeout=5)
        assert isinstance(msg.data, memoryview) and msg.data.readonly
        assert bytes(msg.data) == b"first message" and len(msg) == 13
        assert msg.seq == 0 and msg.sender == 0
        with pytest.raises(TypeError):
            msg.data[0] = 0
        with pytest.raises(RuntimeError, match="still holds"):
            rx.recv_zc()
        # The ring is full and the held slot is not free: the writer waits.
        with pytest.raises(BlockingIOError):
            tx.send(b"third", timeout=0)
        view = msg.data
        msg.done()
        with pytest.raises(ValueError):
            bytes(view)                     # released
        tx.send(b"third", timeout=0)
        with rx.recv_zc() as m2:
            assert m2.tobytes() == b"second" and m2.seq == 1
        assert rx.recv() == b"third"
        # recv_into: into a buffer; too small leaves the message in place.
        tx.send(b"0123456789")
        small = bytearray(4)
        with pytest.raises(OSError) as e:
            rx.recv_into(small)
        assert e.value.errno == errno.EMSGSIZE
        big = bytearray(64)
        assert rx.recv_into(big, timeout=1) == 10 and big[:10] == b"0123456789"


def test_closing_the_receiver_releases_a_held_view(seg):
    tx = seg.sender("small")
    rx = seg.receiver("small")
    tx.send(b"held")
    msg = rx.recv_zc()
    rx.close()
    with pytest.raises(ValueError):
        bytes(msg.data)
    msg.done()                              # harmless now
    tx.close()


def test_key_value_tables(seg, peers):
    g1 = seg.kv_put("kv", "nccl-id", b"\x01" * 128)
    assert seg.kv_get("kv", "nccl-id") == b"\x01" * 128
    entry = seg.kv_lookup("kv", "nccl-id", timeout=0)
    assert entry == (b"\x01" * 128, g1, os.getpid())
    g2 = seg.kv_put("kv", "nccl-id", memoryview(b"\x02" * 5000))   # larger than the first buffer tried
    assert g2 > g1
    assert seg.kv_get("kv", "nccl-id", min_generation=g2) == b"\x02" * 5000
    with pytest.raises(TimeoutError):
        seg.kv_get("kv", "nccl-id", min_generation=g2 + 1, timeout=0.2)
    # A waiter sees a later put.
    threading.Timer(0.2, lambda: seg.kv_put("kv", "late", b"here")).start()
    assert seg.kv_get("kv", "late", timeout=10) == b"here"
    seg.kv_del("kv", "late")
    with pytest.raises(KeyError):
        seg.kv_get("kv", "late", timeout=0)
    with pytest.raises(KeyError):
        seg.kv_del("kv", "late")
    with pytest.raises(OSError) as e:
        seg.kv_put("kv", "big", b"x" * 8193)
    assert e.value.errno == errno.EMSGSIZE
    with pytest.raises(ValueError):
        seg.kv_put("kv", "has space", b"")
    with pytest.raises(FileNotFoundError, match="'nosuchtable'"):
        seg.kv_put("nosuchtable", "k", b"")
    with pytest.raises(FileNotFoundError):
        seg.kv_get("nosuchtable", "k")
    for i in range(10):
        try:
            seg.kv_put("kv", "fill-%d" % i, b"")
        except OSError as e:
            assert e.errno == errno.ENOSPC
            break
    else:
        pytest.fail("a table of 8 entries took 12 keys")
    # A key whose owner died.
    seg.kv_del("kv", "fill-0")
    p = peers("kv-put-then-sleep", seg.name, "kv", "owned", "by-peer")
    p.expect("put")
    assert seg.kv_get("kv", "owned", timeout=5) == b"by-peer"
    p.proc.kill()
    p.proc.wait(10)
    with pytest.raises(shmring.RingPeerDied, match="'owned'"):
        seg.kv_get("kv", "owned", timeout=5)


def test_attach_from_environment(seg):
    r = run_python("import runpy, sys; sys.argv = ['peer', 'attach-default']; runpy.run_path(%r, run_name='__main__')"
                   % PEER, clean_env(RINGMASTER_SHM=seg.name))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["run-id", seg.info().run_id]
    # The name may come without its slash.
    with Segment.attach(seg.name.lstrip("/")) as again:
        assert again.name == seg.name
    r = run_python("from ringmaster import shmring\nshmring.Segment.attach()", clean_env())
    assert r.returncode != 0 and "RINGMASTER_SHM is not set" in r.stderr
    with pytest.raises(FileNotFoundError):
        Segment.attach("/shmring-does-not-exist-0000")


def test_observer_cannot_open_ports(seg):
    with Segment.attach(seg.name, observer=True) as obs:
        assert obs.info().run_id == seg.info().run_id
        with pytest.raises(PermissionError):
            obs.receiver("sched")


def test_ports_are_exclusive(seg):
    with seg.sender("sched"):
        with pytest.raises(OSError) as e:
            seg.sender("sched")
        assert e.value.errno == errno.EBUSY
    with seg.receiver("results") as rx:
        assert rx.index == 0
        with pytest.raises(OSError):
            seg.receiver("results")
    with seg.sender("results", index=2) as tx:
        assert tx.index == 2
    with pytest.raises(FileNotFoundError, match="'nope'"):
        seg.sender("nope")


def test_ctrl_c_ends_a_blocking_receive(seg, peers):
    p = peers("recv-forever", seg.name, "sched")
    p.expect("waiting")
    time.sleep(0.3)                         # well into the futex sleep
    start = time.monotonic()
    p.proc.send_signal(signal.SIGINT)
    assert p.expect("interrupted") == []
    p.proc.wait(10)
    assert time.monotonic() - start < 3
    assert p.proc.returncode != 0
    assert "KeyboardInterrupt" in p.proc.stderr.read()


def test_close_from_another_thread_ends_a_wait(seg):
    rx = seg.receiver("sched")
    errors = []

    def wait():
        try:
            rx.recv()
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    start = time.monotonic()
    rx.close()
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - start < shmring.WAIT_SLICE + 2
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    # Closing the segment under a waiting kv lookup ends it too.
    errors.clear()
    t = threading.Thread(target=lambda: wait_kv())

    def wait_kv():
        try:
            seg.kv_get("kv", "never")
        except Exception as e:
            errors.append(e)

    t.start()
    time.sleep(0.3)
    seg.unlink()
    seg.close()
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ValueError), errors
    assert seg.closed


def test_segment_close_under_port_calls_in_other_threads(seg):
    # A port call holds only its port's lock: Segment.close() must still end
    # a receive waiting in another thread (within a slice, ValueError) and
    # wait out a sender busy in a loop, and unmap only after both let go.
    rx = seg.receiver("sched")
    tx = seg.sender("results", index=0)
    qrx = seg.receiver("results")
    errors, sent = [], []
    stop = threading.Event()

    def wait():
        try:
            rx.recv()
        except Exception as e:
            errors.append(e)

    def send_loop():
        try:
            while not stop.is_set():
                tx.send(b"x" * 100, timeout=0)
                qrx.recv(timeout=0)
                sent.append(1)
        except Exception as e:
            errors.append(e)

    waiter = threading.Thread(target=wait)
    sender = threading.Thread(target=send_loop)
    waiter.start()
    sender.start()
    time.sleep(0.3)
    start = time.monotonic()
    seg.close()
    stop.set()
    waiter.join(10)
    sender.join(10)
    assert not waiter.is_alive() and not sender.is_alive()
    assert time.monotonic() - start < shmring.WAIT_SLICE + 2
    assert sent, "the sender never got a message through before the close"
    assert len(errors) == 2 and all(isinstance(e, ValueError) for e in errors), errors
    assert seg.closed and rx.closed and tx.closed and qrx.closed
    for call in (rx.recv, lambda: tx.send(b"late"), rx.recv_view):
        with pytest.raises(ValueError):
            call()


def test_recv_view(seg):
    tx = seg.sender("sched")
    rx = seg.receiver("sched")
    tx.send(b"first")
    tx.send(b"x" * 1000)                    # overflow: larger than a slot
    view = rx.recv_view(timeout=1)
    assert isinstance(view, memoryview) and view.readonly and bytes(view) == b"first"
    assert bytes(rx.recv_view(timeout=1)) == b"x" * 1000
    tx.send(b"")
    assert bytes(rx.recv_view(timeout=1)) == b""
    with pytest.raises(BlockingIOError):
        rx.recv_view(timeout=0)


def test_segment_does_not_survive_fork(seg):
    tx = seg.sender("sched")
    rx = seg.receiver("sched")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                tx.send(b"from the child")
            except RuntimeError as e:
                code = 0 if "attach again" in str(e) else 2
            # Dropping the parent's handles here must leave its registration alone.
            tx.close()
            rx.close()
            seg.close()
            gc.collect()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    tx.send(b"parent still sends")
    assert rx.recv(timeout=5) == b"parent still sends"
    tx.close()
    rx.close()


def test_library_lookup():
    lib = shmring.library_path()
    assert os.path.exists(lib) or lib == shmring.SONAME
    code = "from ringmaster import shmring\nshmring.load_library()"
    r = run_python(code, clean_env(RINGMASTER_LIBSHMRING="/nonexistent/libshmring.so.1"))
    assert r.returncode != 0
    assert "LibraryNotFoundError" in r.stderr and "/nonexistent/libshmring.so.1" in r.stderr
    if os.path.isfile(lib):
        r = run_python(code + "\nprint(shmring.library_path())",
                       clean_env(RINGMASTER_LIBSHMRING=os.path.dirname(os.path.abspath(lib))))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().endswith(shmring.SONAME)


def test_structure_layouts(tmp_path):
    """The ctypes structures match the C header's, as a C compiler lays
    them out."""
    cc = os.environ.get("CC", "cc")
    top = os.environ.get("top_srcdir") or os.path.join(HERE, os.pardir, os.pardir)
    structs = {
        "shmring_channel_spec": shmring._ChannelSpec, "shmring_table_spec": shmring._TableSpec,
        "shmring_spec": shmring._Spec, "shmring_info": shmring._Info,
        "shmring_channel_info": shmring._ChannelInfo, "shmring_port_opts": shmring._PortOpts,
        "shmring_msg": shmring._Msg, "shmring_kv_info": shmring._KvInfo,
    }
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <shmring.h>", "int main(void) {"]
    for name, cls in structs.items():
        lines.append('printf("%s sizeof %%zu\\n", sizeof(struct %s));' % (name, name))
        for field, _ in cls._fields_:
            lines.append('printf("%s %s %%zu\\n", offsetof(struct %s, %s));' % (name, field, name, field))
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    try:
        c = subprocess.run([cc, "-I", os.path.join(top, "shmring"), "-o", str(tmp_path / "layout"), str(src)],
                           capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no C compiler (%s)" % cc)
    assert c.returncode == 0, c.stderr
    out = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        name, field, value = line.split()
        cls = structs[name]
        expected = ctypes.sizeof(cls) if field == "sizeof" else getattr(cls, field).offset
        assert int(value) == expected, line


def test_empty_messages(seg):
    """Zero-length messages and values, from every kind of empty buffer."""
    with seg.sender("sched") as tx, seg.receiver("sched") as rx:
        tx.send(b"")
        tx.send(bytearray())
        tx.send(memoryview(b"x")[:0])
        tx.sendv([b"", bytearray(), memoryview(bytearray(3))[3:]])
        tx.sendv([])
        for _ in range(5):
            assert rx.recv(timeout=5) == b""
        tx.send(b"")
        assert rx.recv_into(bytearray(), timeout=5) == 0
    seg.kv_put("kv", "empty", bytearray())
    assert seg.kv_get("kv", "empty", timeout=0) == b""


def test_library_accepts_null_with_zero_length(seg):
    """libshmring's own calls with NULL and a zero length, as its argument
    checks allow (shmring_send, shmring_recv, shmring_kv_put).  In a
    process of its own: under the sanitizers, memcpy(dst, NULL, 0) inside
    the library is undefined behaviour that UBSan aborts on."""
    code = r"""
import ctypes, sys
from ringmaster import shmring
lib = shmring.load_library()
seg = shmring.Segment.attach(sys.argv[1])
rx = seg.receiver("sched")
tx = seg.sender("sched")
r1 = lib.shmring_send(tx._h, None, 0, 0)
r2 = lib.shmring_recv(rx._h, None, 0, 0)
r3 = lib.shmring_kv_put(seg._h, b"kv", b"null-value", None, 0)
print(r1, r2, r3 > 0)
"""
    r = subprocess.run([sys.executable, "-c", code, seg.name], env=clean_env(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", "True"], r.stderr


@pytest.mark.parametrize("wait", [None, shmring.WAIT_AUTO, shmring.WAIT_SPIN, shmring.WAIT_YIELD,
                                  shmring.WAIT_BLOCK])
def test_wait_policies(seg, peers, wait):
    """Every wait policy carries a broadcast to a reader process and back
    through the queue; the reader here waits under that policy."""
    with seg.sender("sched", wait=wait, yield_us=500) as tx, \
            seg.receiver("results", wait=wait, yield_us=500) as rx:
        peer = peers("echo", seg.name, 50, *([wait] if wait else []))
        tx.wait_readers(1, timeout=30)
        for i in range(50):
            tx.send(b"m%d" % i)
            assert rx.recv(timeout=30) == b"m%d" % i
        peer.expect("done")


def test_wait_options_are_checked(seg):
    with pytest.raises(ValueError, match="wait must be one of"):
        seg.receiver("sched", wait="busy")
    with pytest.raises(ValueError, match="yield_us"):
        seg.receiver("sched", yield_us=-1)
    with pytest.raises(ValueError, match="yield_us"):
        seg.sender("sched", yield_us=1 << 32)


def test_blocked_receiver_burns_no_cpu(seg):
    """Past its budget a waiting receiver sleeps, whatever the policy: the
    thread's CPU time over an idle second stays near zero."""
    for wait in (shmring.WAIT_AUTO, shmring.WAIT_SPIN, shmring.WAIT_YIELD, shmring.WAIT_BLOCK):
        with seg.receiver("sched", wait=wait) as rx:
            start = time.thread_time()
            with pytest.raises(TimeoutError):
                rx.recv(timeout=1.0)
            used = time.thread_time() - start
            assert used < 0.05, "%s: %.3f s of CPU in an idle second" % (wait, used)


def test_broadcast_pybench_runs():
    """tests/bench/broadcast-pybench.py, briefly: every transport delivers
    every message in order under both modes and every placement, and the
    tables and paired verdicts come out (the figures are noise at this size;
    the benchmark is a program)."""
    from conftest import TOP_SRCDIR
    script = os.path.join(TOP_SRCDIR, "tests", "bench", "broadcast-pybench.py")
    places = ("round-robin", "writer-alone", "free")
    r = subprocess.run([sys.executable, script, "--readers", "1,2", "--messages", "30", "--blocking-messages", "5",
                        "--warmup", "5", "--repeat", "1", "--gap", "0.002", "--per-call", "--per-reader",
                        "--per-call-messages", "20", "--placements", ",".join(places)],
                       env=clean_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for mode in ("spinning", "blocking"):
        for transport in ("ringmaster", "ringmaster-spin50", "mq-baseline"):
            assert sum(line.split()[:3] == [mode, "2", transport] for line in lines) == len(places), r.stdout
        for place in places:
            assert any(("%s, %s, 2 reader(s): baseline p50 / ringmaster p50, paired by run" % (place, mode)) in line
                       for line in lines), r.stdout
    assert sum("each reader's p50" in line for line in lines) == 2 * 2 * 3 * len(places), r.stdout
    for transport in ("ringmaster", "mq-baseline"):
        assert any(line.split()[:1] == [transport] and line.rstrip().endswith("us")
                   for line in r.stdout.splitlines()), r.stdout
