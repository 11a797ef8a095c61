#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""broadcast-pybench: one-way latency of a 1 -> N broadcast of pickled
Python objects, ringmaster's Python binding against a baseline written like
vLLM's shared-memory MessageQueue, measured in the same run.

    broadcast-pybench.py [--readers 1,2,4] [--messages 2000] [--size 1024]
                         [--modes spinning,blocking] [--repeat 3] [--per-call]
                         [--placements round-robin,writer-alone]
                         [--per-reader] [--json FILE]

Every message is a dict {"seq", "t", "payload"} pickled to about --size
bytes; "t" is time.monotonic_ns() taken before pickling, and each reader
subtracts it from its own clock read after unpickling (CLOCK_MONOTONIC is
one clock on every CPU).  Messages are paced: the writer sends the next one
only when every reader has acknowledged the last (each reader stores the
number in its own word of a shared page; the writer polls those words with
sched_yield, the same for every transport), so the figures are latencies,
not queueing.

Modes:
  spinning   messages back to back: the readers are waiting actively when
             a message comes (the baseline's readers poll with sched_yield;
             ringmaster's wait under its default, automatic policy)
  blocking   an idle gap (--gap, 5 ms) before each message, longer than any
             active-wait budget: the readers are asleep when it comes (the
             baseline's readers block on a notification pipe after their
             poll budget; ringmaster's sleep on the futex)

Transports:
  ringmaster          ringmaster.shmring broadcast channel, default policy
  ringmaster-spin50   the same, forced spin-then-sleep with a 50 us budget
                      (the library's default before the automatic policy)
  mq-baseline         a pickle-over-shared-memory ring written like vLLM's
                      MessageQueue (see MQBaseline below)

Placements (--placements): where the writer and the readers run, the same
for every transport, since on shared CPUs the placement decides the figures
more than the transport does (two readers on one CPU are served one after
the other):
  round-robin   the writer on the first allowed CPU, reader i on the
                (i + 1)-th, round-robin over all of them (on 2 CPUs: reader
                1 of 2 shares the writer's CPU)
  writer-alone  the writer alone on the first CPU, the readers round-robin
                on the others (on 2 CPUs: every reader on the second)
  free          not pinned: the scheduler places them, differently from run
                to run (which made earlier runs' p50s bimodal)
With more readers than cores they share the CPUs, which is the case this
benchmark is for.

Every (placement, mode, readers, transport) cell runs --repeat times, the
transports back to back within each repeat, and the table gives the median
of the runs' p50 and p99 over all readers' samples.  The verdict of a cell
is the median over repeats of baseline p50 / ringmaster p50 of the same
repeat (paired runs): met when above 1.  Run it under SCHED_FIFO (chrt -f
10) on a machine where other work runs, so that the workers are not
preempted by it; sched_yield then passes the CPU only among them.
"""

import argparse
import json
import mmap
import os
import pickle
import platform
import select
import statistics
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, os.pardir, "engine", "python"))

from ringmaster import shmring  # noqa: E402

ACK = struct.Struct("<q")
TIMEOUT_S = 30.0


def make_object(seq, size):
    obj = {"seq": seq, "t": 0, "payload": b""}
    base = len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    obj["payload"] = b"x" * max(0, size - base - 8)
    return obj


# ------------------------------------------------------------- the baseline

class MQBaseline:
    """A broadcast ring of pickles in shared memory, after the description
    of vLLM's MessageQueue (shm_broadcast.py): one segment holding
    [chunks x chunk_bytes][chunks x (1 + readers) flag bytes]; per chunk a
    "written" flag and one "read" flag per reader.  The writer waits for a
    chunk whose readers have all read it, polling with sched_yield; it
    writes the length and the pickle, clears the read flags and sets
    "written".  A reader polls its next chunk's flags with sched_yield
    until "written" is set and its own "read" flag is not, unpickles, and
    sets its "read" flag.  In blocking mode, a reader that has polled for
    its budget blocks on a notification: the writer writes a byte to every
    reader's pipe after each message (as a ZeroMQ PUB socket notifies its
    subscribers).  Written for this benchmark from that description."""

    def __init__(self, readers, chunks=10, chunk_bytes=1 << 16, blocking=False, poll_budget_s=200e-6):
        self.readers = readers
        self.chunks = chunks
        self.chunk_bytes = chunk_bytes
        self.blocking = blocking
        self.poll_budget_s = poll_budget_s
        self.flags_at = chunks * chunk_bytes
        self.buf = mmap.mmap(-1, self.flags_at + chunks * (1 + readers))
        self.pipes = [os.pipe() for _ in range(readers)] if blocking else []

    def _flags(self, chunk):
        return self.flags_at + chunk * (1 + self.readers)

    # writer side
    def open_writer(self):
        self.index = 0
        for r, w in self.pipes:
            os.close(r)
        self.notify = [w for _, w in self.pipes]

    def send(self, obj):
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        assert len(data) + 8 <= self.chunk_bytes
        f = self._flags(self.index)
        buf = self.buf
        deadline = time.monotonic() + TIMEOUT_S
        while buf[f] and not all(buf[f + 1 + i] for i in range(self.readers)):
            os.sched_yield()
            if time.monotonic() > deadline:
                raise TimeoutError("no free chunk")
        buf[f] = 0
        base = self.index * self.chunk_bytes
        struct.pack_into("<Q", buf, base, len(data))
        buf[base + 8:base + 8 + len(data)] = data
        for i in range(self.readers):
            buf[f + 1 + i] = 0
        buf[f] = 1
        self.index = (self.index + 1) % self.chunks
        for w in getattr(self, "notify", ()):
            os.write(w, b"!")

    # reader side
    def open_reader(self, rank):
        self.rank = rank
        self.index = 0
        for i, (r, w) in enumerate(self.pipes):
            os.close(w)
            if i != rank:
                os.close(r)
        if self.blocking:
            self.fd = self.pipes[rank][0]
            os.set_blocking(self.fd, False)

    def recv(self):
        f = self._flags(self.index)
        me = f + 1 + self.rank
        buf = self.buf
        start = time.monotonic()
        while not (buf[f] and not buf[me]):
            if self.blocking and time.monotonic() - start > self.poll_budget_s:
                select.select([self.fd], [], [], TIMEOUT_S)
                try:
                    os.read(self.fd, 4096)
                except BlockingIOError:
                    pass
                start = time.monotonic()
                continue
            os.sched_yield()
        base = self.index * self.chunk_bytes
        (n,) = struct.unpack_from("<Q", buf, base)
        obj = pickle.loads(buf[base + 8:base + 8 + n])
        buf[me] = 1
        self.index = (self.index + 1) % self.chunks
        return obj


# --------------------------------------------------------------- ringmaster

class Ringmaster:
    """A ringmaster.shmring broadcast channel; slots hold a message inline."""

    def __init__(self, readers, wait=None, spin_ns=None, size=1024):
        self.readers = readers
        self.wait = wait
        self.spin_ns = spin_ns
        slot = 1 << (size + 256 - 1).bit_length()
        self.seg = shmring.Segment.create("pybench", [
            shmring.Channel("bc", shmring.BROADCAST, slots=16, slot_size=slot, max_ports=readers)])
        self.name = self.seg.name

    def open_writer(self):
        self.seg.close()
        self.seg = shmring.Segment.attach(self.name)
        self.tx = self.seg.sender("bc", wait=self.wait, spin_ns=self.spin_ns)
        self.tx.wait_readers(self.readers, timeout=TIMEOUT_S)

    def send(self, obj):
        self.tx.send(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def open_reader(self, rank):
        self.seg.close()
        self.seg = shmring.Segment.attach(self.name)
        self.rx = self.seg.receiver("bc", index=rank, wait=self.wait, spin_ns=self.spin_ns)

    def recv(self):
        return pickle.loads(self.rx.recv_view())

    def cleanup(self):
        try:
            self.seg.unlink()
        except (OSError, ValueError):
            pass
        self.seg.close()


# ---------------------------------------------------------------- one cell

def placement(name, readers):
    """CPU of the writer and of each reader (None: not pinned), the same for
    every transport.  writer-alone: the writer on the first allowed CPU,
    the readers round-robin on the others (on 2 CPUs they all share the
    second); round-robin: the writer on the first, the readers round-robin
    from the second over all of them (reader 1 of 2 shares the writer's)."""
    cpus = sorted(os.sched_getaffinity(0))
    if name == "free" or len(cpus) < 2:
        return None, [None] * readers
    if name == "writer-alone":
        return cpus[0], [cpus[1 + r % (len(cpus) - 1)] for r in range(readers)]
    if name == "round-robin":
        return cpus[0], [cpus[(1 + r) % len(cpus)] for r in range(readers)]
    raise ValueError("unknown placement %r" % name)


def pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def run_cell(transport, readers, messages, warmup, size, gap_s, place="free"):
    """Forks the writer and the readers; returns every reader's samples (ns)."""
    writer_cpu, reader_cpus = placement(place, readers)
    total = warmup + messages
    acks = mmap.mmap(-1, 64 * readers)
    samples = mmap.mmap(-1, 8 * readers * messages)
    for i in range(readers):
        ACK.pack_into(acks, 64 * i, -1)
    pids = []
    for rank in range(readers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                pin(reader_cpus[rank])
                transport.open_reader(rank)
                for m in range(total):
                    obj = transport.recv()
                    now = time.monotonic_ns()
                    if obj["seq"] != m:
                        raise RuntimeError("reader %d: message %d, expected %d" % (rank, obj["seq"], m))
                    if m >= warmup:
                        ACK.pack_into(samples, 8 * (rank * messages + m - warmup), now - obj["t"])
                    ACK.pack_into(acks, 64 * rank, m)
                code = 0
            except BaseException as e:  # noqa: BLE001 - reported, then the child exits
                print("reader %d: %r" % (rank, e), file=sys.stderr)
            finally:
                os._exit(code)
        pids.append(pid)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            pin(writer_cpu)
            transport.open_writer()
            obj = make_object(0, size)
            for m in range(total):
                if gap_s:
                    time.sleep(gap_s)
                obj["seq"] = m
                obj["t"] = time.monotonic_ns()
                transport.send(obj)
                deadline = time.monotonic() + TIMEOUT_S
                while any(ACK.unpack_from(acks, 64 * i)[0] < m for i in range(readers)):
                    os.sched_yield()
                    if time.monotonic() > deadline:
                        raise TimeoutError("message %d was not acknowledged" % m)
            code = 0
        except BaseException as e:  # noqa: BLE001
            print("writer: %r" % (e,), file=sys.stderr)
        finally:
            os._exit(code)
    pids.append(pid)
    failed = False
    for p in pids:
        _, status = os.waitpid(p, 0)
        failed |= status != 0
    if failed:
        raise RuntimeError("a worker failed")
    return [ACK.unpack_from(samples, 8 * i)[0] for i in range(readers * messages)]


def per_call_cost(size, count=2000, repeat=11):
    """The cost of one message through each transport's calls, without a
    second process or any waiting: in one process, send then receive a
    pickled object (pickling and unpickling included), `count` times;
    returns {transport: [ns per message of each repeat]}, interleaved."""
    obj = make_object(0, size)
    rm = Ringmaster(1, size=size)
    tx = rm.seg.sender("bc")
    rx = rm.seg.receiver("bc")
    mq_w = MQBaseline(1)
    mq_w.index = 0
    mq_r = MQBaseline.__new__(MQBaseline)
    mq_r.__dict__.update(mq_w.__dict__)
    mq_r.rank = 0

    def ringmaster():
        send, recv, dumps, loads = tx.send, rx.recv_view, pickle.dumps, pickle.loads
        for _ in range(count):
            send(dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
            loads(recv())

    def baseline():
        for _ in range(count):
            mq_w.send(obj)
            mq_r.recv()

    out = {"ringmaster": [], "mq-baseline": []}
    try:
        for _ in range(repeat):
            for name, fn in (("ringmaster", ringmaster), ("mq-baseline", baseline)):
                start = time.perf_counter_ns()
                fn()
                out[name].append((time.perf_counter_ns() - start) / count)
    finally:
        tx.close()
        rx.close()
        rm.cleanup()
    return out


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readers", default="1,2,4")
    ap.add_argument("--messages", type=int, default=2000, help="measured messages per run (spinning)")
    ap.add_argument("--blocking-messages", type=int, default=300, help="measured messages per run (blocking)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--size", type=int, default=1024, help="bytes of each pickled object")
    ap.add_argument("--modes", default="spinning,blocking")
    ap.add_argument("--transports", default="ringmaster,ringmaster-spin50,mq-baseline")
    ap.add_argument("--gap", type=float, default=5e-3, help="idle seconds before each message (blocking)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--placements", default="round-robin,writer-alone",
                    help="where the writer and readers run, the same for every transport: round-robin, "
                         "writer-alone, free (not pinned: the scheduler decides, run by run)")
    ap.add_argument("--per-call", action="store_true",
                    help="first measure each transport's cost per message in one process (no waiting)")
    ap.add_argument("--per-call-messages", type=int, default=2000, help="messages per repeat of --per-call")
    ap.add_argument("--per-reader", action="store_true", help="print each reader's p50 of every run")
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()

    readers = [int(x) for x in args.readers.split(",")]
    modes = args.modes.split(",")
    transports = args.transports.split(",")
    placements = args.placements.split(",")
    for place in placements:
        if place not in ("round-robin", "writer-alone", "free"):
            sys.exit("unknown placement %r (round-robin, writer-alone, free)" % place)
    shmring.cleanup_stale("pybench")
    load = os.getloadavg()
    print("broadcast-pybench: %d-byte pickles, %s; %d CPUs allowed, load average %.2f %.2f %.2f; python %s"
          % (args.size, platform.machine(), len(os.sched_getaffinity(0)), *load, platform.python_version()))
    fast = getattr(shmring, "fast_path", lambda: None)()
    print("ringmaster receives through %s" % ("its C extension " + fast if fast else "ctypes"))
    print("medians of %d runs; each run's percentiles over every reader's samples" % args.repeat)
    if args.per_call:
        costs = per_call_cost(args.size, args.per_call_messages)
        print("per message in one process (send + receive, pickling included; median and best of %d x %d):"
              % (len(costs["ringmaster"]), args.per_call_messages))
        for name, runs in costs.items():
            print("  %-18s %6.2f us   best %6.2f us" % (name, statistics.median(runs) / 1e3, min(runs) / 1e3))
        print()
    results = {}
    for place in placements:
        for mode in modes:
            blocking = mode == "blocking"
            messages = args.blocking_messages if blocking else args.messages
            warmup = min(args.warmup, messages)
            for n in readers:
                for rep in range(args.repeat):
                    for name in transports:
                        if name == "mq-baseline":
                            t = MQBaseline(n, blocking=blocking)
                        elif name == "ringmaster":
                            t = Ringmaster(n, size=args.size)
                        elif name == "ringmaster-spin50":
                            t = Ringmaster(n, wait=shmring.WAIT_SPIN, spin_ns=50000, size=args.size)
                        else:
                            sys.exit("unknown transport %r" % name)
                        try:
                            flat = run_cell(t, n, messages, warmup, args.size, args.gap if blocking else 0, place)
                        finally:
                            if hasattr(t, "cleanup"):
                                t.cleanup()
                        s = sorted(flat)
                        each = [percentile(sorted(flat[r * messages:(r + 1) * messages]), 0.5) for r in range(n)]
                        results.setdefault((place, mode, n, name), []).append(
                            {"p50": percentile(s, 0.5), "p99": percentile(s, 0.99), "samples": len(s),
                             "reader_p50": each})
    for place in placements:
        writer_cpu, _ = placement(place, 1)
        print()
        print("placement %s%s" % (place, "" if writer_cpu is not None or place == "free"
                                  else " (one CPU allowed: not pinned)"))
        print("%-9s %-7s %-18s %12s %12s   %s" % ("mode", "readers", "transport", "p50 (us)", "p99 (us)",
                                                 "p50 of each run (us)"))
        for mode in modes:
            for n in readers:
                for name in transports:
                    runs = results[(place, mode, n, name)]
                    p50 = statistics.median(r["p50"] for r in runs) / 1e3
                    p99 = statistics.median(r["p99"] for r in runs) / 1e3
                    each = " ".join("%.1f" % (r["p50"] / 1e3) for r in runs)
                    print("%-9s %-7d %-18s %12.1f %12.1f   %s" % (mode, n, name, p50, p99, each))
                    if args.per_reader:
                        print("%-36s each reader's p50, run by run: %s" % ("", " | ".join(
                            " ".join("%.1f" % (x / 1e3) for x in r["reader_p50"]) for r in runs)))
        # Each repeat ran the transports back to back with the same placement:
        # the ratio of those two runs' p50s is the comparison, its median the verdict.
        for mode in modes:
            for n in readers:
                rm_runs = results.get((place, mode, n, "ringmaster"))
                mq_runs = results.get((place, mode, n, "mq-baseline"))
                if not rm_runs or not mq_runs:
                    continue
                ratios = [m["p50"] / r["p50"] for r, m in zip(rm_runs, mq_runs)]
                ratio = statistics.median(ratios)
                ok = ratio > 1
                print("%-8s %s, %s, %d reader(s): baseline p50 / ringmaster p50, paired by run: median %.2fx "
                      "(%s); medians %.1f vs %.1f us"
                      % ("met" if ok else "not met", place, mode, n, ratio,
                         " ".join("%.2f" % x for x in ratios),
                         statistics.median(r["p50"] for r in rm_runs) / 1e3,
                         statistics.median(r["p50"] for r in mq_runs) / 1e3))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "loadavg": load, "cpus": len(os.sched_getaffinity(0)),
                       "results": [{"placement": k[0], "mode": k[1], "readers": k[2], "transport": k[3],
                                    "runs": v} for k, v in results.items()]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
